package dtmf_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	. "github.com/hashcall/hashcall/dtmf/dtmftest"
)

// The in-band rows of the DTMF conformance contract
// (shared/specs/dtmf-conformance.md). Default signal: −10 dBm0 per tone,
// 100 ms on, 100 ms of silence around.

const ms = time.Millisecond

// want is what a signal must produce.
type want struct {
	keys     string // the exact sequence of keys reported
	nearMiss bool   // talk-off: any number of other keys allowed (logged), never #
}

func keys(k string) want { return want{keys: k} }

var (
	accept = keys("#")
	reject = keys("")
	noHash = want{nearMiss: true}
)

type signal struct {
	name  string
	audio []int16
	want  want
}

// row is one row of the contract. minPass is the share of its signals that
// must pass (1 unless the row states a detection rate).
type row struct {
	id, desc string
	signals  func() []signal
	minPass  float64
}

func pad(parts ...[]int16) []int16 {
	return Concat(append(append([][]int16{Silence(100 * ms)}, parts...), Silence(100*ms))...)
}

func hash(d time.Duration) []int16 { return DTMF('#', -10, d) }

// aligned returns the signal built by f at every sample alignment against the
// detector's 102-sample block.
func aligned(name string, w want, f func() []int16) []signal {
	var out []signal
	for off := range 102 {
		out = append(out, signal{fmt.Sprintf("%s/offset%d", name, off), Concat(Silence(100*ms), Zeros(off), f(), Silence(100*ms)), w})
	}
	return out
}

func one(name string, w want, audio []int16) []signal { return []signal{{name, audio, w}} }

