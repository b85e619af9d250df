package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// s16 reads a raw little-endian 16-bit file written by sox (gen.sh).
func s16(t testing.TB, name string) []int16 {
	t.Helper()
	b := readFile(t, name)
	s := make([]int16, len(b)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return s
}

func TestReadGolden(t *testing.T) {
	pcm := Format{Encoding: PCM16, FormatTag: TagPCM, SampleRate: 8000, Channels: 1, BitsPerSample: 16}
	ulaw := Format{Encoding: Ulaw, FormatTag: TagUlaw, SampleRate: 8000, Channels: 1, BitsPerSample: 8}
	alaw := Format{Encoding: Alaw, FormatTag: TagAlaw, SampleRate: 8000, Channels: 1, BitsPerSample: 8}
	with := func(f Format, change func(*Format)) Format { change(&f); return f }

	tests := []struct {
		name     string
		file     string
		want     Format
		str      string // Format.String()
		size     int64  // DataSize
		n        int    // data bytes
		samples  string // .s16 file with the expected decoded samples
		phoneErr bool   // Telephony() fails
	}{
		{name: "PCM16 8k mono", file: "pcm16_8k_mono.wav", want: pcm, str: "PCM 16-bit, 8000 Hz, mono", size: 320, n: 320, samples: "pcm16_8k_mono.s16"},
		{name: "ulaw", file: "ulaw_8k_mono.wav", want: ulaw, str: "µ-law, 8000 Hz, mono", size: 160, n: 160, samples: "ulaw_8k_mono.s16"},
		{name: "alaw", file: "alaw_8k_mono.wav", want: alaw, str: "A-law, 8000 Hz, mono", size: 160, n: 160, samples: "alaw_8k_mono.s16"},
		{name: "ulaw odd length with pad byte", file: "ulaw_8k_mono_odd.wav", want: ulaw, str: "µ-law, 8000 Hz, mono", size: 161, n: 161},
		{name: "extensible PCM16", file: "pcm16_8k_mono_ext.wav", want: with(pcm, func(f *Format) { f.Extensible = true }), str: "PCM 16-bit, 8000 Hz, mono", size: 320, n: 320, samples: "pcm16_8k_mono.s16"},
		{name: "extensible ulaw", file: "ulaw_8k_mono_ext.wav", want: with(ulaw, func(f *Format) { f.Extensible = true }), str: "µ-law, 8000 Hz, mono", size: 160, n: 160, samples: "ulaw_8k_mono.s16"},
		{name: "extensible PCM24 by sox", file: "pcm24_8k_mono_ext.wav", want: Format{FormatTag: TagPCM, SampleRate: 8000, Channels: 1, BitsPerSample: 24, Extensible: true}, str: "PCM 24-bit, 8000 Hz, mono", size: 120, n: 120, phoneErr: true},
		{name: "extensible unknown GUID", file: "unknown_guid_ext.wav", want: Format{FormatTag: TagExtensible, SampleRate: 8000, Channels: 1, BitsPerSample: 16, Extensible: true}, str: "extensible (unknown sub-format), 8000 Hz, mono", size: 320, n: 320, phoneErr: true},
		{name: "44.1k stereo", file: "pcm16_44k_stereo.wav", want: with(pcm, func(f *Format) { f.SampleRate, f.Channels = 44100, 2 }), str: "PCM 16-bit, 44100 Hz, stereo", size: 400, n: 400, phoneErr: true},
		{name: "8-bit unsigned PCM", file: "pcm8u_8k_mono.wav", want: Format{FormatTag: TagPCM, SampleRate: 8000, Channels: 1, BitsPerSample: 8}, str: "PCM 8-bit unsigned, 8000 Hz, mono", size: 80, n: 80, phoneErr: true},
		{name: "IEEE float", file: "float32_8k_mono.wav", want: Format{FormatTag: TagIEEEFloat, SampleRate: 8000, Channels: 1, BitsPerSample: 32}, str: "IEEE float 32-bit, 8000 Hz, mono", size: 160, n: 160, phoneErr: true},
		{name: "LIST and JUNK chunks with pad bytes", file: "pcm16_8k_mono_list.wav", want: pcm, str: "PCM 16-bit, 8000 Hz, mono", size: 320, n: 320, samples: "pcm16_8k_mono.s16"},
		{name: "streaming size 0xFFFFFFFF", file: "pcm16_8k_mono_stream.wav", want: pcm, str: "PCM 16-bit, 8000 Hz, mono", size: -1, n: 320, samples: "pcm16_8k_mono.s16"},
		{name: "streaming size 0", file: "pcm16_8k_mono_size0.wav", want: pcm, str: "PCM 16-bit, 8000 Hz, mono", size: -1, n: 320, samples: "pcm16_8k_mono.s16"},
		{name: "RF64", file: "pcm16_8k_mono_rf64.wav", want: pcm, str: "PCM 16-bit, 8000 Hz, mono", size: 320, n: 320, samples: "pcm16_8k_mono.s16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := readFile(t, tt.file)
			f, data, err := ReadAll(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if f != tt.want {
				t.Errorf("format = %+v, want %+v", f, tt.want)
			}
			if got := f.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			if len(data) != tt.n {
				t.Errorf("len(data) = %d, want %d", len(data), tt.n)
			}
			if err := f.Telephony(); (err != nil) != tt.phoneErr {
				t.Errorf("Telephony() = %v, want error %v", err, tt.phoneErr)
			}

			r, err := NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if r.DataSize() != tt.size {
				t.Errorf("DataSize() = %d, want %d", r.DataSize(), tt.size)
			}
			if tt.samples == "" {
				return
			}
			want := s16(t, tt.samples)
			got, err := Samples(f, data)
			if err != nil {
				t.Fatal(err)
			}
			if !equal(got, want) {
				t.Errorf("Samples differ from sox's decoding")
			}
			// Streaming, in awkward batch sizes.
			var streamed []int16
			buf := make([]int16, 7)
			for {
				n, err := r.ReadSamples(buf)
				streamed = append(streamed, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("ReadSamples: %v", err)
				}
			}
			if !equal(streamed, want) {
				t.Errorf("ReadSamples differ from sox's decoding")
			}
		})
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

// riff assembles a RIFF/WAVE file from chunks (id, body), padding odd bodies.
func riff(chunks ...string) []byte {
	var body []byte
	body = append(body, "WAVE"...)
	for i := 0; i+1 < len(chunks); i += 2 {
		body = append(body, chunks[i]...)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(chunks[i+1])))
		body = append(body, chunks[i+1]...)
		if len(chunks[i+1])%2 == 1 {
			body = append(body, 0)
		}
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	return append(out, body...)
}

func fmtChunk(tag, channels uint16, rate uint32, bits uint16) string {
	le := binary.LittleEndian
	align := channels * ((bits + 7) / 8)
	b := le.AppendUint16(nil, tag)
	b = le.AppendUint16(b, channels)
	b = le.AppendUint32(b, rate)
	b = le.AppendUint32(b, rate*uint32(align))
	b = le.AppendUint16(b, align)
	b = le.AppendUint16(b, bits)
	return string(b)
}

func TestReadErrors(t *testing.T) {
	pcmFmt := fmtChunk(TagPCM, 1, 8000, 16)
	tests := []struct {
		name  string
		input []byte
		is    error  // errors.Is target, if any
		msg   string // substring of the message
	}{
		{name: "empty", input: nil, is: ErrNotWAV, msg: "empty input"},
		{name: "garbage", input: []byte("this is not a wav file at all"), is: ErrNotWAV, msg: `starts with "this"`},
		{name: "short garbage", input: []byte("hi"), is: io.ErrUnexpectedEOF, msg: "truncated RIFF header (2 of 12 bytes)"},
		{name: "AVI", input: readFile(t, "not_wave.wav"), is: ErrNotWAV, msg: `form type is "AVI "`},
		{name: "RIFX", input: []byte("RIFX\x00\x00\x00\x04WAVE"), msg: "big-endian RIFX"},
		{name: "truncated in fmt chunk", input: readFile(t, "truncated_header.wav"), is: io.ErrUnexpectedEOF, msg: "wav: truncated fmt chunk"},
		{name: "truncated chunk header", input: riff("fmt ", pcmFmt)[:40], is: io.ErrUnexpectedEOF, msg: "truncated chunk header"},
		{name: "truncated unknown chunk", input: append(riff("fmt ", pcmFmt), "LIST\xf0\xff\xff\xffINFO"...), is: io.ErrUnexpectedEOF, msg: `truncated "LIST" chunk`},
		{name: "no data chunk", input: readFile(t, "no_data.wav"), msg: "wav: no data chunk"},
		{name: "no fmt chunk", input: riff("LIST", "INFO"), msg: "wav: no fmt chunk"},
		{name: "data before fmt", input: readFile(t, "data_before_fmt.wav"), msg: "wav: data chunk before fmt chunk"},
		{name: "fmt too short", input: riff("fmt ", "\x01\x00\x01\x00", "data", ""), msg: "fmt chunk too short (4 bytes, need 16)"},
		{name: "two fmt chunks", input: riff("fmt ", pcmFmt, "fmt ", pcmFmt, "data", ""), msg: "more than one fmt chunk"},
		{name: "zero channels", input: riff("fmt ", fmtChunk(TagPCM, 0, 8000, 16), "data", ""), msg: "0 channels"},
		{name: "zero rate", input: riff("fmt ", fmtChunk(TagPCM, 1, 0, 16), "data", ""), msg: "sample rate of 0 Hz"},
		{name: "short extensible", input: riff("fmt ", fmtChunk(TagExtensible, 1, 8000, 16), "data", ""), msg: "EXTENSIBLE fmt chunk too short (16 bytes, need 40)"},
		{name: "extensible cbSize", input: riff("fmt ", fmtChunk(TagExtensible, 1, 8000, 16)+strings.Repeat("\x00", 24), "data", ""), msg: "cbSize 0, need 22"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadAll(bytes.NewReader(tt.input))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "wav: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestTruncatedData(t *testing.T) {
	f, data, err := ReadAll(bytes.NewReader(readFile(t, "truncated_data.wav")))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if want := "wav: data chunk truncated, 220 of 320 bytes missing: unexpected EOF"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if f.Encoding != PCM16 || len(data) != 100 {
		t.Errorf("got %v and %d bytes, want PCM16 and the 100 bytes present", f, len(data))
	}

	r, err := NewReader(bytes.NewReader(readFile(t, "truncated_data.wav")))
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.ReadSamples(make([]int16, 1000))
	if n != 50 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadSamples = %d, %v; want 50, unexpected EOF", n, err)
	}
}

func TestPartialSample(t *testing.T) {
	input := riff("fmt ", fmtChunk(TagPCM, 1, 8000, 16), "data", "\x01\x02\x03")
	r, err := NewReader(bytes.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]int16, 10)
	n, err := r.ReadSamples(buf)
	if n != 1 || buf[0] != 0x0201 || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "partial sample") {
		t.Errorf("ReadSamples = %d (%#x), %v; want 1 sample and a partial-sample error", n, buf[0], err)
	}
	if _, err := Samples(PCM16Mono8k, []byte{1, 2, 3}); err == nil {
		t.Error("Samples accepted an odd number of PCM16 bytes")
	}
	if _, err := Samples(Format{FormatTag: TagIEEEFloat, BitsPerSample: 32, Channels: 1, SampleRate: 8000}, make([]byte, 8)); err == nil {
		t.Error("Samples accepted IEEE float")
	}
	r.Format.Encoding = Unknown
	if _, err := r.ReadSamples(buf); err == nil {
		t.Error("ReadSamples accepted an unknown encoding")
	}
}

// TestLyingSizes checks that sizes in the header never drive allocation.
func TestLyingSizes(t *testing.T) {
	tests := map[string][]byte{
		"huge data":  append(riff("fmt ", fmtChunk(TagPCM, 1, 8000, 16)), "data\xf0\xff\xff\x7f\x01\x02\x03\x04"...),
		"huge fmt":   append([]byte("RIFF\xff\xff\xff\xffWAVEfmt \xf0\xff\xff\x7f"), fmtChunk(TagPCM, 1, 8000, 16)...),
		"huge chunk": append(riff("fmt ", fmtChunk(TagPCM, 1, 8000, 16)), "JUNK\xf0\xff\xff\xffabcd"...),
	}
	for name, input := range tests {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := ReadAll(bytes.NewReader(input))
			runtime.ReadMemStats(&after)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
				t.Errorf("allocated %d bytes for a %d-byte input", alloc, len(input))
			}
		})
	}
}

