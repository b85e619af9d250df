// Package wav reads and writes RIFF/WAVE files of telephony audio.
//
// The reader is streaming: [NewReader] parses the header chunks up to the
// start of the audio and then hands out the data chunk's bytes through
// [Reader.Read], so a long recording is never held in memory twice. It
// understands the chunk layout of real files (unknown chunks such as LIST
// and fact are skipped together with their RIFF pad byte), the
// WAVE_FORMAT_EXTENSIBLE header, RF64 sizes, and the placeholder data size
// (0 or 0xFFFFFFFF) that streaming writers leave behind.
//
// Any well-formed WAV is parsed and described by a [Format]; whether it is
// audio hashcall can process is a separate question answered by
// [Format.Telephony], whose error tells the user how to convert the file.
// [Sniff] tells from a file's first bytes whether to hand it to this
// package at all.
//
// This is hashcall's only WAV parser and writer: prompts (media.LoadWAV,
// package prompts), hashcall detect, dtmftest's corpora and the tools all
// read and write WAV through it.
package wav

import (
	"fmt"
	"strings"
)

// Encoding is the sample encoding of a WAV file, as far as telephony audio
// is concerned. Every format that is not one of the three encodings a phone
// call carries is Unknown; [Format] still describes it in full.
type Encoding int

// Encodings.
const (
	// Unknown is any format other than those below (8-bit or 24-bit PCM,
	// IEEE float, ADPCM, µ-law stored in 16 bits, ...).
	Unknown Encoding = iota
	// PCM16 is signed 16-bit little-endian linear PCM.
	PCM16
	// Ulaw is 8-bit G.711 µ-law.
	Ulaw
	// Alaw is 8-bit G.711 A-law.
	Alaw
)

