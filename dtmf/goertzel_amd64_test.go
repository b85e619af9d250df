//go:build amd64 && !purego

package dtmf

import (
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// TestGoertzelKernels: the AVX2 kernel computes what the generic one does
// (to float32 rounding; FMA rounds once where the generic code rounds twice).
func TestGoertzelKernels(t *testing.T) {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		t.Skip("no AVX2/FMA on this CPU: the generic kernel is in use")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		var x [blockSize]float32
		amp := []float64{0, 1, 300, 8000, 32767}[trial%5]
		for i := range x {
			x[i] = float32(math.Round((rng.Float64()*2 - 1) * amp))
		}
		if trial%7 == 0 { // a tone
			for i := range x {
				x[i] = float32(math.Round(7000 * math.Sin(2*math.Pi*941*float64(i)/SampleRate)))
			}
		}
		var a, g bank
		goertzelAVX2(&a, &x)
		goertzelGeneric(&g, &x)
		check := func(name string, got, want []float32) {
			t.Helper()
			var scale float64 = 1
			for _, w := range want {
				scale = math.Max(scale, math.Abs(float64(w)))
			}
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*scale {
					t.Fatalf("trial %d %s[%d]: avx2 %g, generic %g", trial, name, i, got[i], want[i])
				}
			}
		}
		check("s1", a.s1[:], g.s1[:])
		check("s2", a.s2[:], g.s2[:])
		check("m1", a.m1[:], g.m1[:])
		check("m2", a.m2[:], g.m2[:])
		check("h1", a.h1[:], g.h1[:])
		check("h2", a.h2[:], g.h2[:])
		check("sub", a.sub[:], g.sub[:])
		check("sum", a.sum[:], g.sum[:])
	}
}
