package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// TestWriteMatchesSox writes each sox-made file's data back out and expects
// sox's exact bytes.
func TestWriteMatchesSox(t *testing.T) {
	for _, file := range []string{
		"pcm16_8k_mono.wav",
		"ulaw_8k_mono.wav",
		"alaw_8k_mono.wav",
		"ulaw_8k_mono_odd.wav",
		"pcm16_44k_stereo.wav",
		"pcm8u_8k_mono.wav",
		"float32_8k_mono.wav",
	} {
		t.Run(file, func(t *testing.T) {
			raw := readFile(t, file)
			f, data, err := ReadAll(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := Write(&buf, f, data); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), raw) {
				t.Errorf("Write output differs from sox:\n got %x\nwant %x", buf.Bytes()[:min(buf.Len(), 64)], raw[:min(len(raw), 64)])
			}
		})
	}
}

func TestWriteRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    Format
		data []byte
		want Format // what reading back gives
	}{
		{name: "encoding only PCM16", f: Format{Encoding: PCM16, SampleRate: 8000, Channels: 1}, data: []byte{1, 2, 3, 4}, want: PCM16Mono8k},
		{name: "encoding only ulaw", f: Format{Encoding: Ulaw, SampleRate: 8000, Channels: 1}, data: []byte{1, 2, 3},
			want: Format{Encoding: Ulaw, FormatTag: TagUlaw, SampleRate: 8000, Channels: 1, BitsPerSample: 8}},
		{name: "extensible PCM16", f: Format{FormatTag: TagPCM, SampleRate: 8000, Channels: 1, BitsPerSample: 16, Extensible: true}, data: []byte{1, 2},
			want: Format{Encoding: PCM16, FormatTag: TagPCM, SampleRate: 8000, Channels: 1, BitsPerSample: 16, Extensible: true}},
		{name: "extensible alaw stereo", f: Format{Encoding: Alaw, SampleRate: 8000, Channels: 2, Extensible: true}, data: []byte{1, 2, 3, 4},
			want: Format{Encoding: Alaw, FormatTag: TagAlaw, SampleRate: 8000, Channels: 2, BitsPerSample: 8, Extensible: true}},
		{name: "empty", f: PCM16Mono8k, data: nil, want: PCM16Mono8k},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, tt.f, tt.data); err != nil {
				t.Fatal(err)
			}
			if buf.Len()%2 != 0 {
				t.Errorf("file length %d is odd: missing pad byte", buf.Len())
			}
			f, data, err := ReadAll(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if f != tt.want || !bytes.Equal(data, tt.data) {
				t.Errorf("read back %+v %x, want %+v %x", f, data, tt.want, tt.data)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name string
		f    Format
		data []byte
		msg  string
	}{
		{name: "nothing", f: Format{SampleRate: 8000, Channels: 1}, msg: "neither a format tag nor an encoding"},
		{name: "ADPCM", f: Format{FormatTag: 0x0011, SampleRate: 8000, Channels: 1, BitsPerSample: 4}, msg: "cannot write IMA ADPCM"},
		{name: "no channels", f: Format{Encoding: PCM16, SampleRate: 8000}, msg: "0 channels"},
		{name: "no rate", f: Format{Encoding: PCM16, Channels: 1}, msg: "sample rate of 0 Hz"},
		{name: "no bits", f: Format{FormatTag: TagPCM, SampleRate: 8000, Channels: 1}, msg: "0 bits per sample"},
		{name: "partial frame", f: Format{Encoding: PCM16, SampleRate: 8000, Channels: 2}, data: []byte{1, 2, 3}, msg: "not a whole number of 4-byte sample frames"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, tt.f, tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Write error = %v, want one containing %q", err, tt.msg)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes despite the error", buf.Len())
			}
		})
	}
}

type failWriter struct{ after int }

var errDisk = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errDisk
	}
	w.after--
	return len(p), nil
}

func TestWriterErrorsWrapped(t *testing.T) {
	for after := range 3 {
		if err := WritePCM16(&failWriter{after: after}, make([]int16, 5000)); !errors.Is(err, errDisk) {
			t.Errorf("WritePCM16 failing after %d writes: %v", after, err)
		}
		if err := Write(&failWriter{after: after}, Format{Encoding: Ulaw, SampleRate: 8000, Channels: 1}, []byte{1}); !errors.Is(err, errDisk) {
			t.Errorf("Write failing after %d writes: %v", after, err)
		}
	}
}

func TestWritePCM16(t *testing.T) {
	samples := make([]int16, 5000) // more than one internal batch
	for i := range samples {
		samples[i] = int16(i*37 - 30000)
	}
	var got bytes.Buffer
	if err := WritePCM16(&got, samples); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(s))
	}
	var want bytes.Buffer
	if err := Write(&want, PCM16Mono8k, data); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Error("WritePCM16 and Write disagree")
	}
	f, back, err := ReadAll(&got)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Samples(f, back)
	if err != nil || !equal(s, samples) {
		t.Errorf("samples did not survive a round trip (err %v)", err)
	}
}
