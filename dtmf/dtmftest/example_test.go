package dtmftest_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/hashcall/hashcall/dtmf/dtmftest"
)

func ExampleDTMF() {
	s := dtmftest.DTMF('#', -10, 100*time.Millisecond)
	fmt.Println(len(s), "samples")
	fmt.Printf("941 Hz: %.1f dBm0, 1477 Hz: %.1f dBm0, total %.1f dBm0\n",
		dtmftest.ToneLevel(s, 941), dtmftest.ToneLevel(s, 1477), dtmftest.LevelDBm0(s))
	// Output:
	// 800 samples
	// 941 Hz: -10.0 dBm0, 1477 Hz: -10.0 dBm0, total -7.0 dBm0
}

func ExampleDTMFTwist() {
	// Low tone 8 dB above the high tone (contract row T1).
	s := dtmftest.DTMFTwist('#', -6, -14, 100*time.Millisecond)
	fmt.Printf("twist %.1f dB\n", dtmftest.ToneLevel(s, 1477)-dtmftest.ToneLevel(s, 941))
	// Output: twist -8.0 dB
}

func ExampleDualTone() {
	// Both tones of # 1.5 % high (contract row F4).
	s := dtmftest.DualTone(941*1.015, 1477*1.015, -10, -10, 100*time.Millisecond)
	fmt.Printf("%.1f Hz and %.1f Hz\n", 941*1.015, 1477*1.015)
	fmt.Printf("%.1f dBm0\n", dtmftest.ToneLevel(s, 941*1.015))
	// Output:
	// 955.1 Hz and 1499.2 Hz
	// -10.0 dBm0
}

func ExampleSequence() {
	// Contract row D8: 20 presses at 50 ms on, 43 ms off.
	s := dtmftest.Sequence('#', 20, 50*time.Millisecond, 43*time.Millisecond, -10)
	fmt.Println(dtmftest.Duration(len(s)))
	// Output: 1.903s
}

func ExampleAddNoise() {
	// Contract row N1: noise 15 dB below the weaker tone, after a µ-law hop.
	rng := dtmftest.NewRand(1)
	press := dtmftest.Concat(
		dtmftest.Silence(100*time.Millisecond),
		dtmftest.DTMF('#', -10, 100*time.Millisecond),
		dtmftest.Silence(100*time.Millisecond),
	)
	s := dtmftest.RoundTripUlaw(dtmftest.AddNoise(rng, press, -25))
	fmt.Printf("noise alone: %.1f dBm0\n", dtmftest.LevelDBm0(s[:800]))
	// Output: noise alone: -25.0 dBm0
}

func ExampleDropout() {
	// Contract row N5: one 20 ms frame lost in the middle of a press.
	s := dtmftest.DTMF('#', -10, 100*time.Millisecond)
	s = dtmftest.Dropout(s, dtmftest.Samples(40*time.Millisecond), dtmftest.Samples(20*time.Millisecond))
	fmt.Println(dtmftest.LevelDBm0(s[320:480]))
	// Output: -Inf
}

func ExampleBusy() {
	s := dtmftest.Mix(dtmftest.Busy(time.Second), dtmftest.DTMF('#', -10, 200*time.Millisecond))
	fmt.Println(dtmftest.Duration(len(s)))
	// Output: 1s
}

func ExampleWriteWAV() {
	var buf bytes.Buffer
	if err := dtmftest.WriteWAV(&buf, dtmftest.DTMF('#', -10, 100*time.Millisecond)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(buf.Len(), "bytes")
	// Output: 1644 bytes
}
