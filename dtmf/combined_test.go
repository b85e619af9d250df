package dtmf_test

import (
	"testing"
	"time"

	. "github.com/hashcall/hashcall/dtmf/dtmftest"
)

// TestCombinedExtremes: Q.24's operate limits at once — level, twist up to
// 8 dB reverse and 4 dB normal, ±1.5 % on either tone and the 40 ms minimum
// — still give exactly one #, on µ-law and A-law, at several block
// alignments. (One block's twist estimate is off by up to 2 dB when a tone
// is off-frequency; the press is judged on the average over its blocks.)
func TestCombinedExtremes(t *testing.T) {
	lo, hi := 941.0, 1477.0
	misses, total := 0, 0
	for _, level := range []float64{-3, -10, -25} {
		for _, twist := range []float64{-8, 0, 4} { // high minus low, dB
			for _, dl := range []float64{-1, 0, 1} {
				for _, dh := range []float64{-1, 0, 1} {
					for _, d := range []time.Duration{40 * ms, 100 * ms} {
						for _, off := range []int{0, 37, 71} {
							low, high := level, level+twist
							if twist > 0 {
								low, high = level-twist, level
							}
							tone := DualTone(lo*(1+dl*0.015), hi*(1+dh*0.015), low, high, d)
							audio := Concat(Silence(100*ms), Zeros(off), tone, Silence(100*ms))
							for _, c := range codecs[:2] {
								total++
								if got, _ := presses(t, c.run, audio); got != "#" {
									misses++
									t.Errorf("%s level %v twist %+v low %+v%% high %+v%% %v offset %d: got %q",
										c.name, level, twist, dl*1.5, dh*1.5, d, off, got)
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d of %d combined-extreme signals missed", misses, total)
}

// TestCombinedRejects: Q.24's non-operate limits hold across levels and
// twists: a tone 3.5 % off, or a press of 23 ms, never gives a #.
func TestCombinedRejects(t *testing.T) {
	lo, hi := 941.0, 1477.0
	accepted, total := 0, 0
	for _, level := range []float64{-3, -10, -25} {
		for _, twist := range []float64{-8, 0, 4} {
			low, high := level, level+twist
			if twist > 0 {
				low, high = level-twist, level
			}
			type sig struct {
				name string
				tone []int16
			}
			var sigs []sig
			for _, d := range []time.Duration{40 * ms, 100 * ms, time.Second} {
				for _, off := range []float64{-0.035, 0.035} {
					sigs = append(sigs,
						sig{"low off " + d.String(), DualTone(lo*(1+off), hi, low, high, d)},
						sig{"high off " + d.String(), DualTone(lo, hi*(1+off), low, high, d)})
				}
			}
			sigs = append(sigs, sig{"23ms", DualTone(lo, hi, low, high, 23*ms)})
			for _, s := range sigs {
				for _, off := range []int{0, 37, 71} {
					audio := Concat(Silence(100*ms), Zeros(off), s.tone, Silence(100*ms))
					for _, c := range codecs[:2] {
						total++
						if got, _ := presses(t, c.run, audio); got == "#" {
							accepted++
							t.Errorf("%s level %v twist %+v %s offset %d: accepted", c.name, level, twist, s.name, off)
						}
					}
				}
			}
		}
	}
	t.Logf("%d of %d non-operate signals accepted", accepted, total)
}
