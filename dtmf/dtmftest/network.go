package dtmftest

import "time"

// NetworkToneDBm0 is the level per frequency of the call progress tones
// below: that of North American dial tone. (The precise tone plan puts
// ringback at −19 and busy at −24 dBm0 per tone; the louder level is the
// harder case for talk-off tests. Use [Cadenced] for other levels.)
const NetworkToneDBm0 = -13

// Cadenced returns d of the sum of tones switched on for on and off for
// off, starting with on; every burst starts at the tones' phases. With
// off ≤ 0 the tones are continuous.
func Cadenced(d, on, off time.Duration, tones ...Tone) []int16 {
	total := Samples(d)
	if off <= 0 {
		return tonesN(total, tones...)
	}
	burst := Tones(on, tones...)
	period := len(burst) + Samples(off)
	out := make([]int16, total)
	for start := 0; start < total; start += period {
		copy(out[start:], burst)
	}
	return out
}

// netTones returns the given frequencies at NetworkToneDBm0 each.
func netTones(freqs ...float64) []Tone {
	t := make([]Tone, len(freqs))
	for i, f := range freqs {
		t[i] = Tone{Freq: f, DBm0: NetworkToneDBm0}
	}
	return t
}

// DialTone returns d of North American dial tone: 350 + 440 Hz, continuous.
func DialTone(d time.Duration) []int16 {
	return Cadenced(d, 0, 0, netTones(350, 440)...)
}

// Ringback returns d of North American ringback (audible ringing): 440 +
// 480 Hz, 2 s on, 4 s off.
func Ringback(d time.Duration) []int16 {
	return Cadenced(d, 2*time.Second, 4*time.Second, netTones(440, 480)...)
}

// Busy returns d of North American busy tone: 480 + 620 Hz, 0.5 s on,
// 0.5 s off.
func Busy(d time.Duration) []int16 {
	return Cadenced(d, 500*time.Millisecond, 500*time.Millisecond, netTones(480, 620)...)
}

// SIT segment frequencies and durations: the North American (Telcordia)
// encoded special information tone with the low first and second segment
// frequencies and short, short, long segments. (ITU-T E.180's SIT uses
// 950, 1400 and 1800 Hz.)
var sitSegments = [3]struct {
	freq float64
	dur  time.Duration
}{
	{913.8, 274 * time.Millisecond},
	{1370.6, 274 * time.Millisecond},
	{1776.7, 380 * time.Millisecond},
}

// SITGap is the silence after each SIT triplet, where the network would
// play its recorded announcement.
const SITGap = time.Second

// SIT returns d of special information tones: 913.8 Hz for 274 ms, 1370.6 Hz
// for 274 ms and 1776.7 Hz for 380 ms, then [SITGap] of silence, repeated.
func SIT(d time.Duration) []int16 {
	var cycle []int16
	for _, s := range sitSegments {
		cycle = append(cycle, Tones(s.dur, netTones(s.freq)...)...)
	}
	cycle = append(cycle, Silence(SITGap)...)
	out := make([]int16, Samples(d))
	for start := 0; start < len(out); start += len(cycle) {
		copy(out[start:], cycle)
	}
	return out
}

// Tone1004 returns d of the 1004 Hz test tone at 0 dBm0 (the digital
// milliwatt a test line plays), continuous.
func Tone1004(d time.Duration) []int16 {
	return Tones(d, Tone{Freq: 1004, DBm0: 0})
}

// CNG returns d of the T.30 fax calling tone: 1100 Hz, 0.5 s on, 3 s off.
func CNG(d time.Duration) []int16 {
	return Cadenced(d, 500*time.Millisecond, 3*time.Second, netTones(1100)...)
}

// CED returns d of the answer tone of fax and modems (T.30 CED, V.25
// ANS): 2100 Hz, continuous, without phase reversals.
func CED(d time.Duration) []int16 {
	return Cadenced(d, 0, 0, netTones(2100)...)
}
