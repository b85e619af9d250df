//go:build spandsp

package dtmf_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	. "github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/tools/spandsp"
)

// Side by side with spandsp's dtmf_rx, the contract's reference detector
// (shared/specs/dtmf-conformance.md, "Speed"). Needs libspandsp-dev:
//
//	go test -tags spandsp -run Spandsp -v ./dtmf/
//	go test -tags spandsp -run XX -bench Spandsp -benchmem ./dtmf/
//
// spandsp's disagreements with the contract are logged with the prefix
// "spandsp:" and never fail a test; only our detector's failures do.
// Timings are logged, never judged.

// g711RoundTrips are the linear signals spandsp gets for codecs[:2]: the
// same audio after one G.711 hop.
var g711RoundTrips = []struct {
	name      string
	roundTrip func([]int16) []int16
}{{"ulaw", RoundTripUlaw}, {"alaw", RoundTripAlaw}}

// feedSpandsp runs 16-bit linear audio through rx in 20 ms frames.
func feedSpandsp(rx *spandsp.Rx, audio []int16) {
	for len(audio) > 0 {
		n := min(160, len(audio))
		rx.Feed(audio[:n])
		audio = audio[n:]
	}
}

// spandspRun runs audio through a fresh spandsp receiver in 20 ms frames
// and returns the starts it reported.
func spandspRun(tb testing.TB, audio []int16) []spandsp.Event {
	rx := mustRx(tb)
	defer rx.Close()
	feedSpandsp(rx, audio)
	var starts []spandsp.Event
	for _, e := range rx.Events() {
		if !e.Ended {
			starts = append(starts, e)
		}
	}
	return starts
}

func spandspKeys(starts []spandsp.Event) string {
	var b strings.Builder
	for _, e := range starts {
		b.WriteByte(e.Key)
	}
	return b.String()
}

// meets reports whether the keys got satisfy w.
func meets(w want, got string) bool {
	if w.nearMiss {
		return !strings.Contains(got, "#")
	}
	return got == w.keys
}

// describe says what w expects, for log lines.
func describe(w want) string {
	if w.nearMiss {
		return "no #"
	}
	return fmt.Sprintf("%q", w.keys)
}

func TestSpandspConformance(t *testing.T) {
	for i, rt := range g711RoundTrips {
		if codecs[i].name != rt.name {
			t.Fatalf("codecs[%d] is %s, want %s", i, codecs[i].name, rt.name)
		}
	}
	type tally struct {
		id, desc          string
		n, ours, theirs   int
		oursOK, theirsOK  bool
		theirsFailedCodec []string
	}
	const maxLines = 10 // per row and codec; the rest are counted
	var table []tally
	for _, r := range conformanceRows() {
		sigs := r.signals()
		minPass := r.minPass
		if minPass == 0 {
			minPass = 1
		}
		tl := tally{id: r.id, desc: r.desc, oursOK: true, theirsOK: true}
		for ci, rt := range g711RoundTrips {
			var oursFailed, theirsFailed int
			for _, s := range sigs {
				got, _ := presses(t, codecs[ci].run, s.audio)
				if meets(s.want, got) {
					tl.ours++
				} else {
					oursFailed++
					if minPass == 1 || oursFailed <= 3 {
						t.Logf("hashcall: %s %s %s: got %q, want %s", r.id, s.name, rt.name, got, describe(s.want))
					}
				}
				sgot := spandspKeys(spandspRun(t, rt.roundTrip(s.audio)))
				if meets(s.want, sgot) {
					tl.theirs++
				} else {
					theirsFailed++
					if theirsFailed <= maxLines {
						t.Logf("spandsp: %s %s %s: got %q, want %s", r.id, s.name, rt.name, sgot, describe(s.want))
					}
				}
			}
			if theirsFailed > maxLines {
				t.Logf("spandsp: %s %s: … and %d more signals", r.id, rt.name, theirsFailed-maxLines)
			}
			rate := func(failed int) float64 { return 1 - float64(failed)/float64(len(sigs)) }
			if rate(oursFailed) < minPass {
				tl.oursOK = false
				t.Errorf("hashcall: %s %s: %d of %d signals failed (pass rate %.4f, need %.4f)",
					r.id, rt.name, oursFailed, len(sigs), rate(oursFailed), minPass)
			}
			if rate(theirsFailed) < minPass {
				tl.theirsOK = false
				tl.theirsFailedCodec = append(tl.theirsFailedCodec, rt.name)
			}
			tl.n += len(sigs)
		}
		table = append(table, tl)
	}

	verdict := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "disagrees"
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "row\tdesc\thashcall\t\tspandsp\t")
	var oursRows, theirsRows int
	var failedRows []string
	for _, tl := range table {
		fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%d/%d\t%s\n", tl.id, tl.desc,
			tl.ours, tl.n, verdict(tl.oursOK), tl.theirs, tl.n, verdict(tl.theirsOK))
		if tl.oursOK {
			oursRows++
		}
		if tl.theirsOK {
			theirsRows++
		} else {
			failedRows = append(failedRows, tl.id+" ("+strings.Join(tl.theirsFailedCodec, ", ")+")")
		}
	}
	w.Flush()
	t.Logf("spandsp: signals through µ-law and A-law; a row is ok when its pass rate meets the contract\n%s"+
		"rows met: hashcall %d/%d, spandsp %d/%d; spandsp fails %s",
		b.String(), oursRows, len(table), theirsRows, len(table), strings.Join(failedRows, ", "))
}

