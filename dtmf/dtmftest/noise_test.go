package dtmftest

import (
	"math"
	"math/cmplx"
	"testing"
)

func TestWhiteNoiseLevel(t *testing.T) {
	rng := NewRand(1)
	for _, level := range []float64{-10, -25, -40, -60} {
		s := WhiteNoise(rng, 8000, level)
		if got := LevelDBm0(s); math.Abs(got-level) > 0.05 {
			t.Errorf("WhiteNoise at %v dBm0 measures %.3f", level, got)
		}
	}
	if len(WhiteNoise(rng, 0, -10)) != 0 || len(WhiteNoise(rng, -5, -10)) != 0 {
		t.Error("no samples asked, some returned")
	}
	// Mixed with a tone: powers add.
	tone := DTMF('#', -10, 1e9)
	mixed := AddNoise(NewRand(2), tone, -25)
	want := 10 * math.Log10(math.Pow(10, LevelDBm0(tone)/10)+math.Pow(10, -25.0/10))
	if got := LevelDBm0(mixed); math.Abs(got-want) > 0.1 {
		t.Errorf("AddNoise: %.2f dBm0, want %.2f", got, want)
	}
	if got := ToneLevel(mixed, 1477); math.Abs(got+10) > 0.3 {
		t.Errorf("tone under noise measures %.2f dBm0", got)
	}
}

func TestWhiteNoiseDeterministic(t *testing.T) {
	a := WhiteNoise(NewRand(42), 1000, -20)
	b := WhiteNoise(NewRand(42), 1000, -20)
	c := WhiteNoise(NewRand(43), 1000, -20)
	if !equal(a, b) {
		t.Error("same seed, different noise")
	}
	if equal(a, c) {
		t.Error("different seeds, same noise")
	}
}

// TestWhiteNoiseBand checks the spectrum with a Welch average: almost no
// power outside the telephone band, and flat inside it.
func TestWhiteNoiseBand(t *testing.T) {
	const n = 512
	s := WhiteNoise(NewRand(7), 64*n, -20)
	psd := make([]float64, n/2)
	for b := 0; b+n <= len(s); b += n {
		x := make([]complex128, n)
		for i := range x {
			w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/n)
			x[i] = complex(w*float64(s[b+i]), 0)
		}
		fft(x)
		for k := range psd {
			psd[k] += real(x[k])*real(x[k]) + imag(x[k])*imag(x[k])
		}
	}
	binHz := float64(SampleRate) / n
	var total, out float64
	bands := make([]float64, 4) // 400–3300 Hz in four equal parts
	var bandBins [4]int
	for k, p := range psd {
		f := float64(k) * binHz
		total += p
		if f < 200 || f > 3500 {
			out += p
		}
		if f >= 400 && f < 3300 {
			i := int((f - 400) / 725)
			bands[i] += p
			bandBins[i]++
		}
	}
	if frac := out / total; frac > 0.005 {
		t.Errorf("%.2f%% of the power is outside 200–3500 Hz", 100*frac)
	}
	mean := (bands[0]/float64(bandBins[0]) + bands[1]/float64(bandBins[1]) + bands[2]/float64(bandBins[2]) + bands[3]/float64(bandBins[3])) / 4
	for i, p := range bands {
		if dev := 10 * math.Log10(p/float64(bandBins[i])/mean); math.Abs(dev) > 1 {
			t.Errorf("sub-band %d deviates %.2f dB from flat", i, dev)
		}
	}
}

// fft is an in-place radix-2 FFT; len(x) must be a power of two.
func fft(x []complex128) {
	n := len(x)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		w := cmplx.Exp(complex(0, -2*math.Pi/float64(size)))
		for start := 0; start < n; start += size {
			wk := complex(1, 0)
			for k := range size / 2 {
				a, b := x[start+k], wk*x[start+k+size/2]
				x[start+k], x[start+k+size/2] = a+b, a-b
				wk *= w
			}
		}
	}
}