func TestTelephonyError(t *testing.T) {
	f, _, err := ReadAll(bytes.NewReader(readFile(t, "pcm16_44k_stereo.wav")))
	if err != nil {
		t.Fatal(err)
	}
	err = f.Telephony()
	want := "unsupported WAV: PCM 16-bit, 44100 Hz, stereo; need 8000 Hz mono PCM 16-bit, µ-law or A-law; " +
		"convert with: sox in.wav -r 8000 -c 1 -b 16 -e signed-integer out.wav"
	if err == nil || err.Error() != want {
		t.Fatalf("Telephony() = %v, want %q", err, want)
	}
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("Telephony() error is %T, want *FormatError", err)
	}
	if fe.Found != f {
		t.Errorf("Found = %v, want %v", fe.Found, f)
	}
	tests := []struct{ in, out, want string }{
		{"call.wav", "call-8k.wav", "sox call.wav -r 8000 -c 1 -b 16 -e signed-integer call-8k.wav"},
		{"my call.wav", "/tmp/o'k.wav", `sox 'my call.wav' -r 8000 -c 1 -b 16 -e signed-integer '/tmp/o'\''k.wav'`},
		{"", "$x.wav", `sox '' -r 8000 -c 1 -b 16 -e signed-integer '$x.wav'`},
	}
	for _, tt := range tests {
		if got := fe.SoxCommand(tt.in, tt.out); got != tt.want {
			t.Errorf("SoxCommand(%q, %q) = %q, want %q", tt.in, tt.out, got, tt.want)
		}
	}
	if got := (&FormatError{}).SoxCommand("a.wav", "b.wav"); got != "sox a.wav -r 8000 -c 1 -b 16 -e signed-integer b.wav" {
		t.Errorf("zero FormatError SoxCommand = %q", got)
	}
}

