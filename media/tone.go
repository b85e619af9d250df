package media

import (
	"math"
	"time"

	"github.com/hashcall/hashcall/dtmf"
)

// toneLevelDBm0 is the level of each of the two tones: −7 dBm0 for the
// high group and −9 dBm0 for the low one are typical of phones (ITU-T Q.23
// leaves the levels to national standards); both well inside Q.24's
// acceptance range.
const (
	lowToneDBm0  = -9.0
	highToneDBm0 = -7.0
)

// dtmfTone returns d of key k as 8 kHz audio, or nil for an invalid key.
func dtmfTone(k dtmf.Key, d time.Duration) []int16 {
	low, high, ok := k.Freqs()
	if !ok || d <= 0 {
		return nil
	}
	n := int(d * SampleRate / time.Second)
	out := make([]int16, n)
	al, ah := dtmf.Amplitude(lowToneDBm0), dtmf.Amplitude(highToneDBm0)
	wl, wh := 2*math.Pi*low/SampleRate, 2*math.Pi*high/SampleRate
	for i := range out {
		out[i] = int16(math.Round(al*math.Sin(wl*float64(i)) + ah*math.Sin(wh*float64(i))))
	}
	return out
}
