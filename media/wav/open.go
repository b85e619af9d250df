package wav

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Formats returns the format names [Open] takes: "auto" (a WAV by its
// magic, else by the file's extension), "wav", and the headerless
// "slin16" (16-bit little-endian linear), "ulaw" and "alaw", all 8 kHz.
func Formats() []string { return []string{"auto", "wav", "slin16", "ulaw", "alaw"} }

// ErrUnknownFormat: Open could not tell a file's format; the caller
// names it (slin16, ulaw or alaw).
var ErrUnknownFormat = errors.New("wav: cannot tell the audio format")

// Open works out the format of the audio file name read through r and
// returns its audio stream and encoding. A WAV file must hold telephony
// audio (see [Format.Telephony]); when it does not, the error says what it
// holds, what is needed and the sox command that converts it.
func Open(r *bufio.Reader, name, format string) (io.Reader, Encoding, error) {
	if format == "auto" {
		format = "wav"
		if head, _ := r.Peek(4); !Sniff(head) {
			if format = formatByExtension(name); format == "" {
				return nil, 0, fmt.Errorf("%w: not a WAV file and the extension %q is not one of .ul .ulaw .al .alaw .raw .sln .s16", ErrUnknownFormat, filepath.Ext(name))
			}
		}
	}
	switch format {
	case "ulaw":
		return r, Ulaw, nil
	case "alaw":
		return r, Alaw, nil
	case "slin16":
		return r, PCM16, nil
	case "wav":
	default:
		return nil, 0, fmt.Errorf("audio format %q: want one of %s", format, strings.Join(Formats(), ", "))
	}
	wr, err := NewReader(r)
	if err != nil {
		return nil, 0, err
	}
	if err := wr.Format.Telephony(); err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			base := strings.TrimSuffix(name, filepath.Ext(name))
			return nil, 0, fmt.Errorf("unsupported WAV: %s; need %s; convert with: %s", fe.Found, Need, fe.SoxCommand(name, base+"-8k.wav"))
		}
		return nil, 0, err
	}
	return wr, wr.Format.Encoding, nil
}

func formatByExtension(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".ul", ".ulaw", ".mulaw", ".pcmu":
		return "ulaw"
	case ".al", ".alaw", ".pcma":
		return "alaw"
	case ".raw", ".sln", ".s16", ".slin", ".slin16":
		return "slin16"
	}
	return ""
}

// File is an audio file opened by [OpenFile]: its audio stream and encoding.
type File struct {
	io.Reader
	Encoding Encoding
	f        *os.File
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// OpenFile opens the audio file at name and works out its format as [Open]
// does, reading it through a 64 KiB buffer.
func OpenFile(name, format string) (*File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	r, enc, err := Open(bufio.NewReaderSize(f, 64<<10), name, format)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{Reader: r, Encoding: enc, f: f}, nil
}
