package media

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/dtmf/dtmftest"
)

// allKeys is every DTMF key once, in the order a code could use them.
const allKeys = "0123456789*#ABCD"

// keying is a far end's keying for TestStreamEveryKeyOnce: presses of keys
// with on and off times, sent as telephone-events, as tones, or both (the
// tones delayed by leak and cut by a drop-out in the middle of each).
type keying struct {
	keys     string
	on, off  time.Duration
	events   bool
	tones    bool
	leak     time.Duration // how far the tones are behind the events
	dropout  time.Duration // silence in the middle of each tone
	toneDBm0 float64
}

// packets writes the far end's RTP: one audio packet every 20 ms (PCMU)
// for the whole call, and each press's event packets at their send times,
// all in one SSRC and sequence space in arrival order.
func (k keying) packets() []pkt {
	const lead = 200 * time.Millisecond
	total := lead + time.Duration(len(k.keys))*(k.on+k.off) + k.leak + 500*time.Millisecond
	samples := make([]int16, int(total*SampleRate/time.Second))
	level := k.toneDBm0
	if level == 0 {
		level = -12
	}
	type ev struct {
		at  time.Duration
		pkt dtmf.Packet
	}
	var events []ev
	const ts0, t0 = uint32(1000), time.Second
	for i, key := range k.keys {
		start := lead + time.Duration(i)*(k.on+k.off)
		if k.tones {
			var tone []int16
			if k.dropout > 0 {
				half := (k.on - k.dropout) / 2
				tone = dtmftest.Concat(dtmftest.DTMF(dtmf.Key(key), level, half), dtmftest.Silence(k.dropout), dtmftest.DTMF(dtmf.Key(key), level-15, k.on-k.dropout-half))
			} else {
				tone = dtmftest.DTMF(dtmf.Key(key), level, k.on)
			}
			copy(samples[int((start+k.leak)*SampleRate/time.Second):], tone)
		}
		if k.events {
			enc := dtmf.NewEncoder(dtmf.EncoderConfig{PayloadType: 101, SSRC: 0x5151, Timestamp: ts0 + uint32(start*SampleRate/time.Second), Interval: FrameDuration})
			for _, p := range enc.Press(nil, dtmf.Key(key), k.on) {
				events = append(events, ev{at: t0 + start + p.Offset + time.Millisecond, pkt: p})
			}
		}
	}
	far := &phone{from: ap(farEnd), ssrc: 0x5151, ts: ts0, at: t0, codec: PCMU}
	out := far.audio(samples)
	for _, e := range events {
		payload, _ := e.pkt.Payload.Marshal()
		out = append(out, pkt{at: e.at, from: far.from, b: marshal(e.pkt.Header, payload)})
	}
	slices.SortStableFunc(out, func(a, b pkt) int { return int(a.at - b.at) })
	for i := range out {
		out[i].b[2], out[i].b[3] = byte(i>>8), byte(i) // one sequence space, in arrival order
	}
	return out
}

// TestStreamEveryKeyOnce is "one press, one key" for all sixteen keys on
// the live receive path: a code's digit doubled or lost is a wrong code.
func TestStreamEveryKeyOnce(t *testing.T) {
	tests := []struct {
		name string
		k    keying
	}{
		// Q.24's fastest keying: 40 ms on, 40 ms off.
		{"inband_q24_40ms_on_40ms_off", keying{keys: allKeys, on: 40 * time.Millisecond, off: 40 * time.Millisecond, tones: true}},
		{"rfc4733_40ms_on_40ms_off", keying{keys: allKeys, on: 40 * time.Millisecond, off: 40 * time.Millisecond, events: true}},
		{"inband_slow", keying{keys: allKeys, on: 250 * time.Millisecond, off: 600 * time.Millisecond, tones: true}},
		{"rfc4733_slow", keying{keys: allKeys, on: 250 * time.Millisecond, off: 600 * time.Millisecond, events: true}},
		{"repeated_digits_fast", keying{keys: "1122##00", on: 40 * time.Millisecond, off: 40 * time.Millisecond, tones: true}},
		{"repeated_digits_rfc4733", keying{keys: "1122##00", on: 60 * time.Millisecond, off: 60 * time.Millisecond, events: true}},
		// Events and the same tones leaked into the audio (Asterisk), the
		// audio in step, a little behind, and well behind the events.
		{"events_and_leak_in_step", keying{keys: allKeys, on: 100 * time.Millisecond, off: 150 * time.Millisecond, events: true, tones: true}},
		{"events_and_leak_150ms_behind", keying{keys: allKeys, on: 100 * time.Millisecond, off: 150 * time.Millisecond, events: true, tones: true, leak: 150 * time.Millisecond}},
		{"events_and_leak_400ms_behind", keying{keys: allKeys, on: 100 * time.Millisecond, off: 150 * time.Millisecond, events: true, tones: true, leak: 400 * time.Millisecond}},
		{"events_and_leak_1s_behind", keying{keys: allKeys, on: 100 * time.Millisecond, off: 200 * time.Millisecond, events: true, tones: true, leak: time.Second}},
		{"events_and_leak_split_by_dropout", keying{keys: allKeys, on: 160 * time.Millisecond, off: 200 * time.Millisecond, events: true, tones: true, leak: 110 * time.Millisecond, dropout: 20 * time.Millisecond}},
		{"events_and_leak_fast_keying", keying{keys: allKeys, on: 40 * time.Millisecond, off: 40 * time.Millisecond, events: true, tones: true, leak: 60 * time.Millisecond}},
		{"events_and_leak_repeated_digits", keying{keys: "1122##00", on: 80 * time.Millisecond, off: 80 * time.Millisecond, events: true, tones: true, leak: 300 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStream(streamCfg(PCMU))
			evs := feed(s, tc.k.packets())
			var got strings.Builder
			var sources []string
			for _, e := range evs {
				if !e.Ended {
					got.WriteString(e.Key.String())
					sources = append(sources, e.Source.String())
				}
			}
			if got.String() != tc.k.keys {
				t.Errorf("keys %q, want %q (sources %v)", got.String(), tc.k.keys, sources)
			}
			if tc.k.events && tc.k.tones && tc.k.leak > 0 {
				for i, src := range sources {
					if src != dtmf.SourceRFC4733.String() {
						t.Errorf("press %d from %s: the tones are behind the events", i, src)
					}
				}
			}
			if st := s.Stats(); st.Dropped.Total() != 0 {
				t.Errorf("dropped %+v", st.Dropped)
			}
		})
	}
}

