package voicemail

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/dtmf/dtmftest"
)

const ms = time.Millisecond

// babble is speech-like audio: bursts of noise shaped into syllables (a
// few formant-like partials that glide), at about −20 dBm0.
func babble(d time.Duration, seed uint64) []int16 {
	r := rand.New(rand.NewPCG(seed, 7))
	var out []int16
	for dtmftest.Duration(len(out)) < d {
		syl := time.Duration(120+r.IntN(180)) * ms
		f0 := 100 + r.Float64()*120
		parts := [][2]float64{{f0, -24}, {2 * f0, -26}, {3.1 * f0, -28}, {500 + r.Float64()*1500, -30}}
		s := make([]int16, dtmftest.Samples(syl))
		for _, p := range parts {
			t := dtmftest.Tones(syl, dtmftest.Tone{Freq: p[0] * (1 + 0.1*r.Float64()), DBm0: p[1]})
			for i := range s {
				s[i] += t[i]
			}
		}
		noise := dtmftest.WhiteNoise(r, len(s), -34)
		for i := range s {
			s[i] += noise[i]
		}
		out = append(out, s...)
		out = append(out, dtmftest.Silence(time.Duration(20+r.IntN(120))*ms)...)
	}
	return out[:dtmftest.Samples(d)]
}

func tone(hz, dBm0 float64, d time.Duration) []int16 {
	return dtmftest.Tones(d, dtmftest.Tone{Freq: hz, DBm0: dBm0})
}

// mix adds b onto a (a is at least as long).
func mix(a, b []int16) []int16 {
	out := append([]int16(nil), a...)
	for i, x := range b {
		out[i] += x
	}
	return out
}

func run(d *Detector, audio []int16) Verdict {
	// In G.711 packet-sized pieces, as the receive path feeds it.
	for i := 0; i < len(audio); i += 160 {
		d.Feed(audio[i:min(i+160, len(audio))])
	}
	return d.Verdict()
}