// String returns the encoding's name: "PCM 16-bit", "µ-law", "A-law" or "unknown".
func (e Encoding) String() string {
	switch e {
	case PCM16:
		return "PCM 16-bit"
	case Ulaw:
		return "µ-law"
	case Alaw:
		return "A-law"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("Encoding(%d)", int(e))
}

// WAVE format tags (the wFormatTag field of the fmt chunk).
const (
	TagPCM        uint16 = 0x0001
	TagIEEEFloat  uint16 = 0x0003
	TagAlaw       uint16 = 0x0006
	TagUlaw       uint16 = 0x0007
	TagExtensible uint16 = 0xFFFE
)

// Format describes a WAV file's audio.
type Format struct {
	// Encoding classifies the format for telephony use. The reader derives
	// it from FormatTag and BitsPerSample; [Write] derives FormatTag and
	// BitsPerSample from it when FormatTag is zero.
	Encoding Encoding
	// FormatTag is the effective format tag: for a WAVE_FORMAT_EXTENSIBLE
	// file it is the tag embedded in the sub-format GUID (and Extensible is
	// true), or TagExtensible when the GUID is not a wave format tag.
	FormatTag     uint16
	SampleRate    uint32
	Channels      uint16
	BitsPerSample uint16
	// Extensible reports (when reading) or requests (when writing) a
	// WAVE_FORMAT_EXTENSIBLE fmt chunk.
	Extensible bool
}

// PCM16Mono8k is the native format of hashcall's audio: 8000 Hz mono PCM 16-bit.
var PCM16Mono8k = Format{Encoding: PCM16, FormatTag: TagPCM, SampleRate: 8000, Channels: 1, BitsPerSample: 16}

// encodingOf classifies a tag and sample width.
func encodingOf(tag, bits uint16) Encoding {
	switch {
	case tag == TagPCM && bits == 16:
		return PCM16
	case tag == TagUlaw && bits == 8:
		return Ulaw
	case tag == TagAlaw && bits == 8:
		return Alaw
	}
	return Unknown
}

// BlockAlign returns the size in bytes of one sample frame (one sample of
// every channel) for formats whose samples are whole bytes, and 0 when it
// cannot be computed from the format alone (compressed formats).
func (f Format) BlockAlign() int {
	switch f.FormatTag {
	case TagPCM, TagIEEEFloat, TagAlaw, TagUlaw:
	default:
		return 0
	}
	if f.BitsPerSample == 0 {
		return 0
	}
	return int(f.Channels) * ((int(f.BitsPerSample) + 7) / 8)
}

// tagName returns a human name for a format tag and the sample width.
func (f Format) tagName() string {
	switch f.FormatTag {
	case TagPCM:
		switch {
		case f.BitsPerSample == 0:
			return "PCM"
		case f.BitsPerSample <= 8:
			return fmt.Sprintf("PCM %d-bit unsigned", f.BitsPerSample)
		}
		return fmt.Sprintf("PCM %d-bit", f.BitsPerSample)
	case TagIEEEFloat:
		return fmt.Sprintf("IEEE float %d-bit", f.BitsPerSample)
	case TagUlaw, TagAlaw:
		name := "µ-law"
		if f.FormatTag == TagAlaw {
			name = "A-law"
		}
		if f.BitsPerSample != 8 {
			return fmt.Sprintf("%s %d-bit", name, f.BitsPerSample)
		}
		return name
	case 0x0002:
		return "MS ADPCM"
	case 0x0011:
		return "IMA ADPCM"
	case 0x0031:
		return "GSM 6.10"
	case 0x0055:
		return "MP3"
	case TagExtensible:
		return "extensible (unknown sub-format)"
	}
	return fmt.Sprintf("format tag 0x%04X", f.FormatTag)
}

// String describes the format the way a person would, for example
// "PCM 16-bit, 44100 Hz, stereo" or "µ-law, 8000 Hz, mono".
func (f Format) String() string {
	var ch string
	switch f.Channels {
	case 1:
		ch = "mono"
	case 2:
		ch = "stereo"
	default:
		ch = fmt.Sprintf("%d channels", f.Channels)
	}
	return fmt.Sprintf("%s, %d Hz, %s", f.tagName(), f.SampleRate, ch)
}

// Telephony returns nil when f is audio hashcall processes directly:
// 8000 Hz mono PCM 16-bit, 8-bit µ-law or 8-bit A-law. Otherwise it returns
// a *[FormatError] that names what was found, what is needed and how to
// convert the file with sox.
func (f Format) Telephony() error {
	if f.SampleRate == 8000 && f.Channels == 1 && encodingOf(f.FormatTag, f.BitsPerSample) != Unknown {
		return nil
	}
	return &FormatError{Found: f, Command: defaultSoxCommand}
}

// defaultSoxCommand converts anything sox reads to PCM16Mono8k.
const defaultSoxCommand = "sox in.wav -r 8000 -c 1 -b 16 -e signed-integer out.wav"

// FormatError reports a WAV file whose format hashcall cannot process.
// Use errors.As to retrieve it, and [FormatError.SoxCommand] to show the
// conversion command with the user's own file names.
type FormatError struct {
	// Found is the file's format.
	Found Format
	// Command is the sox command line that converts the file, with the
	// placeholder names in.wav and out.wav.
	Command string
}

// Need describes the formats that are accepted.
const Need = "8000 Hz mono PCM 16-bit, µ-law or A-law"

// Error returns a message such as "unsupported WAV: PCM 16-bit, 44100 Hz,
// stereo; need 8000 Hz mono PCM 16-bit, µ-law or A-law; convert with: sox
// in.wav -r 8000 -c 1 -b 16 -e signed-integer out.wav".
func (e *FormatError) Error() string {
	return fmt.Sprintf("unsupported WAV: %s; need %s; convert with: %s", e.Found, Need, e.Command)
}

// SoxCommand returns the conversion command with in and out substituted for
// the placeholder file names, each quoted for a POSIX shell when needed.
func (e *FormatError) SoxCommand(in, out string) string {
	cmd := e.Command
	if cmd == "" {
		cmd = defaultSoxCommand
	}
	fields := strings.Fields(cmd)
	for i, f := range fields {
		switch f {
		case "in.wav":
			fields[i] = shellQuote(in)
		case "out.wav":
			fields[i] = shellQuote(out)
		}
	}
	return strings.Join(fields, " ")
}

// shellQuote quotes s for a POSIX shell unless it consists only of
// characters that need no quoting.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%_+=:,./-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
