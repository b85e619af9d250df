package dtmftest

import (
	"fmt"
	"io"

	"github.com/hashcall/hashcall/media/wav"
)

// WriteWAV writes s to w as a WAV file of 8000 Hz mono PCM 16-bit, for
// listening to a failing case or feeding it to another detector.
func WriteWAV(w io.Writer, s []int16) error {
	if err := wav.WritePCM16(w, s); err != nil {
		return fmt.Errorf("dtmftest: %w", err)
	}
	return nil
}

// ReadWAV reads a WAV file of 8000 Hz mono PCM 16-bit, µ-law or A-law (such
// as the Asterisk sound files of the talk-off corpus) and returns its
// samples. Other formats give an error that says how to convert the file.
func ReadWAV(r io.Reader) ([]int16, error) {
	f, data, err := wav.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("dtmftest: %w", err)
	}
	if err := f.Telephony(); err != nil {
		return nil, fmt.Errorf("dtmftest: %w", err)
	}
	s, err := wav.Samples(f, data)
	if err != nil {
		return nil, fmt.Errorf("dtmftest: %w", err)
	}
	return s, nil
}
