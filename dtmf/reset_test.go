package dtmf_test

import (
	"slices"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/dtmf/dtmftest"
)

// A detector reused after Reset reports exactly what a new one does, and a
// press cut by Reset leaves nothing behind to join the next audio.
func TestDetectorReset(t *testing.T) {
	silence := make([]int16, 800)
	press := dtmftest.DTMF(dtmf.KeyHash, -10, 100*time.Millisecond)
	signal := slices.Concat(silence, press, silence)
	keys := func(d *dtmf.Detector, s []int16) []dtmf.Key {
		var out []dtmf.Key
		for _, e := range d.Feed(nil, s) {
			if !e.Ended {
				out = append(out, e.Key)
			}
		}
		return out
	}
	fresh := keys(dtmf.NewDetector(), signal)
	if !slices.Equal(fresh, []dtmf.Key{dtmf.KeyHash}) {
		t.Fatalf("new detector: %v, want one #", fresh)
	}
	for _, tc := range []struct {
		name   string
		before []int16
	}{
		{"after_a_whole_press", signal},
		{"in_the_middle_of_a_press", slices.Concat(silence, press[:len(press)/2])},
		{"mid_block", silence[:37]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dtmf.NewDetector()
			d.Feed(nil, tc.before)
			d.Reset()
			if got := keys(d, signal); !slices.Equal(got, fresh) {
				t.Errorf("after Reset: %v, want %v as from a new detector", got, fresh)
			}
		})
	}
}
