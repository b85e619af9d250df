package media

import (
	"math"
	"time"

	"github.com/hashcall/hashcall/dtmf"
)

// dtmfFreqs are the row (low) and column (high) frequencies of each key
// (ITU-T Q.23).
var dtmfFreqs = map[dtmf.Key][2]float64{
	'1': {697, 1209}, '2': {697, 1336}, '3': {697, 1477}, 'A': {697, 1633},
	'4': {770, 1209}, '5': {770, 1336}, '6': {770, 1477}, 'B': {770, 1633},
	'7': {852, 1209}, '8': {852, 1336}, '9': {852, 1477}, 'C': {852, 1633},
	'*': {941, 1209}, '0': {941, 1336}, '#': {941, 1477}, 'D': {941, 1633},
}

// toneLevelDBm0 is the level of each of the two tones: −7 dBm0 for the
// high group and −9 dBm0 for the low one are typical of phones (ITU-T Q.23
// leaves the levels to national standards); both well inside Q.24's
// acceptance range.
const (
	lowToneDBm0  = -9.0
	highToneDBm0 = -7.0
)

// amplitude is the peak of a sine at dBm0 on the 16-bit scale (G.711: a
// full-scale sine is +3.14 dBm0).
func amplitude(dBm0 float64) float64 {
	return 32767 * math.Pow(10, (dBm0-3.14)/20)
}

// dtmfTone returns d of key k as 8 kHz audio, or nil for an invalid key.
func dtmfTone(k dtmf.Key, d time.Duration) []int16 {
	f, ok := dtmfFreqs[k]
	if !ok || d <= 0 {
		return nil
	}
	n := int(d * SampleRate / time.Second)
	out := make([]int16, n)
	al, ah := amplitude(lowToneDBm0), amplitude(highToneDBm0)
	wl, wh := 2*math.Pi*f[0]/SampleRate, 2*math.Pi*f[1]/SampleRate
	for i := range out {
		out[i] = int16(math.Round(al*math.Sin(wl*float64(i)) + ah*math.Sin(wh*float64(i))))
	}
	return out
}
