package dtmf

import "math"

// The DTMF frequency plan (ITU-T Q.23): four row (low group) and four column
// (high group) tones; a key is one of each.
//
//	       1209  1336  1477  1633 Hz
//	697      1     2     3     A
//	770      4     5     6     B
//	852      7     8     9     C
//	941      *     0     #     D
//
// These are the one table of hashcall's DTMF frequencies: the detector,
// the tone generators of media and dtmftest read them through [Key.Freqs].
var (
	toneFreqs = [8]float64{697, 770, 852, 941, 1209, 1336, 1477, 1633}
	keyGrid   = [4][4]Key{
		{'1', '2', '3', 'A'},
		{'4', '5', '6', 'B'},
		{'7', '8', '9', 'C'},
		{'*', '0', '#', 'D'},
	}
)

// Freqs returns the low (row) and high (column) frequencies of k in Hz
// (ITU-T Q.23), and ok false when k is not one of the sixteen DTMF keys.
func (k Key) Freqs() (low, high float64, ok bool) {
	for r, row := range keyGrid {
		for c, key := range row {
			if key == k {
				return toneFreqs[r], toneFreqs[4+c], true
			}
		}
	}
	return 0, 0, false
}

// fullScaleDBm0 is the level of a full-scale sine (peak 32767): G.711's
// digital milliwatt (ITU-T G.711 Tables 5 and 6) puts 0 dBm0 3.14 dB below
// the codec's overload point.
const fullScaleDBm0 = 3.14

// Amplitude returns the peak amplitude of a sine at dBm0 on the 16-bit
// linear scale: 0 dBm0 ≈ 22826, −10 ≈ 7218, −25 ≈ 1284, −36 ≈ 362. It is
// the one level formula of the detector and of every tone generator.
func Amplitude(dBm0 float64) float64 {
	return 32767 * math.Pow(10, (dBm0-fullScaleDBm0)/20)
}
