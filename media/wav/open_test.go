package wav

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpen: the format by the file's magic, then by its extension, or as
// named; a WAV that is not telephony audio and an unknown format are
// errors that say what to do.
func TestOpen(t *testing.T) {
	var pcm bytes.Buffer
	if err := WritePCM16(&pcm, []int16{1, -1, 2, -2}); err != nil {
		t.Fatal(err)
	}
	var cd bytes.Buffer
	if err := Write(&cd, Format{Encoding: PCM16, Channels: 2, SampleRate: 44100}, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	raw := []byte{0xff, 0x7f, 0xff, 0x7f}
	tests := []struct {
		name, file, format string
		data               []byte
		enc                Encoding
		n                  int // bytes of audio
		err                string
	}{
		{name: "wav by magic", file: "x.ul", format: "auto", data: pcm.Bytes(), enc: PCM16, n: 8},
		{name: "ulaw by extension", file: "x.ULAW", format: "auto", data: raw, enc: Ulaw, n: 4},
		{name: "alaw by extension", file: "x.pcma", format: "auto", data: raw, enc: Alaw, n: 4},
		{name: "slin by extension", file: "x.sln", format: "auto", data: raw, enc: PCM16, n: 4},
		{name: "named", file: "x.wav", format: "alaw", data: raw, enc: Alaw, n: 4},
		{name: "unknown extension", file: "x.mp3", format: "auto", data: raw, err: `wav: cannot tell the audio format: not a WAV file and the extension ".mp3"`},
		{name: "unknown format", file: "x.ul", format: "gsm", data: raw, err: `audio format "gsm": want one of auto, wav, slin16, ulaw, alaw`},
		{name: "cd audio", file: "song.wav", format: "auto", data: cd.Bytes(), err: "unsupported WAV: PCM 16-bit, 44100 Hz, stereo; need 8000 Hz mono PCM 16-bit, µ-law or A-law; convert with: sox song.wav"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, enc, err := Open(bufio.NewReader(bytes.NewReader(tc.data)), tc.file, tc.format)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				if unknown := errors.Is(err, ErrUnknownFormat); unknown != (tc.name == "unknown extension") {
					t.Errorf("errors.Is(err, ErrUnknownFormat) = %v", unknown)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r)
			if err != nil || enc != tc.enc || len(b) != tc.n {
				t.Errorf("%v, %d bytes, err %v; want %v, %d bytes", enc, len(b), err, tc.enc, tc.n)
			}
		})
	}
}

// TestOpenFile: the file's format told as Open tells it; a missing file
// and one of no known format are errors that say which.
func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	ul := filepath.Join(dir, "press.ul")
	if err := os.WriteFile(ul, []byte{0xff, 0x7f, 0xff}, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(ul, "auto")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil || f.Encoding != Ulaw || !bytes.Equal(b, []byte{0xff, 0x7f, 0xff}) {
		t.Errorf("read %x as %v: %v", b, f.Encoding, err)
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	if _, err := OpenFile(filepath.Join(dir, "none.wav"), "auto"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	odd := filepath.Join(dir, "press.mp3")
	if err := os.WriteFile(odd, []byte("ID3"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(odd, "auto"); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("unknown format: %v", err)
	}
}
