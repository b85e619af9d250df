package dtmftest

import (
	"math"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
)

var allKeys = []dtmf.Key("123A456B789C*0#D")

// allFreqs returns the eight DTMF frequencies, from the keys of the
// diagonal.
func allFreqs() []float64 {
	var fs []float64
	for _, k := range []dtmf.Key("159D") {
		low, high, _ := k.Freqs()
		fs = append(fs, low, high)
	}
	return fs
}

func TestSamples(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {-time.Second, 0}, {time.Microsecond, 0}, {62500 * time.Nanosecond, 1},
		{12750 * time.Microsecond, 102}, {23 * time.Millisecond, 184}, {100 * time.Millisecond, 800},
		{time.Hour, 28_800_000}, {time.Second + 40*time.Millisecond, 8320},
	} {
		if got := Samples(tt.d); got != tt.want {
			t.Errorf("Samples(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
	if got := Duration(800); got != 100*time.Millisecond {
		t.Errorf("Duration(800) = %v", got)
	}
}

func TestKeyFreqs(t *testing.T) {
	want := map[dtmf.Key][2]float64{
		'1': {697, 1209}, '2': {697, 1336}, '3': {697, 1477}, 'A': {697, 1633},
		'4': {770, 1209}, '5': {770, 1336}, '6': {770, 1477}, 'B': {770, 1633},
		'7': {852, 1209}, '8': {852, 1336}, '9': {852, 1477}, 'C': {852, 1633},
		'*': {941, 1209}, '0': {941, 1336}, '#': {941, 1477}, 'D': {941, 1633},
	}
	for k, f := range want {
		low, high, ok := k.Freqs()
		if !ok || low != f[0] || high != f[1] {
			t.Errorf("%v.Freqs() = %v, %v, %v; want %v", k, low, high, ok, f)
		}
	}
	for _, k := range []dtmf.Key{0, 'E', 'a', ' ', 255} {
		if _, _, ok := k.Freqs(); ok {
			t.Errorf("%q.Freqs() ok", byte(k))
		}
		if DTMF(k, -10, time.Second) != nil || Sequence(k, 2, time.Second, time.Second, -10) != nil {
			t.Errorf("key %q generated a signal", byte(k))
		}
	}
}

// TestDTMFLevels measures each tone of every key, linear and after G.711.
func TestDTMFLevels(t *testing.T) {
	hops := []struct {
		name string
		f    func([]int16) []int16
		tol  float64
	}{
		{"linear", func(s []int16) []int16 { return s }, 0.05},
		{"ulaw", RoundTripUlaw, 0.2},
		{"alaw", RoundTripAlaw, 0.2},
	}
	for _, hop := range hops {
		for _, k := range allKeys {
			for _, level := range []float64{-10, -25, -36} {
				s := hop.f(DTMF(k, level, 100*time.Millisecond))
				if len(s) != 800 {
					t.Fatalf("len = %d, want 800", len(s))
				}
				low, high, _ := k.Freqs()
				for _, f := range []float64{low, high} {
					if got := ToneLevel(s, f); math.Abs(got-level) > hop.tol {
						t.Errorf("%s %v at %v dBm0: %v Hz measures %.2f dBm0", hop.name, k, level, f, got)
					}
				}
				// The other six DTMF frequencies are absent.
				for _, f := range allFreqs() {
					if f == low || f == high {
						continue
					}
					if got := ToneLevel(s, f); got > level-40 {
						t.Errorf("%s %v at %v dBm0: stray %v Hz at %.1f dBm0", hop.name, k, level, f, got)
					}
				}
			}
		}
	}
	// Two tones at −10 dBm0 each are −7 dBm0 of power.
	if got := LevelDBm0(DTMF('#', -10, time.Second)); math.Abs(got-(-10+10*math.Log10(2))) > 0.02 {
		t.Errorf("LevelDBm0 of # at −10 per tone = %.3f", got)
	}
}

func TestTwist(t *testing.T) {
	s := DTMFTwist('#', -2, -10, 100*time.Millisecond)
	if lo, hi := ToneLevel(s, 941), ToneLevel(s, 1477); math.Abs(lo+2) > 0.05 || math.Abs(hi+10) > 0.05 {
		t.Errorf("twist −8 dB: low %.2f high %.2f", lo, hi)
	}
}

// peakFreq scans ToneLevel in 0.5 Hz steps within ±span of around.
func peakFreq(s []int16, around, span float64) float64 {
	best, bestF := math.Inf(-1), 0.0
	for f := around - span; f <= around+span; f += 0.5 {
		if l := ToneLevel(s, f); l > best {
			best, bestF = l, f
		}
	}
	return bestF
}

func TestFrequencies(t *testing.T) {
	s := DTMF('#', -10, time.Second)
	if f := peakFreq(s, 941, 30); math.Abs(f-941) > 0.5 {
		t.Errorf("low tone peak at %v Hz", f)
	}
	if f := peakFreq(s, 1477, 30); math.Abs(f-1477) > 0.5 {
		t.Errorf("high tone peak at %v Hz", f)
	}
	off := DualTone(941*1.035, 1477*0.985-2, -10, -10, time.Second)
	if f := peakFreq(off, 974, 20); math.Abs(f-941*1.035) > 0.5 {
		t.Errorf("off-frequency low tone peak at %v Hz, want %v", f, 941*1.035)
	}
	if f := peakFreq(off, 1453, 20); math.Abs(f-(1477*0.985-2)) > 0.5 {
		t.Errorf("off-frequency high tone peak at %v Hz, want %v", f, 1477*0.985-2)
	}
	// Zero crossings of a single tone: two per cycle.
	for _, hz := range []float64{350, 1004, 2100} {
		one := Tones(time.Second, Tone{Freq: hz, DBm0: -10, Phase: 0.1})
		if got := crossings(one); math.Abs(float64(got)-2*hz) > 1 {
			t.Errorf("%v Hz: %d zero crossings in 1 s", hz, got)
		}
	}
}

func crossings(s []int16) int {
	n := 0
	for i := 1; i < len(s); i++ {
		if (s[i-1] < 0) != (s[i] < 0) {
			n++
		}
	}
	return n
}

func TestPhaseAndSaturation(t *testing.T) {
	s := Tones(time.Millisecond, Tone{Freq: 1000, DBm0: -10, Phase: math.Pi / 2})
	if want := int16(math.Round(dtmf.Amplitude(-10))); s[0] != want {
		t.Errorf("cosine starts at %d, want %d", s[0], want)
	}
	loud := Tones(time.Second, Tone{Freq: 1000, DBm0: 10})
	var hi, lo int16
	for i, v := range loud {
		hi, lo = max(hi, v), min(lo, v)
		ideal := math.Sin(2 * math.Pi * 1000 * float64(i) / SampleRate)
		if ideal > 0.01 && v <= 0 || ideal < -0.01 && v >= 0 {
			t.Fatalf("sample %d wrapped: %d", i, v)
		}
	}
	if hi != math.MaxInt16 || lo != math.MinInt16 {
		t.Errorf("+10 dBm0 sine spans %d..%d, want saturation", lo, hi)
	}
	if got := Tones(10 * time.Millisecond); len(got) != 80 || LevelDBm0(got) != math.Inf(-1) {
		t.Errorf("Tones without tones is not silence")
	}
}

func TestEditing(t *testing.T) {
	a := []int16{1, 2, 3}
	b := []int16{30000, -30000}
	if got := Concat(a, nil, b); !equal(got, []int16{1, 2, 3, 30000, -30000}) {
		t.Errorf("Concat = %v", got)
	}
	if got := Mix(b, a); !equal(got, []int16{30001, -29998, 3}) {
		t.Errorf("Mix = %v", got)
	}
	if got := Mix(b, b); !equal(got, []int16{32767, -32768}) {
		t.Errorf("Mix saturation = %v", got)
	}
	if got := Gain([]int16{1000, -1000, 20000}, 6.0206); !equal(got, []int16{2000, -2000, 32767}) {
		t.Errorf("Gain = %v", got)
	}
	if got := Gain(a, -200); !equal(got, []int16{0, 0, 0}) {
		t.Errorf("Gain −200 dB = %v", got)
	}
	s := []int16{1, 2, 3, 4, 5}
	for _, tt := range []struct {
		start, n int
		want     []int16
	}{
		{1, 2, []int16{1, 0, 0, 4, 5}},
		{-1, 2, []int16{0, 2, 3, 4, 5}},
		{4, 10, []int16{1, 2, 3, 4, 0}},
		{9, 1, []int16{1, 2, 3, 4, 5}},
		{2, -1, []int16{1, 2, 3, 4, 5}},
	} {
		if got := Dropout(s, tt.start, tt.n); !equal(got, tt.want) {
			t.Errorf("Dropout(%d, %d) = %v, want %v", tt.start, tt.n, got, tt.want)
		}
	}
	if !equal(s, []int16{1, 2, 3, 4, 5}) {
		t.Errorf("Dropout modified its input: %v", s)
	}
	if len(Zeros(-3)) != 0 || len(Zeros(7)) != 7 || len(Silence(20*time.Millisecond)) != 160 {
		t.Error("Zeros or Silence length wrong")
	}
}

func equal(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// onOff returns, per block of 10 ms, whether s has energy in it.
func onOff(s []int16) []bool {
	var out []bool
	for i := 0; i+80 <= len(s); i += 80 {
		out = append(out, LevelDBm0(s[i:i+80]) > -40)
	}
	return out
}

// runs summarises an on/off pattern as alternating run lengths, starting
// with an "on" run (possibly 0).
func runs(p []bool) []int {
	var out []int
	state, n := true, 0
	for _, v := range p {
		if v != state {
			out = append(out, n)
			state, n = v, 0
		}
		n++
	}
	return append(out, n)
}

func TestSequence(t *testing.T) {
	s := Sequence('#', 3, 50*time.Millisecond, 43*time.Millisecond, -10)
	if want := 344 + 3*(400+344); len(s) != want {
		t.Fatalf("len = %d, want %d", len(s), want)
	}
	press := DTMF('#', -10, 50*time.Millisecond)
	for i := range 3 {
		start := 344 + i*744
		if !equal(s[start:start+400], press) {
			t.Errorf("press %d is not at sample %d", i, start)
		}
		if LevelDBm0(s[start-344:start]) != math.Inf(-1) {
			t.Errorf("gap before press %d is not silent", i)
		}
	}
	if LevelDBm0(s[len(s)-344:]) != math.Inf(-1) {
		t.Error("no trailing silence")
	}
	if got := Sequence('#', 0, time.Second, 40*time.Millisecond, -10); len(got) != 320 {
		t.Errorf("zero presses: %d samples, want the 320 of one gap", len(got))
	}
}
