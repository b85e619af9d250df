package media

import (
	"fmt"
	"strings"
	"time"

	"github.com/zaf/g711"
)

// Codec is an RTP audio payload format as SDP names it (a=rtpmap:<pt>
// <name>/<rate>).
type Codec struct {
	Name        string // encoding name as in SDP: "PCMU", "PCMA"
	PayloadType uint8  // static payload type (RFC 3551 §6) or the negotiated dynamic one
	ClockRate   uint32 // RTP clock rate in Hz
}

// The G.711 codecs, with their static payload types (RFC 3551 §6).
var (
	PCMU = Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000}
	PCMA = Codec{Name: "PCMA", PayloadType: 8, ClockRate: 8000}
)

// DefaultCodecs returns the codec preference used when none is configured:
// A-law first, then µ-law (m=audio <port> RTP/AVP 8 0 101).
func DefaultCodecs() []Codec { return []Codec{PCMA, PCMU} }

// Audio framing: hashcall sends 20 ms packets of 8 kHz G.711.
const (
	// SampleRate is the audio sample rate, in Hz.
	SampleRate = 8000
	// FrameDuration is the packet time (ptime) of the audio hashcall sends.
	FrameDuration = 20 * time.Millisecond
	// FrameSamples is the number of samples (and G.711 bytes) per packet.
	FrameSamples = SampleRate / 50
)

// ParseCodec returns the codec named name, case-insensitively: "PCMU"
// (also "ulaw", "g711u"), "PCMA" (also "alaw", "g711a").
func ParseCodec(name string) (Codec, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "pcmu", "ulaw", "mulaw", "g711u", "g711-ulaw":
		return PCMU, nil
	case "pcma", "alaw", "g711a", "g711-alaw":
		return PCMA, nil
	}
	return Codec{}, fmt.Errorf("media: unsupported codec %q (supported: PCMU, PCMA)", name)
}

// String returns name/rate, for example "PCMU/8000".
func (c Codec) String() string { return fmt.Sprintf("%s/%d", c.Name, c.ClockRate) }

// law tells the G.711 variant of c: 'u' for µ-law, 'a' for A-law, 0 for a
// codec this package cannot encode.
func (c Codec) law() byte {
	if c.ClockRate != SampleRate {
		return 0
	}
	switch {
	case strings.EqualFold(c.Name, "PCMU"):
		return 'u'
	case strings.EqualFold(c.Name, "PCMA"):
		return 'a'
	}
	return 0
}

// Supported reports whether this package can send and receive c: G.711
// µ-law or A-law at 8000 Hz.
func (c Codec) Supported() bool { return c.law() != 0 }

// Silence returns the G.711 byte of a zero sample: 0xFF for µ-law, 0xD5 for
// A-law (and 0 for a codec that is not G.711).
func (c Codec) Silence() byte {
	switch c.law() {
	case 'u':
		return 0xFF
	case 'a':
		return 0xD5
	}
	return 0
}

// AppendDecoded appends the linear samples of G.711 payload b in c to dst,
// with zaf/g711's allocation-free per-sample functions; for a codec that
// is not G.711 it appends nothing. It is the one G.711 decoder of the live
// receive path and of replay.
func (c Codec) AppendDecoded(dst []int16, b []byte) []int16 {
	return appendDecoded(c.law(), dst, b)
}

// appendDecoded is AppendDecoded by law ('u', 'a'; anything else: nothing).
func appendDecoded(law byte, dst []int16, b []byte) []int16 {
	switch law {
	case 'u':
		for _, v := range b {
			dst = append(dst, g711.DecodeUlawFrame(v))
		}
	case 'a':
		for _, v := range b {
			dst = append(dst, g711.DecodeAlawFrame(v))
		}
	}
	return dst
}

// encode appends samples encoded in c (which must be supported) to dst,
// padding with silence to a whole number of frames. It calls zaf/g711's
// allocation-free per-sample functions.
func (c Codec) encode(dst []byte, samples []int16) []byte {
	law := c.law()
	for _, s := range samples {
		if law == 'u' {
			dst = append(dst, g711.EncodeUlawFrame(s))
		} else {
			dst = append(dst, g711.EncodeAlawFrame(s))
		}
	}
	for r := len(samples) % FrameSamples; r != 0 && r < FrameSamples; r++ {
		dst = append(dst, c.Silence())
	}
	return dst
}