func TestDetector(t *testing.T) {
	tests := []struct {
		name   string
		audio  []int16
		want   Reason // "" for a person
		beepHz int
	}{
		{"silence", dtmftest.Silence(10 * time.Second), "", 0},
		{"hello_then_hash", dtmftest.Concat(dtmftest.Silence(300*ms), babble(700*ms, 1), dtmftest.Silence(1500*ms), dtmftest.DTMF('#', -10, 120*ms), dtmftest.Silence(2*time.Second)), "", 0},
		{"hello_hello", dtmftest.Concat(dtmftest.Silence(300*ms), babble(600*ms, 2), dtmftest.Silence(1200*ms), babble(600*ms, 3), dtmftest.Silence(3*time.Second)), "", 0},
		{"hello_who_is_this", dtmftest.Concat(babble(1800*ms, 4), dtmftest.Silence(4*time.Second)), "", 0},
		{"code_keyed_fast", dtmftest.Concat(babble(500*ms, 5), dtmftest.Silence(time.Second), dtmftest.Sequence('5', 6, 40*ms, 40*ms, -10), dtmftest.Silence(time.Second)), "", 0},
		{"held_hash_is_not_a_beep", dtmftest.Concat(babble(800*ms, 6), dtmftest.Silence(500*ms), dtmftest.DTMF('#', -10, time.Second), dtmftest.Silence(time.Second)), "", 0},
		{"tone_without_speech_is_not_a_beep", dtmftest.Concat(dtmftest.Silence(time.Second), tone(1000, -12, 800*ms), dtmftest.Silence(time.Second)), "", 0},
		{"late_long_talk_is_not_a_greeting", dtmftest.Concat(dtmftest.Silence(4*time.Second), babble(5*time.Second, 7)), "", 0},
		{"short_beep_after_speech", dtmftest.Concat(babble(time.Second, 8), dtmftest.Silence(200*ms), tone(1000, -12, 200*ms), dtmftest.Silence(time.Second)), "", 0},
		{"softphone_sine_from_answer", tone(440, -10, 8*time.Second), "", 0},
		{"hello_over_a_sine", dtmftest.Concat(mix(tone(440, -16, 6*time.Second), dtmftest.Concat(dtmftest.Silence(300*ms), babble(700*ms, 16)))), "", 0},
		{"held_five", dtmftest.Concat(babble(500*ms, 17), dtmftest.Silence(500*ms), dtmftest.DTMF('5', -10, 3*time.Second), dtmftest.Silence(time.Second)), "", 0},
		{"ringback_cadence", dtmftest.Concat(dtmftest.Tones(400*ms, dtmftest.Tone{Freq: 400, DBm0: -19}, dtmftest.Tone{Freq: 450, DBm0: -19}), dtmftest.Silence(200*ms), dtmftest.Tones(400*ms, dtmftest.Tone{Freq: 400, DBm0: -19}, dtmftest.Tone{Freq: 450, DBm0: -19}), dtmftest.Silence(2*time.Second)), "", 0},
		{"dial_tone_continuous", dtmftest.Tones(6*time.Second, dtmftest.Tone{Freq: 350, DBm0: -13}, dtmftest.Tone{Freq: 440, DBm0: -13}), "", 0},
		{"fax_answer_tone", dtmftest.Concat(dtmftest.Silence(200*ms), tone(2100, -12, 3300*ms), dtmftest.Silence(time.Second)), "", 0},
		{"greeting", dtmftest.Concat(dtmftest.Silence(500*ms), babble(4*time.Second, 9), dtmftest.Silence(time.Second)), ReasonGreeting, 0},
		{"greeting_with_pauses", dtmftest.Concat(dtmftest.Silence(500*ms), babble(1500*ms, 10), dtmftest.Silence(400*ms), babble(1500*ms, 11), dtmftest.Silence(400*ms), babble(1500*ms, 12)), ReasonGreeting, 0},
		{"short_greeting_then_beep_1000", dtmftest.Concat(dtmftest.Silence(300*ms), babble(1500*ms, 13), dtmftest.Silence(300*ms), tone(1000, -10, 500*ms), dtmftest.Silence(time.Second)), ReasonBeep, 1000},
		{"short_greeting_then_beep_425", dtmftest.Concat(dtmftest.Silence(300*ms), babble(1200*ms, 14), dtmftest.Silence(300*ms), tone(425, -16, 400*ms)), ReasonBeep, 420},
		{"short_greeting_then_beep_1400_quiet", dtmftest.Concat(dtmftest.Silence(300*ms), babble(1200*ms, 15), dtmftest.Silence(300*ms), tone(1400, -30, 320*ms)), ReasonBeep, 1400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := run(New(Config{}), tc.audio)
			if v.Reason != tc.want || v.Machine != (tc.want != "") {
				t.Fatalf("verdict %+v, want %q", v, tc.want)
			}
			if tc.beepHz != 0 && (v.BeepHz < tc.beepHz-20 || v.BeepHz > tc.beepHz+20) {
				t.Errorf("beep at %d Hz, want %d", v.BeepHz, tc.beepHz)
			}
		})
	}
}

// The verdict comes as the sign completes, not at the end of the audio.
func TestDetectorDecidesEarly(t *testing.T) {
	v := run(New(Config{}), dtmftest.Concat(dtmftest.Silence(500*ms), babble(10*time.Second, 20)))
	if !v.Machine || v.At < 3000*ms || v.At > 3300*ms {
		t.Errorf("verdict %+v: want a greeting decided 2.6 s into the speech", v)
	}
	v = run(New(Config{}), dtmftest.Concat(babble(time.Second, 21), dtmftest.Silence(200*ms), tone(850, -12, 2*time.Second)))
	if !v.Machine || v.Reason != ReasonBeep || v.At > 1560*ms {
		t.Errorf("verdict %+v: want the beep decided 300 ms into it", v)
	}
}

// After Config.Listen the audio is not looked at.
func TestDetectorListen(t *testing.T) {
	audio := dtmftest.Concat(dtmftest.Silence(2*time.Second), babble(time.Second, 40), dtmftest.Silence(200*ms), tone(1000, -12, time.Second))
	if v := run(New(Config{Listen: 2 * time.Second}), audio); v.Machine {
		t.Errorf("verdict %+v after Listen", v)
	}
	if v := run(New(Config{}), audio); !v.Machine || v.Reason != ReasonBeep {
		t.Errorf("verdict %+v, want the beep", v)
	}
}