func conformanceRows() []row {
	lo, hi := 941.0, 1477.0
	dual := func(l, h float64) []int16 { return pad(DualTone(l, h, -10, -10, 100*ms)) }
	return []row{
		{id: "F1", desc: "ten presses 50 on 50 off", signals: func() []signal {
			return one("10x#", keys(strings.Repeat("#", 10)), Concat(Silence(50*ms), Sequence('#', 10, 50*ms, 50*ms, -10), Silence(50*ms)))
		}},
		{id: "F2", desc: "low tone ±1.5%", signals: func() []signal {
			return append(one("low+1.5%", accept, dual(lo*1.015, hi)), one("low-1.5%", accept, dual(lo*0.985, hi))...)
		}},
		{id: "F3", desc: "high tone ±1.5%", signals: func() []signal {
			return append(one("high+1.5%", accept, dual(lo, hi*1.015)), one("high-1.5%", accept, dual(lo, hi*0.985))...)
		}},
		{id: "F4", desc: "both tones ±1.5%", signals: func() []signal {
			var s []signal
			for _, a := range []float64{-1, 1} {
				for _, b := range []float64{-1, 1} {
					s = append(s, one(fmt.Sprintf("low%+.1f%%high%+.1f%%", a*1.5, b*1.5), accept, dual(lo*(1+a*0.015), hi*(1+b*0.015)))...)
				}
			}
			return s
		}},
		{id: "F5", desc: "each tone ±(1.5% + 2 Hz)", signals: func() []signal {
			off := func(f, sign float64) float64 { return f + sign*(f*0.015+2) }
			var s []signal
			for _, a := range []float64{-1, 0, 1} {
				for _, b := range []float64{-1, 0, 1} {
					if a == 0 && b == 0 {
						continue
					}
					s = append(s, one(fmt.Sprintf("low%+.0f_high%+.0f", a, b), accept, dual(off(lo, a), off(hi, b)))...)
				}
			}
			return s
		}},
		{id: "F6", desc: "either tone ±3.5%", signals: func() []signal {
			return []signal{
				{"low+3.5%", dual(lo*1.035, hi), reject}, {"low-3.5%", dual(lo*0.965, hi), reject},
				{"high+3.5%", dual(lo, hi*1.035), reject}, {"high-3.5%", dual(lo, hi*0.965), reject},
			}
		}},
		{id: "F8", desc: "neighbour keys are reported as themselves", signals: func() []signal {
			var s []signal
			for _, k := range []dtmf.Key{'*', '0', 'D', '9', 'C'} {
				s = append(s, signal{"key" + k.String(), pad(DTMF(k, -10, 100*ms)), keys(k.String())})
			}
			return s
		}},
		{id: "F9", desc: "one tone alone", signals: func() []signal {
			return []signal{
				{"941Hz", pad(Tones(time.Second, Tone{Freq: lo, DBm0: -10})), reject},
				{"1477Hz", pad(Tones(time.Second, Tone{Freq: hi, DBm0: -10})), reject},
			}
		}},
		{id: "L1", desc: "0 dBm0 per tone", signals: func() []signal { return one("0dBm0", accept, pad(DTMF('#', 0, 100*ms))) }},
		{id: "L2", desc: "−25 dBm0 per tone", signals: func() []signal { return one("-25dBm0", accept, pad(DTMF('#', -25, 100*ms))) }},
		{id: "L3", desc: "−36 dBm0 per tone", signals: func() []signal { return one("-36dBm0", accept, pad(DTMF('#', -36, 100*ms))) }},
		{id: "L4", desc: "−45, −55, −60 dBm0 per tone", signals: func() []signal {
			var s []signal
			for _, l := range []float64{-45, -55, -60} {
				s = append(s, signal{fmt.Sprintf("%.0fdBm0", l), pad(DTMF('#', l, 100*ms)), reject})
			}
			return s
		}},
		{id: "T1", desc: "low tone 8 dB above high", signals: func() []signal { return one("low+8dB", accept, pad(DTMFTwist('#', -10, -18, 100*ms))) }},
		{id: "T2", desc: "high tone 4 dB above low", signals: func() []signal { return one("high+4dB", accept, pad(DTMFTwist('#', -14, -10, 100*ms))) }},
		{id: "T3", desc: "twist beyond the limits", signals: func() []signal {
			return []signal{
				{"low+10dB", pad(DTMFTwist('#', -10, -20, 100*ms)), reject},
				{"high+6dB", pad(DTMFTwist('#', -16, -10, 100*ms)), reject},
			}
		}},
		{id: "D1", desc: "40 ms at every alignment", signals: func() []signal {
			return aligned("40ms", accept, func() []int16 { return hash(40 * ms) })
		}},
		{id: "D2", desc: "23, 20 and 8 ms at every alignment", signals: func() []signal {
			var s []signal
			for _, d := range []time.Duration{23 * ms, 20 * ms, 8 * ms} {
				s = append(s, aligned(d.String(), reject, func() []int16 { return hash(d) })...)
			}
			return s
		}},
		{id: "D4", desc: "10 ms drop-out at every alignment", signals: func() []signal {
			return aligned("dropout10ms", accept, func() []int16 { return Dropout(hash(100*ms), Samples(45*ms), Samples(10*ms)) })
		}},
		{id: "D6", desc: "two presses 40 ms apart at every alignment", signals: func() []signal {
			return aligned("pause40ms", keys("##"), func() []int16 { return Concat(hash(100*ms), Silence(40*ms), hash(100*ms)) })
		}},
		{id: "D7", desc: "held 2 s and 10 s", signals: func() []signal {
			return []signal{{"2s", pad(hash(2 * time.Second)), accept}, {"10s", pad(hash(10 * time.Second)), accept}}
		}},
		{id: "D8", desc: "20 presses 50 on 43 off", signals: func() []signal {
			return one("20x#", keys(strings.Repeat("#", 20)), Concat(Silence(43*ms), Sequence('#', 20, 50*ms, 43*ms, -10), Silence(43*ms)))
		}},
		{id: "N1", desc: "white noise 15 dB below the weaker tone, 1000 trials", minPass: 0.999, signals: func() []signal {
			rng := NewRand(1)
			var s []signal
			for i := range 1000 {
				s = append(s, signal{fmt.Sprintf("trial%d", i), AddNoise(rng, pad(hash(100*ms)), -25), accept})
			}
			return s
		}},
		{id: "N3", desc: "dial tone under a press; dial tone alone", signals: func() []signal {
			press := pad(hash(100 * ms))
			dial := Tones(Duration(len(press)), Tone{Freq: 350, DBm0: -20}, Tone{Freq: 440, DBm0: -20})
			return []signal{{"dial+#", Mix(press, dial), accept}, {"dial", Tones(2*time.Second, Tone{Freq: 350, DBm0: -10}, Tone{Freq: 440, DBm0: -10}), reject}}
		}},
		{id: "N5", desc: "one 20 ms frame lost mid-tone, every frame alignment", signals: func() []signal {
			var s []signal
			for off := 0; off < 160; off += 3 {
				audio := Concat(Silence(100*ms), Zeros(off), hash(100*ms), Silence(100*ms))
				// Zero the 160-sample RTP frame holding the tone's midpoint.
				mid := 800 + off + 400
				s = append(s, signal{fmt.Sprintf("offset%d", off), Dropout(audio, mid/160*160, 160), accept})
			}
			return s
		}},
		{id: "S4", desc: "network tones", signals: func() []signal {
			return []signal{
				{"busy", Busy(10 * time.Second), noHash}, {"ringback", Ringback(12 * time.Second), noHash},
				{"dial", DialTone(5 * time.Second), noHash}, {"SIT", SIT(5 * time.Second), noHash},
				{"1004Hz", Tone1004(3 * time.Second), noHash}, {"CNG", CNG(10 * time.Second), noHash},
				{"CED", CED(5 * time.Second), noHash},
			}
		}},
	}
}

// codecs are the paths a signal takes into the detector: G.711 µ-law and
// A-law as on the wire (the contract's round trips), and 16-bit linear.
var codecs = []struct {
	name string
	run  func(d *dtmf.Detector, dst []dtmf.Event, s []int16) []dtmf.Event
}{
	{"ulaw", func(d *dtmf.Detector, dst []dtmf.Event, s []int16) []dtmf.Event {
		return feedFrames(EncodeUlaw(s), dst, d.FeedUlaw)
	}},
	{"alaw", func(d *dtmf.Detector, dst []dtmf.Event, s []int16) []dtmf.Event {
		return feedFrames(EncodeAlaw(s), dst, d.FeedAlaw)
	}},
	{"linear", func(d *dtmf.Detector, dst []dtmf.Event, s []int16) []dtmf.Event { return feedFrames(s, dst, d.Feed) }},
}

