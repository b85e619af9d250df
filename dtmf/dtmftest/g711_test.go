package dtmftest

import (
	"bytes"
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"github.com/hashcall/hashcall/media/wav"
)

func TestG711(t *testing.T) {
	s := DTMF('#', -10, 100*time.Millisecond)
	for _, tt := range []struct {
		name   string
		enc    func([]int16) []byte
		dec    func([]byte) []int16
		round  func([]int16) []int16
		silent byte
	}{
		{"ulaw", EncodeUlaw, DecodeUlaw, RoundTripUlaw, 0xFF},
		{"alaw", EncodeAlaw, DecodeAlaw, RoundTripAlaw, 0xD5},
	} {
		b := tt.enc(s)
		if len(b) != len(s) {
			t.Fatalf("%s: %d bytes for %d samples", tt.name, len(b), len(s))
		}
		rt := tt.round(s)
		if !equal(tt.dec(b), rt) {
			t.Errorf("%s: decode(encode(s)) != RoundTrip(s)", tt.name)
		}
		var sig, noise float64
		for i := range s {
			sig += float64(s[i]) * float64(s[i])
			d := float64(rt[i] - s[i])
			noise += d * d
		}
		if snr := 10 * math.Log10(sig/noise); snr < 33 {
			t.Errorf("%s: SNR %.1f dB after a round trip", tt.name, snr)
		}
		if got := tt.enc([]int16{0})[0]; got != tt.silent {
			t.Errorf("%s: silence encodes to %#x, want %#x", tt.name, got, tt.silent)
		}
	}
}

func TestWAV(t *testing.T) {
	s := Sequence('#', 2, 50*time.Millisecond, 50*time.Millisecond, -10)
	var buf bytes.Buffer
	if err := WriteWAV(&buf, s); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 44+2*len(s) {
		t.Errorf("WAV is %d bytes, want %d", buf.Len(), 44+2*len(s))
	}
	got, err := ReadWAV(&buf)
	if err != nil || !equal(got, s) {
		t.Errorf("ReadWAV after WriteWAV: %v", err)
	}

	for _, file := range []string{"ulaw_8k_mono.wav", "alaw_8k_mono.wav"} {
		f, err := os.Open("../../media/wav/testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ReadWAV(f)
		f.Close()
		if err != nil || len(s) != 160 {
			t.Errorf("%s: %d samples, %v", file, len(s), err)
		}
	}

	f, err := os.Open("../../media/wav/testdata/pcm16_44k_stereo.wav")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = ReadWAV(f)
	var fe *wav.FormatError
	if !errors.As(err, &fe) || fe.Found.SampleRate != 44100 {
		t.Errorf("ReadWAV of 44.1 kHz stereo: %v", err)
	}
	if _, err := ReadWAV(bytes.NewReader([]byte("nonsense"))); err == nil {
		t.Error("ReadWAV accepted nonsense")
	}
}
