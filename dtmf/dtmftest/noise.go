package dtmftest

import (
	"math"
	"math/rand/v2"
	"sync"

	"github.com/hashcall/hashcall/dtmf"
)

// NewRand returns a deterministic random source for the noise functions.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9E3779B97F4A7C15))
}

// Noise band edges in Hz: the telephone channel.
const (
	NoiseLowHz  = 300
	NoiseHighHz = 3400
)

// bandTaps is the length of the band-pass FIR; with a Blackman window its
// transition bands are about ±110 Hz around the edges and its stop band is
// more than 70 dB down.
const bandTaps = 201

// bandPass returns the FIR coefficients of a 300–3400 Hz band-pass filter.
var bandPass = sync.OnceValue(func() []float64 {
	h := make([]float64, bandTaps)
	f1, f2 := float64(NoiseLowHz)/SampleRate, float64(NoiseHighHz)/SampleRate
	mid := (bandTaps - 1) / 2
	for i := range h {
		m := float64(i - mid)
		ideal := 2*f2*sinc(2*f2*m) - 2*f1*sinc(2*f1*m)
		x := 2 * math.Pi * float64(i) / (bandTaps - 1)
		h[i] = ideal * (0.42 - 0.5*math.Cos(x) + 0.08*math.Cos(2*x))
	}
	return h
})

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// WhiteNoise returns n samples of Gaussian noise band-limited to
// 300–3400 Hz, scaled so that its measured power is exactly dBm0 (see
// [LevelDBm0]; up to rounding). The noise is flat within the band.
// Gaussian noise has a high crest factor: above about −6 dBm0 its peaks
// are clipped and the level falls short.
func WhiteNoise(rng *rand.Rand, n int, dBm0 float64) []int16 {
	if n <= 0 {
		return []int16{}
	}
	h := bandPass()
	raw := make([]float64, n+len(h)-1)
	for i := range raw {
		raw[i] = rng.NormFloat64()
	}
	y := make([]float64, n)
	var sum float64
	for i := range y {
		var acc float64
		for j, c := range h {
			acc += c * raw[i+j]
		}
		y[i] = acc
		sum += acc * acc
	}
	a0 := dtmf.Amplitude(0)
	target := a0 * a0 / 2 * math.Pow(10, dBm0/10)
	g := math.Sqrt(target / (sum / float64(n)))
	out := make([]int16, n)
	for i, v := range y {
		out[i] = sat(v * g)
	}
	return out
}

// AddNoise returns s with band-limited white noise at dBm0 mixed in (see
// [WhiteNoise]). For a signal-to-noise ratio, pass the signal's level minus
// the ratio: noise 15 dB below −10 dBm0 tones is AddNoise(rng, s, −25).
func AddNoise(rng *rand.Rand, s []int16, dBm0 float64) []int16 {
	return Mix(s, WhiteNoise(rng, len(s), dBm0))
}