// TestSpandspTalkOff runs the talk-off corpora (rows S1 and S2) through
// both detectors, at native level and +6 dB, via µ-law and A-law, and
// counts each one's false #. Only ours can fail the test.
func TestSpandspTalkOff(t *testing.T) {
	corpora := []struct {
		name, pkg string
		patterns  []string
	}{
		{"S1_speech_asterisk_core_sounds", "asterisk-core-sounds-en-wav",
			[]string{"/usr/share/asterisk/sounds/*/*.wav", "/usr/share/asterisk/sounds/*/*/*.wav", "/usr/share/asterisk/sounds/*/*/*/*.wav"}},
		{"S2_music_asterisk_moh", "asterisk-moh-opsound-wav", []string{"/usr/share/asterisk/moh/*.wav"}},
	}
	for _, c := range corpora {
		t.Run(c.name, func(t *testing.T) {
			clips := readClips(t, testpeers.Glob(t, c.pkg, c.patterns...))
			var samples, oursHash, theirsHash, oursNear, theirsNear int
			for _, cl := range clips {
				for _, gain := range []float64{0, 6} {
					audio := cl.audio
					if gain != 0 {
						audio = Gain(audio, gain)
					}
					for ci, rt := range g711RoundTrips {
						samples += len(audio)
						_, starts := presses(t, codecs[ci].run, audio)
						for _, e := range starts {
							if e.Key.Accepted() {
								oursHash++
								t.Errorf("hashcall: TALK-OFF: %s at %+.0f dB via %s: %v", cl.name, gain, rt.name, e)
							} else {
								oursNear++
							}
						}
						for _, e := range spandspRun(t, rt.roundTrip(audio)) {
							at := float64(e.Sample) / SampleRate
							if e.Key == '#' {
								theirsHash++
								t.Logf("spandsp: false # in %s at %+.0f dB via %s, confirmed at %.3f s, %d dBm0", cl.name, gain, rt.name, at, e.LevelDBm0)
							} else {
								theirsNear++
								t.Logf("spandsp: near miss %c in %s at %+.0f dB via %s, confirmed at %.3f s", e.Key, cl.name, gain, rt.name, at)
							}
						}
					}
				}
			}
			t.Logf("spandsp: %d clips, %.1f min of audio through each detector: spandsp %d false # and %d other digits, hashcall %d false # and %d other digits",
				len(clips), float64(samples)/SampleRate/60, theirsHash, theirsNear, oursHash, oursNear)
		})
	}
}

// mixPressEvery is the spacing of the # presses in the speed mix.
const mixPressEvery = 20 * time.Second

// mixAudio is audio for the speed comparison.
type mixAudio struct {
	audio   []int16
	src     string // what it is made of
	presses []int  // sample offsets of the # presses in it
}

// speedMix is ten minutes of audio like a call's, built once: the Asterisk
// prompts (asterisk-core-sounds-en-wav) one after another in name order,
// with a 100 ms # at −10 dBm0 between 200 ms of silence after the prompt
// that crosses each 20 s mark. Without the prompts it is a synthetic mix
// of noise, network tones and silence with the same presses.
var speedMix = sync.OnceValue(func() mixAudio {
	total := Samples(10 * time.Minute)
	press := Concat(Silence(200*ms), DTMF('#', -10, 100*ms), Silence(200*ms))
	var parts [][]int16
	m := mixAudio{src: "synthetic noise, network tones and silence"}
	files, _ := filepath.Glob("/usr/share/asterisk/sounds/*/*.wav")
	more, _ := filepath.Glob("/usr/share/asterisk/sounds/*/*/*.wav")
	files = append(files, more...)
	slices.Sort(files)
	for _, f := range files {
		s, err := readWAVFile(f)
		if err == nil && len(s) > 0 {
			parts = append(parts, s)
		}
	}
	if len(parts) > 0 {
		m.src = fmt.Sprintf("Asterisk prompts (%d files)", len(parts))
	} else {
		rng := NewRand(7)
		parts = [][]int16{
			WhiteNoise(rng, Samples(3*time.Second), -30), Silence(time.Second),
			DialTone(2 * time.Second), WhiteNoise(rng, Samples(2*time.Second), -20),
			Ringback(4 * time.Second), Busy(2 * time.Second), Silence(500 * ms),
			Tone1004(time.Second), WhiteNoise(rng, Samples(4*time.Second), -40),
		}
	}
	mix := make([]int16, 0, total+len(press))
	next := Samples(mixPressEvery)
	for i := 0; len(mix) < total; i = (i + 1) % len(parts) {
		mix = append(mix, parts[i]...)
		if len(mix) >= next && len(mix)+len(press) <= total {
			m.presses = append(m.presses, len(mix))
			mix = append(mix, press...)
			next += Samples(mixPressEvery)
		}
	}
	m.audio = mix[:total]
	return m
})

