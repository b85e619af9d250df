package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/zaf/g711"
)

// ErrNotWAV is wrapped by the error [NewReader] returns for input that is
// not a RIFF/WAVE file at all.
var ErrNotWAV = errors.New("wav: not a RIFF/WAVE file")

// Sniff reports whether head, the first bytes of a file, starts the way a
// WAV file does: with the "RIFF" or "RF64" magic. It is the cheap test for
// choosing a reader; [NewReader] still decides whether the file is a WAV.
func Sniff(head []byte) bool {
	return bytes.HasPrefix(head, []byte("RIFF")) || bytes.HasPrefix(head, []byte("RF64"))
}

// Bounds on what the parser reads into memory from the header chunks; the
// rest of an oversized chunk is skipped, never buffered.
const (
	maxFmtRead  = 40 // WAVEFORMATEXTENSIBLE is the largest fmt layout used
	maxDS64Read = 28 // riffSize, dataSize, sampleCount, tableLength
)

// unknownSize is the data chunk size streaming writers leave in the header
// when they cannot seek back to fix it, and RF64's "see ds64" marker.
const unknownSize = 0xFFFFFFFF

// guidTail is bytes 2–15 of KSDATAFORMAT_SUBTYPE_{PCM,IEEE_FLOAT,ALAW,MULAW}
// ({0000xxxx-0000-0010-8000-00AA00389B71}, stored little-endian); bytes 0–1
// are the wave format tag.
var guidTail = []byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

// Reader parses a WAV file's header and then reads its audio data.
type Reader struct {
	// Format is the audio format from the fmt chunk.
	Format Format

	src       io.Reader
	size      int64 // declared data size, or -1 when it must be read to EOF
	remaining int64 // bytes of data left, or -1 when reading to EOF
	buf       []byte
}

// NewReader reads the RIFF header and the chunks up to the start of the data
// chunk from r, and returns a Reader positioned at the first audio byte.
// It fails on input that is not WAV, has a truncated or malformed header, or
// has no fmt or data chunk. It does not check that the format is usable for
// telephony: see [Format.Telephony].
func NewReader(r io.Reader) (*Reader, error) {
	var hdr [12]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty input", ErrNotWAV)
		}
		return nil, truncated(fmt.Sprintf("RIFF header (%d of 12 bytes)", n), err)
	}
	id := string(hdr[0:4])
	switch id {
	case "RIFF", "RF64":
	case "RIFX":
		return nil, errors.New("wav: big-endian RIFX files are not supported")
	default:
		return nil, fmt.Errorf("%w: starts with %q", ErrNotWAV, hdr[0:4])
	}
	if string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: RIFF form type is %q, not \"WAVE\"", ErrNotWAV, hdr[8:12])
	}
	rf64 := id == "RF64"

	var (
		f         Format
		haveFmt   bool
		ds64Data  uint64
		haveDS64  bool
		chunkHead [8]byte
		body      [maxFmtRead]byte
	)
	for {
		n, err := io.ReadFull(r, chunkHead[:])
		if err != nil {
			if n == 0 && errors.Is(err, io.EOF) {
				if !haveFmt {
					return nil, errors.New("wav: no fmt chunk")
				}
				return nil, errors.New("wav: no data chunk")
			}
			return nil, truncated("chunk header", err)
		}
		cid := string(chunkHead[0:4])
		size := binary.LittleEndian.Uint32(chunkHead[4:8])
		switch cid {
		case "fmt ":
			if haveFmt {
				return nil, errors.New("wav: more than one fmt chunk")
			}
			if size < 16 {
				return nil, fmt.Errorf("wav: fmt chunk too short (%d bytes, need 16)", size)
			}
			b := body[:min(size, maxFmtRead)]
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, truncated("fmt chunk", err)
			}
			if err := skip(r, int64(size)-int64(len(b))+int64(size&1), "fmt chunk"); err != nil {
				return nil, err
			}
			if f, err = parseFmt(b); err != nil {
				return nil, err
			}
			haveFmt = true
		case "ds64":
			if !rf64 {
				if err := skip(r, int64(size)+int64(size&1), "ds64 chunk"); err != nil {
					return nil, err
				}
				continue
			}
			if size < maxDS64Read {
				return nil, fmt.Errorf("wav: ds64 chunk too short (%d bytes, need %d)", size, maxDS64Read)
			}
			b := body[:maxDS64Read]
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, truncated("ds64 chunk", err)
			}
			if err := skip(r, int64(size)-maxDS64Read+int64(size&1), "ds64 chunk"); err != nil {
				return nil, err
			}
			ds64Data = binary.LittleEndian.Uint64(b[8:16])
			haveDS64 = true
		case "data":
			if !haveFmt {
				return nil, errors.New("wav: data chunk before fmt chunk")
			}
			rd := &Reader{Format: f, src: r, size: int64(size)}
			switch {
			case size == unknownSize && rf64 && haveDS64 && ds64Data != 0 && ds64Data <= 1<<62:
				rd.size = int64(ds64Data)
			case size == 0 || size == unknownSize:
				rd.size = -1
			}
			rd.remaining = rd.size
			return rd, nil
		default:
			if err := skip(r, int64(size)+int64(size&1), fmt.Sprintf("%q chunk", chunkHead[0:4])); err != nil {
				return nil, err
			}
		}
	}
}

