// Package dtmftest builds test signals for DTMF detectors: key presses with
// chosen levels, twist, frequency offsets and timing, noise, network
// progress tones, G.711 round trips and WAV output for listening to a
// failing case.
//
// All signals are 8 kHz 16-bit linear audio ([]int16). Levels are in dBm0
// with the G.711 convention of the conformance contract: a full-scale sine
// (peak 32767) is +3.14 dBm0, so a sine of L dBm0 has peak amplitude
// 32767·10^((L−3.14)/20) ([Amplitude]). Generators round to the nearest
// integer and saturate at the int16 limits instead of wrapping; note that
// two tones at 0 dBm0 each (peak 2 × 22826) do clip.
//
// Every function returns a new slice and never modifies its arguments.
// Functions that take a *rand.Rand are deterministic for a given source:
// use [NewRand] with a fixed seed.
package dtmftest

import (
	"math"
	"time"

	"github.com/hashcall/hashcall/dtmf"
)

// SampleRate is the sample rate of every signal, in Hz.
const SampleRate = 8000

// Samples returns the number of samples in d at [SampleRate], rounded to
// the nearest sample; zero for negative durations.
func Samples(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	whole := int64(d/time.Second) * SampleRate
	frac := (int64(d%time.Second)*SampleRate + int64(time.Second)/2) / int64(time.Second)
	return int(whole + frac)
}

// Duration returns the duration of n samples at [SampleRate].
func Duration(n int) time.Duration {
	return time.Duration(int64(n) * int64(time.Second) / SampleRate)
}

// Tone is one sine component of a signal.
type Tone struct {
	Freq  float64 // Hz
	DBm0  float64 // level; see [Amplitude]
	Phase float64 // starting phase in radians
}

// Tones returns d of the sum of the given sines, starting at their phases.
// With no tones it returns silence.
func Tones(d time.Duration, tones ...Tone) []int16 {
	return tonesN(Samples(d), tones...)
}

// tonesN is Tones for a sample count.
func tonesN(n int, tones ...Tone) []int16 {
	out := make([]int16, n)
	amp := make([]float64, len(tones))
	w := make([]float64, len(tones))
	for j, t := range tones {
		amp[j] = dtmf.Amplitude(t.DBm0)
		w[j] = 2 * math.Pi * t.Freq / SampleRate
	}
	for i := range out {
		var v float64
		for j, t := range tones {
			v += amp[j] * math.Sin(w[j]*float64(i)+t.Phase)
		}
		out[i] = sat(v)
	}
	return out
}

// sat rounds v to the nearest int16, saturating at the limits.
func sat(v float64) int16 {
	v = math.Round(v)
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(v)
}

// DTMF returns d of key k with both tones at dBm0 each. It returns nil for
// a k that is not a DTMF key.
func DTMF(k dtmf.Key, dBm0 float64, d time.Duration) []int16 {
	return DTMFTwist(k, dBm0, dBm0, d)
}

// DTMFTwist returns d of key k with the low (row) tone at lowDBm0 and the
// high (column) tone at highDBm0; the twist is highDBm0 − lowDBm0. It
// returns nil for a k that is not a DTMF key.
func DTMFTwist(k dtmf.Key, lowDBm0, highDBm0 float64, d time.Duration) []int16 {
	low, high, ok := k.Freqs()
	if !ok {
		return nil
	}
	return DualTone(low, high, lowDBm0, highDBm0, d)
}

// DualTone returns d of two sines at arbitrary frequencies and levels, for
// off-frequency and neighbour-key tests.
func DualTone(lowHz, highHz, lowDBm0, highDBm0 float64, d time.Duration) []int16 {
	return Tones(d, Tone{Freq: lowHz, DBm0: lowDBm0}, Tone{Freq: highHz, DBm0: highDBm0})
}

// Silence returns d of digital silence (zeros).
func Silence(d time.Duration) []int16 {
	return make([]int16, Samples(d))
}

// Zeros returns n samples of silence, for shifting a signal by single
// samples (alignment tests).
func Zeros(n int) []int16 {
	return make([]int16, max(n, 0))
}

// Concat returns the parts one after another.
func Concat(parts ...[]int16) []int16 {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]int16, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Mix returns the sample-wise sum of a and b, saturating, as long as the
// longer of the two (the shorter one is taken as followed by silence).
func Mix(a, b []int16) []int16 {
	if len(a) < len(b) {
		a, b = b, a
	}
	out := make([]int16, len(a))
	for i, v := range a {
		s := int32(v)
		if i < len(b) {
			s += int32(b[i])
		}
		out[i] = int16(min(max(s, math.MinInt16), math.MaxInt16))
	}
	return out
}

// Gain returns s amplified by dB (negative attenuates), rounded and saturating.
func Gain(s []int16, dB float64) []int16 {
	g := math.Pow(10, dB/20)
	out := make([]int16, len(s))
	for i, v := range s {
		out[i] = sat(float64(v) * g)
	}
	return out
}

// Dropout returns a copy of s with the n samples from index start zeroed,
// as a lost packet or a line interruption would leave it. The range is
// clipped to s.
func Dropout(s []int16, start, n int) []int16 {
	out := append([]int16(nil), s...)
	lo := min(max(start, 0), len(out))
	hi := min(max(start+n, lo), len(out))
	clear(out[lo:hi])
	return out
}

// Sequence returns n presses of key k, each on long at dBm0 per tone,
// separated by off of silence, with off of silence also before the first
// and after the last press. It returns nil for a k that is not a DTMF key,
// and just the silence for n ≤ 0.
func Sequence(k dtmf.Key, n int, on, off time.Duration, dBm0 float64) []int16 {
	press := DTMF(k, dBm0, on)
	if press == nil {
		return nil
	}
	gap := Silence(off)
	out := make([]int16, 0, len(gap)+max(n, 0)*(len(press)+len(gap)))
	out = append(out, gap...)
	for range n {
		out = append(out, press...)
		out = append(out, gap...)
	}
	return out
}

// LevelDBm0 returns the RMS level of s in dBm0 (the power of the whole
// signal, relative to a 0 dBm0 sine); −Inf for empty or silent input. Two
// tones at −10 dBm0 each measure about −7 dBm0.
func LevelDBm0(s []int16) float64 {
	if len(s) == 0 {
		return math.Inf(-1)
	}
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return powerDBm0(sum / float64(len(s)))
}

// powerDBm0 converts a mean square on the 16-bit scale to dBm0.
func powerDBm0(meanSquare float64) float64 {
	a0 := dtmf.Amplitude(0)
	return 10 * math.Log10(meanSquare/(a0*a0/2))
}

// ToneLevel returns the level in dBm0 of the sine component of s at freq
// Hz, measured with a Hann-windowed DFT evaluated at exactly freq. Other
// components more than about 4·SampleRate/len(s) Hz away (40 Hz for 100 ms)
// do not disturb it. It returns −Inf for empty input.
func ToneLevel(s []int16, freq float64) float64 {
	n := len(s)
	if n == 0 {
		return math.Inf(-1)
	}
	var re, im, wsum float64
	for i, v := range s {
		w := 0.5 - 0.5*math.Cos(2*math.Pi*(float64(i)+0.5)/float64(n))
		sin, cos := math.Sincos(2 * math.Pi * freq * float64(i) / SampleRate)
		re += w * float64(v) * cos
		im += w * float64(v) * sin
		wsum += w
	}
	amp := 2 * math.Hypot(re, im) / wsum
	return 20 * math.Log10(amp/dtmf.Amplitude(0))
}
