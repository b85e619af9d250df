package wav

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReader checks that no input makes the reader panic or allocate more
// than a bounded amount beyond the input itself, and that whatever it
// accepts survives a write and re-read.
func FuzzReader(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.wav"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEdata\xff\xff\xff\xff"))
	f.Add([]byte("RF64\xff\xff\xff\xffWAVEds64\x1c\x00\x00\x00"))

	f.Fuzz(func(t *testing.T, in []byte) {
		format, data, err := ReadAll(bytes.NewReader(in))
		_ = format.String()
		_ = format.Telephony()
		if err != nil {
			if len(data) > len(in) {
				t.Fatalf("returned %d bytes of data from a %d-byte input", len(data), len(in))
			}
			return
		}
		if format.Channels == 0 || format.SampleRate == 0 {
			t.Fatalf("accepted a degenerate format %+v", format)
		}
		if len(data) > len(in) {
			t.Fatalf("returned %d bytes of data from a %d-byte input", len(data), len(in))
		}

		if format.Encoding != Unknown {
			r, err := NewReader(bytes.NewReader(in))
			if err != nil {
				t.Fatalf("NewReader failed after ReadAll succeeded: %v", err)
			}
			buf := make([]int16, 100)
			for {
				if _, err := r.ReadSamples(buf); err != nil {
					if err != io.EOF && !isPartial(data, format) {
						t.Fatalf("ReadSamples: %v", err)
					}
					break
				}
			}
		}

		align := format.BlockAlign()
		if align == 0 || len(data)%align != 0 || format.BitsPerSample%8 != 0 {
			return
		}
		var out bytes.Buffer
		if err := Write(&out, format, data); err != nil {
			return // e.g. too big for RIFF
		}
		f2, d2, err := ReadAll(&out)
		if err != nil {
			t.Fatalf("re-reading our own output: %v", err)
		}
		if f2 != format || !bytes.Equal(d2, data) {
			t.Fatalf("round trip changed %+v (%d bytes) into %+v (%d bytes)", format, len(data), f2, len(d2))
		}
	})
}

// isPartial reports whether data ends with a partial PCM16 sample.
func isPartial(data []byte, f Format) bool {
	return f.Encoding == PCM16 && len(data)%2 == 1
}