// feedFrames feeds 20 ms RTP-sized frames.
func feedFrames[T any](s []T, dst []dtmf.Event, feed func([]dtmf.Event, []T) []dtmf.Event) []dtmf.Event {
	for len(s) > 0 {
		n := min(160, len(s))
		dst = feed(dst, s[:n])
		s = s[n:]
	}
	return dst
}

// presses runs audio through a fresh detector and returns the keys of the
// presses it reported, checking that each press is reported as started
// and then ended.
func presses(t *testing.T, run func(*dtmf.Detector, []dtmf.Event, []int16) []dtmf.Event, audio []int16) (string, []dtmf.Event) {
	t.Helper()
	d := dtmf.NewDetector()
	ev := d.Flush(run(d, nil, audio))
	var b strings.Builder
	var starts []dtmf.Event
	for i, e := range ev {
		if e.Ended != (i%2 == 1) {
			t.Fatalf("reports do not alternate start/end: %v", ev)
		}
		if !e.Ended {
			b.WriteString(e.Key.String())
			starts = append(starts, e)
		}
	}
	return b.String(), starts
}

func TestConformanceInband(t *testing.T) {
	for _, r := range conformanceRows() {
		t.Run(r.id+"_"+strings.NewReplacer(" ", "_", "%", "pct").Replace(r.desc), func(t *testing.T) {
			t.Parallel()
			sigs := r.signals()
			minPass := r.minPass
			if minPass == 0 {
				minPass = 1
			}
			for _, c := range codecs {
				failed := 0
				for _, s := range sigs {
					got, starts := presses(t, c.run, s.audio)
					ok := got == s.want.keys
					if s.want.nearMiss {
						ok = !strings.Contains(got, "#")
						for _, e := range starts {
							t.Logf("near miss: %s %s %s: %v", r.id, s.name, c.name, e)
						}
					}
					if !ok {
						failed++
						if minPass == 1 || failed <= 3 {
							t.Logf("%s %s: got %q, want %q", c.name, s.name, got, s.want.keys)
						}
					}
				}
				if rate := 1 - float64(failed)/float64(len(sigs)); rate < minPass {
					t.Errorf("%s: %d of %d signals failed (pass rate %.4f, need %.4f)", c.name, failed, len(sigs), rate, minPass)
				}
			}
		})
	}
}

// R14: the same physical press heard in-band and as RFC 4733 events, with the
// events up to 150 ms before or after the tone, is one # through the
// combiner, whichever path reports first.
func TestConformanceR14_inband_and_rfc4733_one_press(t *testing.T) {
	for _, c := range codecs[:2] {
		for _, skew := range []time.Duration{-150 * ms, -60 * ms, 0, 60 * ms, 150 * ms} {
			t.Run(fmt.Sprintf("%s/skew%v", c.name, skew), func(t *testing.T) {
				audio := pad(hash(120 * ms)) // tone from 100 ms to 220 ms
				det := dtmf.NewDetector()
				rx := dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: 101})
				enc := dtmf.NewEncoder(dtmf.EncoderConfig{PayloadType: 101, SSRC: 0x1234, Interval: 20 * ms})
				pkts := enc.Press(nil, '#', 120*ms)
				var comb dtmf.Combiner
				var out, ev []dtmf.Event
				raw := map[dtmf.Source]int{}
				// Walk the call in 20 ms steps: one audio frame each, plus
				// the event packets due by then (first one at 100 ms + skew).
				next := 0
				for i := 0; i < len(audio); i += 160 {
					now := time.Duration(i) * time.Second / 8000
					ev = c.run(det, ev[:0], audio[i:min(i+160, len(audio))])
					for next < len(pkts) && 100*ms+skew+pkts[next].Offset <= now {
						p := pkts[next]
						b, _ := p.Payload.Marshal()
						ev = rx.Packet(ev, now, &p.Header, b)
						next++
					}
					ev = rx.Tick(ev, now)
					for _, e := range ev {
						raw[e.Source]++
						out = comb.Push(out, e)
					}
				}
				ev = rx.Flush(det.Flush(ev[:0]))
				for _, e := range ev {
					raw[e.Source]++
					out = comb.Push(out, e)
				}
				if raw[dtmf.SourceInband] != 2 || raw[dtmf.SourceRFC4733] != 2 {
					t.Fatalf("both paths must report the press (start and end): %v", raw)
				}
				starts := 0
				for _, e := range out {
					if !e.Ended {
						starts++
						if e.Key != '#' {
							t.Errorf("unexpected key %v", e)
						}
					}
				}
				if starts != 1 {
					t.Fatalf("got %d presses, want one: %v", starts, out)
				}
			})
		}
	}
}