// parseFmt decodes the first bytes (16 to 40) of a fmt chunk.
func parseFmt(b []byte) (Format, error) {
	le := binary.LittleEndian
	f := Format{
		FormatTag:     le.Uint16(b[0:2]),
		Channels:      le.Uint16(b[2:4]),
		SampleRate:    le.Uint32(b[4:8]),
		BitsPerSample: le.Uint16(b[14:16]),
	}
	if f.FormatTag == TagExtensible {
		if len(b) < 40 {
			return Format{}, fmt.Errorf("wav: WAVE_FORMAT_EXTENSIBLE fmt chunk too short (%d bytes, need 40)", len(b))
		}
		if cb := le.Uint16(b[16:18]); cb < 22 {
			return Format{}, fmt.Errorf("wav: WAVE_FORMAT_EXTENSIBLE fmt chunk has cbSize %d, need 22", cb)
		}
		f.Extensible = true
		if guid := b[24:40]; bytes.Equal(guid[2:], guidTail) {
			f.FormatTag = le.Uint16(guid[0:2])
		}
	}
	if f.Channels == 0 {
		return Format{}, errors.New("wav: fmt chunk declares 0 channels")
	}
	if f.SampleRate == 0 {
		return Format{}, errors.New("wav: fmt chunk declares a sample rate of 0 Hz")
	}
	f.Encoding = encodingOf(f.FormatTag, f.BitsPerSample)
	return f, nil
}

// skip discards n bytes of r.
func skip(r io.Reader, n int64, what string) error {
	if n <= 0 {
		return nil
	}
	if _, err := io.CopyN(io.Discard, r, n); err != nil {
		return truncated(what, err)
	}
	return nil
}

// truncated wraps a short read of a header part in a clear error; a plain
// EOF becomes io.ErrUnexpectedEOF since the file ended early.
func truncated(what string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("wav: truncated %s: %w", what, err)
}

// DataSize returns the data chunk's size in bytes as declared in the header,
// or -1 when the header leaves it open (0 or 0xFFFFFFFF, as written by
// streaming writers) and the data runs to the end of the input.
func (r *Reader) DataSize() int64 { return r.size }

// Read reads audio data bytes, as stored in the file. It returns io.EOF at
// the end of the data chunk, and an error wrapping io.ErrUnexpectedEOF if
// the input ends before the size the header declares.
func (r *Reader) Read(p []byte) (int, error) {
	if r.remaining < 0 {
		return r.src.Read(p)
	}
	if r.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.src.Read(p)
	r.remaining -= int64(n)
	switch {
	case r.remaining == 0:
		return n, nil
	case errors.Is(err, io.EOF):
		return n, fmt.Errorf("wav: data chunk truncated, %d of %d bytes missing: %w", r.remaining, r.size, io.ErrUnexpectedEOF)
	}
	return n, err
}

// maxBatch bounds the scratch buffer ReadSamples allocates.
const maxBatch = 1 << 14

// ReadSamples decodes up to len(dst) samples into dst as 16-bit linear
// values and returns how many it wrote; multi-channel audio comes out
// interleaved. It works for the PCM16, Ulaw and Alaw encodings and returns
// an error for any other. At the end of the data it returns 0, io.EOF; a
// final partial sample is an error wrapping io.ErrUnexpectedEOF.
func (r *Reader) ReadSamples(dst []int16) (int, error) {
	enc := r.Format.Encoding
	width := 1
	switch enc {
	case PCM16:
		width = 2
	case Ulaw, Alaw:
	default:
		return 0, fmt.Errorf("wav: cannot decode %s to 16-bit samples", r.Format)
	}
	n := min(len(dst), maxBatch)
	if n == 0 {
		return 0, nil
	}
	if cap(r.buf) < n*width {
		r.buf = make([]byte, n*width)
	}
	b := r.buf[:n*width]
	got, err := io.ReadFull(r, b)
	whole := got / width
	decode(dst[:whole], b[:whole*width], enc)
	if err == io.ErrUnexpectedEOF { // bare: a clean end of data mid-batch
		if got%width != 0 {
			return whole, fmt.Errorf("wav: data ends with a partial sample: %w", io.ErrUnexpectedEOF)
		}
		return whole, nil
	}
	return whole, err
}

// decode converts b, holding len(dst) samples of encoding enc, into dst.
func decode(dst []int16, b []byte, enc Encoding) {
	switch enc {
	case PCM16:
		for i := range dst {
			dst[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case Ulaw:
		for i := range dst {
			dst[i] = g711.DecodeUlawFrame(b[i])
		}
	case Alaw:
		for i := range dst {
			dst[i] = g711.DecodeAlawFrame(b[i])
		}
	}
}

// Samples decodes a whole data chunk of format f (PCM16, Ulaw or Alaw) into
// 16-bit linear samples, interleaved if f has several channels.
func Samples(f Format, data []byte) ([]int16, error) {
	width := 1
	switch f.Encoding {
	case PCM16:
		width = 2
	case Ulaw, Alaw:
	default:
		return nil, fmt.Errorf("wav: cannot decode %s to 16-bit samples", f)
	}
	if len(data)%width != 0 {
		return nil, fmt.Errorf("wav: %d data bytes is not a whole number of 16-bit samples", len(data))
	}
	s := make([]int16, len(data)/width)
	decode(s, data, f.Encoding)
	return s, nil
}

// preallocLimit bounds the buffer ReadAll allocates up front from a
// declared data size, so a lying header cannot force a huge allocation.
const preallocLimit = 64 << 10

// ReadAll parses a whole WAV file and returns its format and data chunk
// bytes. If the data is truncated it returns what was read together with an
// error wrapping io.ErrUnexpectedEOF.
func ReadAll(r io.Reader) (Format, []byte, error) {
	rd, err := NewReader(r)
	if err != nil {
		return Format{}, nil, err
	}
	prealloc := int64(512)
	if rd.size > 0 {
		prealloc = min(rd.size, preallocLimit)
	}
	buf := bytes.NewBuffer(make([]byte, 0, prealloc))
	_, err = buf.ReadFrom(rd)
	return rd.Format, buf.Bytes(), err
}