func readWAVFile(name string) ([]int16, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return ReadWAV(bytes.NewReader(b))
}

// callMix returns the first d (at most 10 minutes) of speedMix as µ-law,
// what it is made of, and the number of # presses in it.
func callMix(tb testing.TB, d time.Duration) ([]byte, string, int) {
	tb.Helper()
	m := speedMix()
	n := Samples(d)
	if n > len(m.audio) {
		tb.Fatalf("callMix: %v is longer than the mix", d)
	}
	presses := 0
	for _, p := range m.presses {
		if p+Samples(500*ms) <= n {
			presses++
		}
	}
	return EncodeUlaw(m.audio[:n]), m.src, presses
}

// frames160 calls feed on b in 20 ms µ-law frames.
func frames160(b []byte, feed func([]byte)) {
	for len(b) >= 160 {
		feed(b[:160])
		b = b[160:]
	}
	if len(b) > 0 {
		feed(b)
	}
}

// BenchmarkSpandsp compares spandsp's dtmf_rx with our detector on the same
// minute of call-like µ-law audio, fed in 160-byte frames, one long-lived
// detector each. spandsp gets the bytes decoded by table into a reused
// buffer, in one cgo call per frame.
func BenchmarkSpandsp(b *testing.B) {
	ul, src, presses := callMix(b, time.Minute)
	b.Logf("input: %.0f s of %s with %d #, as µ-law in 160-byte frames", float64(len(ul))/SampleRate, src, presses)
	perSample := func(b *testing.B, iters int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters)/float64(len(ul)), "ns/sample")
	}
	b.Run("ulaw/spandsp", func(b *testing.B) {
		rx := mustRx(b)
		defer rx.Close()
		b.SetBytes(int64(len(ul)))
		b.ReportAllocs()
		iters := 0
		for b.Loop() {
			frames160(ul, rx.FeedUlaw)
			iters++
		}
		perSample(b, iters)
	})
	b.Run("ulaw/hashcall", func(b *testing.B) {
		d := dtmf.NewDetector()
		ev := make([]dtmf.Event, 0, 16)
		feed := func(f []byte) { ev = d.FeedUlaw(ev[:0], f) }
		b.SetBytes(int64(len(ul)))
		b.ReportAllocs()
		iters := 0
		for b.Loop() {
			frames160(ul, feed)
			iters++
		}
		perSample(b, iters)
	})
}

// TestSpandspSpeedRatio times both detectors on the same ten minutes of
// call-like µ-law audio (best of three runs each) and logs the ratio. It
// never fails on timing: that belongs to BenchmarkSpandsp.
func TestSpandspSpeedRatio(t *testing.T) {
	ul, src, presses := callMix(t, 10*time.Minute)
	best := func(run func()) time.Duration {
		var b time.Duration
		for i := range 3 {
			start := time.Now()
			run()
			if d := time.Since(start); i == 0 || d < b {
				b = d
			}
		}
		return b
	}
	var theirsKeys, oursKeys string
	theirs := best(func() {
		rx := mustRx(t)
		defer rx.Close()
		frames160(ul, rx.FeedUlaw)
		theirsKeys = rx.Digits()
	})
	ours := best(func() {
		d := dtmf.NewDetector()
		ev := make([]dtmf.Event, 0, 16)
		var keys []byte
		frames160(ul, func(f []byte) {
			ev = d.FeedUlaw(ev[:0], f)
			for _, e := range ev {
				if !e.Ended {
					keys = append(keys, byte(e.Key))
				}
			}
		})
		oursKeys = string(keys)
	})
	n := float64(len(ul))
	theirsNS, oursNS := float64(theirs.Nanoseconds())/n, float64(ours.Nanoseconds())/n
	t.Logf("spandsp: hashcall is %.1f× faster (%.2f ns/sample vs %.2f ns/sample) on %.0f min of %s, best of 3",
		theirsNS/oursNS, oursNS, theirsNS, n/SampleRate/60, src)
	t.Logf("spandsp: keys found in the mix (%d # inserted): hashcall %q, spandsp %q", presses, oursKeys, theirsKeys)
	// The contract's speed target ("Speed" in CONFORMANCE.md): at least twice
	// spandsp on the same audio. Best of three runs each, so a busy machine
	// slows both sides rather than deciding the ratio.
	if ratio := theirsNS / oursNS; ratio < 2 {
		t.Errorf("hashcall is only %.2f× spandsp's speed on the same audio; the contract asks for at least 2×", ratio)
	}
}

func mustRx(tb testing.TB) *spandsp.Rx {
	tb.Helper()
	rx, err := spandsp.New()
	if err != nil {
		tb.Fatal(err)
	}
	return rx
}
