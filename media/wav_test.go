package media

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/media/wav"
)

func writeWAV(t *testing.T, dir, name string, f wav.Format, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := wav.Write(&b, f, data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadWAV(t *testing.T) {
	dir := t.TempDir()
	samples := dtmfTone('5', 100*time.Millisecond)
	var pcm bytes.Buffer
	if err := wav.WritePCM16(&pcm, samples); err != nil {
		t.Fatal(err)
	}
	pcmPath := filepath.Join(dir, "prompt.wav")
	if err := os.WriteFile(pcmPath, pcm.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadWAV(pcmPath)
	if err != nil || !slices.Equal(got, samples) {
		t.Fatalf("PCM16: %v (%d samples)", err, len(got))
	}

	// G.711 files decode to what the codec would decode.
	for _, tc := range []struct {
		codec Codec
		enc   wav.Encoding
	}{{PCMU, wav.Ulaw}, {PCMA, wav.Alaw}} {
		data := tc.codec.encode(nil, samples)
		path := writeWAV(t, dir, tc.codec.Name+".wav", wav.Format{Encoding: tc.enc, SampleRate: 8000, Channels: 1}, data)
		got, err := LoadWAV(path)
		if err != nil || len(got) != len(data) {
			t.Fatalf("%s: %v (%d samples)", tc.codec.Name, err, len(got))
		}
		// Re-encoding the decoded samples gives the same bytes.
		if again := tc.codec.encode(nil, got); !bytes.Equal(again, data) {
			t.Errorf("%s: decode/encode differs", tc.codec.Name)
		}
	}
}

func TestLoadWAVErrors(t *testing.T) {
	dir := t.TempDir()
	stereo := writeWAV(t, dir, "my prompt.wav", wav.Format{Encoding: wav.PCM16, SampleRate: 44100, Channels: 2}, make([]byte, 400))
	_, err := LoadWAV(stereo)
	var pe *PromptFormatError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *PromptFormatError", err)
	}
	var fe *wav.FormatError
	if !errors.As(err, &fe) || fe.Found.SampleRate != 44100 {
		t.Fatalf("does not unwrap to the wav.FormatError: %v", err)
	}
	for _, want := range []string{
		"PCM 16-bit, 44100 Hz, stereo",
		"need 8000 Hz mono",
		"sox '" + stereo + "' -r 8000 -c 1 -b 16 -e signed-integer '" + strings.TrimSuffix(stereo, ".wav") + "-8k.wav'",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	empty := writeWAV(t, dir, "empty.wav", wav.PCM16Mono8k, nil)
	notWAV := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notWAV, []byte("hello, this is not audio"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{empty, notWAV, filepath.Join(dir, "missing.wav")} {
		if _, err := LoadWAV(path); err == nil {
			t.Errorf("LoadWAV(%s) succeeded", path)
		}
	}
	if _, err := ReadWAV(strings.NewReader("RIFF"), "short.wav"); err == nil || !strings.Contains(err.Error(), "short.wav") {
		t.Errorf("truncated: %v", err)
	}
}

func TestConvertedName(t *testing.T) {
	for in, want := range map[string]string{"a.wav": "a-8k.wav", "dir/B.WAV": "dir/B-8k.wav", "raw": "raw-8k.wav"} {
		if got := convertedName(in); got != want {
			t.Errorf("convertedName(%q) = %q, want %q", in, got, want)
		}
	}
}