func TestTelephony(t *testing.T) {
	ok := []Format{
		PCM16Mono8k,
		{FormatTag: TagUlaw, SampleRate: 8000, Channels: 1, BitsPerSample: 8},
		{FormatTag: TagAlaw, SampleRate: 8000, Channels: 1, BitsPerSample: 8, Extensible: true},
	}
	bad := []Format{
		{FormatTag: TagPCM, SampleRate: 16000, Channels: 1, BitsPerSample: 16},
		{FormatTag: TagPCM, SampleRate: 8000, Channels: 2, BitsPerSample: 16},
		{FormatTag: TagUlaw, SampleRate: 8000, Channels: 1, BitsPerSample: 16},
		{FormatTag: TagPCM, SampleRate: 8000, Channels: 1, BitsPerSample: 8},
		{FormatTag: 0x0011, SampleRate: 8000, Channels: 1, BitsPerSample: 4},
		{},
	}
	for _, f := range ok {
		if err := f.Telephony(); err != nil {
			t.Errorf("%v: %v", f, err)
		}
	}
	for _, f := range bad {
		if err := f.Telephony(); err == nil {
			t.Errorf("%v: accepted", f)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{PCM16.String(), "PCM 16-bit"},
		{Ulaw.String(), "µ-law"},
		{Alaw.String(), "A-law"},
		{Unknown.String(), "unknown"},
		{Encoding(9).String(), "Encoding(9)"},
		{Format{FormatTag: TagUlaw, SampleRate: 8000, Channels: 1, BitsPerSample: 16}.String(), "µ-law 16-bit, 8000 Hz, mono"},
		{Format{FormatTag: 0x0011, SampleRate: 8000, Channels: 1, BitsPerSample: 4}.String(), "IMA ADPCM, 8000 Hz, mono"},
		{Format{FormatTag: 0x0031, SampleRate: 8000, Channels: 1}.String(), "GSM 6.10, 8000 Hz, mono"},
		{Format{FormatTag: 0x1234, SampleRate: 48000, Channels: 6}.String(), "format tag 0x1234, 48000 Hz, 6 channels"},
		{Format{FormatTag: TagPCM, SampleRate: 8000, Channels: 1}.String(), "PCM, 8000 Hz, mono"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