func TestDetectorAllocations(t *testing.T) {
	d := New(Config{})
	audio := babble(time.Second, 30)
	if n := testing.AllocsPerRun(100, func() { d.Feed(audio[:160]) }); n != 0 {
		t.Errorf("%.0f allocations per frame", n)
	}
}

func BenchmarkDetector(b *testing.B) {
	audio := babble(10*time.Second, 31)
	b.SetBytes(int64(len(audio)))
	b.ReportAllocs()
	for b.Loop() {
		d := New(Config{StartWithin: time.Hour, Greeting: time.Hour, Listen: time.Hour})
		for i := 0; i < len(audio); i += 160 {
			d.Feed(audio[i : i+160])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(audio)), "ns/sample")
}

var _ = dtmf.KeyHash

// runEcho feeds audio while prompt plays from the start, telling the
// detector how loud the prompt was lately, as verify does.
func runEcho(d *Detector, audio, prompt []int16) Verdict {
	sent := NewSent(prompt)
	for i := 0; i < len(audio); i += 160 {
		d.Echo(sent.Level(dtmftest.Duration(i)))
		d.Feed(audio[i:min(i+160, len(audio))])
	}
	return d.Verdict()
}

// echoOf is prompt come back attenuated by erl dB and delayed.
func echoOf(prompt []int16, erl float64, delay time.Duration) []int16 {
	g := math.Pow(10, -erl/20)
	out := dtmftest.Silence(delay)
	for _, x := range prompt {
		out = append(out, int16(float64(x)*g))
	}
	return out
}

// TestDetectorEcho: the echo of our own prompt, however loud a line
// without an echo canceller returns it, is not a greeting; a machine that
// talks over the prompt still is, and a person who says hello over it and
// then listens is not.
func TestDetectorEcho(t *testing.T) {
	prompt := babble(7*time.Second, 50) // our prompt: 7 s of speech at about −20 dBm0
	tests := []struct {
		name  string
		audio []int16
		want  Reason
	}{
		{"echo_erl_12dB", echoOf(prompt, 12, 40*ms), ""},
		{"echo_erl_20dB_delay_250ms", echoOf(prompt, 20, 250*ms), ""},
		{"echo_erl_30dB", echoOf(prompt, 30, 100*ms), ""},
		{"hello_over_echo", mix(echoOf(prompt, 18, 60*ms), dtmftest.Concat(dtmftest.Silence(300*ms), babble(800*ms, 51))), ""},
		{"greeting_over_echo", mix(echoOf(prompt, 18, 60*ms), dtmftest.Concat(dtmftest.Silence(400*ms), babble(5*time.Second, 52))), ReasonGreeting},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := runEcho(New(Config{}), dtmftest.Concat(tc.audio, dtmftest.Silence(2*time.Second)), prompt)
			if v.Reason != tc.want {
				t.Errorf("verdict %+v, want %q", v, tc.want)
			}
		})
	}
	// Without the echo reference the echo is taken for a greeting: the
	// reference is what tells them apart.
	if v := run(New(Config{}), echoOf(prompt, 20, 40*ms)); !v.Machine {
		t.Errorf("without Echo: %+v", v)
	}
}

func TestSentLevel(t *testing.T) {
	prompt := dtmftest.Concat(dtmftest.Silence(time.Second), tone(1000, -10, 100*ms), dtmftest.Silence(time.Second))
	s := NewSent(prompt)
	tests := []struct {
		name string
		at   time.Duration
		loud bool
	}{
		{"before", -time.Second, false},
		{"silence_first", 500 * ms, false},
		{"during_tone", 1050 * ms, true},
		{"within_echo_delay_after", 1500 * ms, true},
		{"past_echo_delay", 1800 * ms, false},
		{"after_the_end", 10 * time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Level(tc.at) > 1e5; got != tc.loud {
				t.Errorf("Level(%v) = %v", tc.at, s.Level(tc.at))
			}
		})
	}
	if (*Sent)(nil).Level(0) != 0 {
		t.Error("nil Sent is not silent")
	}
}