func ExampleStream_everyKeyOnce() {
	k := keying{keys: "2013785496", on: 100 * time.Millisecond, off: 150 * time.Millisecond, events: true, tones: true, leak: 400 * time.Millisecond}
	s := NewStream(streamCfg(PCMU))
	for _, e := range feed(s, k.packets()) {
		if !e.Ended {
			fmt.Print(e.Key)
		}
	}
	fmt.Println()
	// Output: 2013785496
}

// sinkRecorder keeps what an AudioSink is given.
type sinkRecorder struct{ got []int16 }

func (r *sinkRecorder) Audio(s []int16) { r.got = append(r.got, s...) }

// TestStreamAudioSink: the sink gets the decoded audio, lost packets
// concealed with silence, and nothing of telephone-events; the path still
// allocates nothing with a sink that does not.
func TestStreamAudioSink(t *testing.T) {
	for _, codec := range []Codec{PCMU, PCMA} {
		t.Run(codec.Name, func(t *testing.T) {
			s := NewStream(streamCfg(codec))
			rec := &sinkRecorder{}
			s.SetAudio(rec)
			far := newPhone(farEnd, codec)
			tone := dtmftest.Tones(200*time.Millisecond, dtmftest.Tone{Freq: 1000, DBm0: -10})
			pk := concat(far.audio(tone[:800]), far.press(101, '5', 60*time.Millisecond), far.audio(tone[800:]))
			lost := pk[len(pk)-4] // one audio packet lost: concealed
			var in []pkt
			for _, p := range pk {
				if &p.b[0] != &lost.b[0] {
					in = append(in, p)
				}
			}
			feed(s, in)
			if len(rec.got) != len(tone) {
				t.Fatalf("sink got %d samples, want %d", len(rec.got), len(tone))
			}
			if lvl := dtmftest.ToneLevel(rec.got[:800], 1000); lvl < -11 || lvl > -9 {
				t.Errorf("decoded level %.1f dBm0, want −10", lvl)
			}
			silent := 0
			for _, x := range rec.got {
				if x > -64 && x < 64 {
					silent++
				}
			}
			if silent < 160 {
				t.Errorf("%d silent samples: the lost packet was not concealed", silent)
			}
		})
	}
}

// countSink counts samples and allocates nothing.
type countSink struct{ n int }

func (c *countSink) Audio(s []int16) { c.n += len(s) }

func TestStreamAudioSinkAllocs(t *testing.T) {
	s := NewStream(streamCfg(PCMU))
	sink := &countSink{}
	s.SetAudio(sink)
	far := newPhone(farEnd, PCMU)
	pk := far.silence(2 * time.Second)
	i := 0
	var dst []dtmf.Event
	if n := testing.AllocsPerRun(50, func() {
		p := pk[i%len(pk)]
		i++
		dst, _ = s.Packet(dst[:0], p.at, p.from, p.b)
	}); n != 0 {
		t.Errorf("%.1f allocations per packet with an audio sink", n)
	}
	if sink.n == 0 {
		t.Error("the sink got nothing")
	}
}

// A far end that moved (Retarget), or an update without telephone-events,
// has its in-band presses heard again.
func TestStreamInbandAfterEventsGone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(s *Stream)
	}{
		{"retarget", func(s *Stream) { s.Retarget(ap(farEnd)) }},
		{"update_without_events", func(s *Stream) { c := streamCfg(PCMU); c.HaveEvents = false; s.Update(c) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStream(streamCfg(PCMU))
			far := newPhone(farEnd, PCMU)
			evs := feed(s, concat(far.silence(100*time.Millisecond), far.press(101, '1', 100*time.Millisecond), far.silence(200*time.Millisecond)))
			if len(starts(evs, '1')) != 1 {
				t.Fatalf("event press: %v", evs)
			}
			tc.change(s)
			evs = feed(s, far.audio(dtmftest.Concat(dtmftest.Silence(100*time.Millisecond), dtmftest.DTMF('2', -10, 100*time.Millisecond), dtmftest.Silence(200*time.Millisecond))))
			if h := starts(evs, '2'); len(h) != 1 || h[0].Source != dtmf.SourceInband {
				t.Errorf("in-band press after the change: %v", evs)
			}
		})
	}
}
