package dtmftest

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestNetworkTones(t *testing.T) {
	tests := []struct {
		name  string
		s     []int16
		freqs []float64
		level float64
		runs  []int // on/off run lengths in 10 ms blocks
	}{
		{"dial", DialTone(2 * time.Second), []float64{350, 440}, -13, []int{200}},
		{"ringback", Ringback(13 * time.Second), []float64{440, 480}, -13, []int{200, 400, 200, 400, 100}},
		{"busy", Busy(2500 * time.Millisecond), []float64{480, 620}, -13, []int{50, 50, 50, 50, 50}},
		{"1004", Tone1004(time.Second), []float64{1004}, 0, []int{100}},
		{"CNG", CNG(8 * time.Second), []float64{1100}, -13, []int{50, 300, 50, 300, 50, 50}},
		{"CED", CED(3 * time.Second), []float64{2100}, -13, []int{300}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runs(onOff(tt.s)); !slices.Equal(got, tt.runs) {
				t.Errorf("cadence %v, want %v", got, tt.runs)
			}
			first := tt.s[:Samples(500*time.Millisecond)]
			for _, f := range tt.freqs {
				if got := ToneLevel(first, f); math.Abs(got-tt.level) > 0.1 {
					t.Errorf("%v Hz at %.2f dBm0, want %v", f, got, tt.level)
				}
			}
		})
	}
}

func TestSIT(t *testing.T) {
	s := SIT(4 * time.Second)
	if len(s) != 32000 {
		t.Fatalf("len = %d", len(s))
	}
	// 274 + 274 + 380 ms of tone (the 93rd block is partly on), 1 s gap, repeated.
	if got, want := runs(onOff(s[:Samples(1928*time.Millisecond)])), []int{93, 99}; !slices.Equal(got, want) {
		t.Errorf("cadence %v, want %v", got, want)
	}
	start := 0
	for _, seg := range sitSegments {
		n := Samples(seg.dur)
		part := s[start : start+n]
		if got := ToneLevel(part, seg.freq); math.Abs(got+13) > 0.1 {
			t.Errorf("segment %v Hz at %.2f dBm0", seg.freq, got)
		}
		if got := crossings(part); math.Abs(float64(got)-2*seg.freq*seg.dur.Seconds()) > 2 {
			t.Errorf("segment %v Hz: %d zero crossings", seg.freq, got)
		}
		start += n
	}
	if next := Samples(1928 * time.Millisecond); !slices.Equal(s[next:next+100], s[:100]) {
		t.Error("SIT does not repeat")
	}
}
