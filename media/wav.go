package media

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashcall/hashcall/media/wav"
)

// LoadWAV reads a prompt from a WAV file: 8000 Hz mono PCM 16-bit, µ-law or
// A-law. For any other format the error names what the file is, what is
// needed and the sox command that converts it.
func LoadWAV(path string) ([]int16, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("media: open prompt: %w", err)
	}
	defer f.Close()
	return ReadWAV(f, path)
}

// ReadWAV reads a prompt in WAV format from r, as LoadWAV does; name is the
// file name used in errors and in the sox command.
func ReadWAV(r io.Reader, name string) ([]int16, error) {
	f, data, err := wav.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("media: prompt %s: %w", name, err)
	}
	if err := f.Telephony(); err != nil {
		var fe *wav.FormatError
		if errors.As(err, &fe) {
			return nil, &PromptFormatError{Name: name, err: fe, Command: fe.SoxCommand(name, convertedName(name))}
		}
		return nil, fmt.Errorf("media: prompt %s: %w", name, err)
	}
	samples, err := wav.Samples(f, data)
	if err != nil {
		return nil, fmt.Errorf("media: prompt %s: %w", name, err)
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("media: prompt %s has no audio", name)
	}
	return samples, nil
}

// PromptFormatError reports a prompt WAV file in a format hashcall cannot
// play, with the sox command that converts it.
type PromptFormatError struct {
	Name    string // the file
	Command string // the sox command line converting Name, quoted for a POSIX shell
	err     *wav.FormatError
}

// Error returns a message such as "media: prompt hello.wav is PCM 16-bit,
// 44100 Hz, stereo; need 8000 Hz mono PCM 16-bit, µ-law or A-law; convert
// with: sox hello.wav -r 8000 -c 1 -b 16 -e signed-integer hello-8k.wav".
func (e *PromptFormatError) Error() string {
	return fmt.Sprintf("media: prompt %s is %s; need %s; convert with: %s", e.Name, e.err.Found, wav.Need, e.Command)
}

// Unwrap returns the WAV package's format error.
func (e *PromptFormatError) Unwrap() error { return e.err }

// convertedName names the output of the conversion: hello.wav → hello-8k.wav.
func convertedName(name string) string {
	ext := filepath.Ext(name)
	if !strings.EqualFold(ext, ".wav") {
		return name + "-8k.wav"
	}
	return strings.TrimSuffix(name, ext) + "-8k.wav"
}
