package dtmf

import (
	"math"
	"testing"
)

func TestAmplitude(t *testing.T) {
	// The contract's table.
	for _, tt := range []struct {
		dBm0 float64
		want float64
	}{{3.14, 32767}, {0, 22826}, {-10, 7218}, {-25, 1284}, {-36, 362}, {-45, 128}, {-55, 41}} {
		if got := math.Round(Amplitude(tt.dBm0)); got != tt.want {
			t.Errorf("Amplitude(%v) = %v, want %v", tt.dBm0, got, tt.want)
		}
	}
}
