package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxRIFFSize is the largest RIFF payload a 32-bit size field can describe.
const maxRIFFSize = 0xFFFFFFFF

// normalize fills in FormatTag and BitsPerSample from Encoding when
// FormatTag is zero, checks that f can be written, and returns the result.
func normalize(f Format) (Format, error) {
	if f.FormatTag == 0 {
		switch f.Encoding {
		case PCM16:
			f.FormatTag, f.BitsPerSample = TagPCM, 16
		case Ulaw:
			f.FormatTag, f.BitsPerSample = TagUlaw, 8
		case Alaw:
			f.FormatTag, f.BitsPerSample = TagAlaw, 8
		default:
			return Format{}, errors.New("wav: format has neither a format tag nor an encoding")
		}
	}
	switch f.FormatTag {
	case TagPCM, TagIEEEFloat, TagUlaw, TagAlaw:
	default:
		return Format{}, fmt.Errorf("wav: cannot write %s", f)
	}
	switch {
	case f.Channels == 0:
		return Format{}, errors.New("wav: cannot write 0 channels")
	case f.SampleRate == 0:
		return Format{}, errors.New("wav: cannot write a sample rate of 0 Hz")
	case f.BitsPerSample == 0:
		return Format{}, errors.New("wav: cannot write 0 bits per sample")
	}
	f.Encoding = encodingOf(f.FormatTag, f.BitsPerSample)
	return f, nil
}

// header builds the RIFF header, fmt chunk, fact chunk (for non-PCM
// formats) and data chunk header for dataLen bytes of data.
func header(f Format, dataLen int64) ([]byte, error) {
	f, err := normalize(f)
	if err != nil {
		return nil, err
	}
	align := f.BlockAlign()
	if dataLen%int64(align) != 0 {
		return nil, fmt.Errorf("wav: %d data bytes is not a whole number of %d-byte sample frames", dataLen, align)
	}
	fmtSize := 16
	switch {
	case f.Extensible:
		fmtSize = 40
	case f.FormatTag != TagPCM:
		fmtSize = 18
	}
	withFact := f.FormatTag != TagPCM
	total := int64(4+8+fmtSize+8) + dataLen + dataLen&1
	if withFact {
		total += 12
	}
	if total > maxRIFFSize {
		return nil, fmt.Errorf("wav: %d data bytes do not fit in a RIFF file", dataLen)
	}

	le := binary.LittleEndian
	h := make([]byte, 0, 12+8+fmtSize+12+8)
	h = append(h, "RIFF"...)
	h = le.AppendUint32(h, uint32(total))
	h = append(h, "WAVE"...)
	h = append(h, "fmt "...)
	h = le.AppendUint32(h, uint32(fmtSize))
	tag, bits := f.FormatTag, f.BitsPerSample
	if f.Extensible {
		tag, bits = TagExtensible, uint16(align/int(f.Channels)*8)
	}
	h = le.AppendUint16(h, tag)
	h = le.AppendUint16(h, f.Channels)
	h = le.AppendUint32(h, f.SampleRate)
	h = le.AppendUint32(h, f.SampleRate*uint32(align))
	h = le.AppendUint16(h, uint16(align))
	h = le.AppendUint16(h, bits)
	switch {
	case f.Extensible:
		h = le.AppendUint16(h, 22)              // cbSize
		h = le.AppendUint16(h, f.BitsPerSample) // wValidBitsPerSample
		var mask uint32                         // dwChannelMask: speaker positions
		switch f.Channels {
		case 1:
			mask = 0x4 // front centre
		case 2:
			mask = 0x3 // front left and right
		}
		h = le.AppendUint32(h, mask)
		h = le.AppendUint16(h, f.FormatTag)
		h = append(h, guidTail...)
	case fmtSize == 18:
		h = le.AppendUint16(h, 0) // cbSize
	}
	if withFact {
		h = append(h, "fact"...)
		h = le.AppendUint32(h, 4)
		h = le.AppendUint32(h, uint32(dataLen/int64(align)))
	}
	h = append(h, "data"...)
	h = le.AppendUint32(h, uint32(dataLen))
	return h, nil
}

// Write writes a complete WAV file with format f and the given data chunk
// bytes. f may give just an Encoding, SampleRate and Channels (FormatTag
// zero); formats other than integer PCM, IEEE float, µ-law and A-law cannot
// be written. Data must be a whole number of sample frames.
func Write(w io.Writer, f Format, data []byte) error {
	h, err := header(f, int64(len(data)))
	if err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return fmt.Errorf("wav: write header: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("wav: write data: %w", err)
	}
	if len(data)%2 == 1 {
		if _, err := w.Write([]byte{0}); err != nil {
			return fmt.Errorf("wav: write pad byte: %w", err)
		}
	}
	return nil
}

// WritePCM16 writes samples as a WAV file of 8000 Hz mono PCM 16-bit.
// The samples are converted in small batches, not copied as a whole.
func WritePCM16(w io.Writer, samples []int16) error {
	h, err := header(PCM16Mono8k, 2*int64(len(samples)))
	if err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return fmt.Errorf("wav: write header: %w", err)
	}
	var buf [4096]byte
	for len(samples) > 0 {
		n := min(len(samples), len(buf)/2)
		for i, s := range samples[:n] {
			binary.LittleEndian.PutUint16(buf[2*i:], uint16(s))
		}
		if _, err := w.Write(buf[:2*n]); err != nil {
			return fmt.Errorf("wav: write data: %w", err)
		}
		samples = samples[n:]
	}
	return nil
}
