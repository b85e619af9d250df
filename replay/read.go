package replay

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/hashcall/hashcall/media/wav"
)

// Capture file magic numbers.
const (
	magicPcapMicros   = 0xa1b2c3d4
	magicPcapNanos    = 0xa1b23c4d
	magicPcapModified = 0xa1b2cd34 // Kuznetzov's patched libpcap
	magicPcapng       = 0x0a0d0d0a
)

// FormatError reports a file that is not a capture hashcall can read: not
// pcap or pcapng, a damaged header, or a link type it cannot decode.
type FormatError struct {
	Reason string
}

func (e *FormatError) Error() string { return "replay: " + e.Reason }

func formatErrorf(format string, args ...any) error {
	return &FormatError{Reason: fmt.Sprintf(format, args...)}
}

// source reads the packets of a pcap or pcapng file with gopacket's pcapgo.
type source struct {
	format string // "pcap", "pcapng", with ".gz" when compressed
	pcap   *pcapgo.Reader
	ng     *pcapgo.NgReader
	link   layers.LinkType // of a pcap file
}

// openSource detects the format of r and opens it with pcapgo, which
// bounds what it allocates by the bytes actually read and checks block,
// option and interface fields itself (the seeds under
// testdata/fuzz/FuzzRead are the damaged headers the hand-written guards
// in front of google/gopacket's pcapgo used to catch). A panic in it is
// still turned into a FormatError.
func openSource(r io.Reader) (s *source, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, formatErrorf("damaged capture file (%v)", p)
		}
	}()
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	gz := ""
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, formatErrorf("damaged gzip data: %v", err)
		}
		br = bufio.NewReaderSize(zr, 64<<10)
		head, _ = br.Peek(4)
		gz = ".gz"
	}
	if len(head) < 4 {
		if len(head) == 0 {
			return nil, formatErrorf("empty file: not a pcap or pcapng capture")
		}
		return nil, formatErrorf("file too short for a pcap or pcapng capture (%d bytes)", len(head))
	}
	le, be := binary.LittleEndian.Uint32(head), binary.BigEndian.Uint32(head)
	switch {
	case le == magicPcapng:
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, readError("pcapng", err)
		}
		return &source{format: "pcapng" + gz, ng: ng}, nil
	case le == magicPcapMicros || le == magicPcapNanos || be == magicPcapMicros || be == magicPcapNanos:
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, readError("pcap", err)
		}
		return &source{format: "pcap" + gz, pcap: pr, link: pr.LinkType()}, nil
	case le == magicPcapModified || be == magicPcapModified:
		return nil, formatErrorf("modified (Kuznetzov) pcap format is not supported; convert with: editcap -F pcap IN OUT")
	}
	return nil, formatErrorf("not a pcap or pcapng capture (starts with %s)", describeHead(head))
}

// describeHead names what a file that is not a capture looks like.
func describeHead(head []byte) string {
	switch {
	case wav.Sniff(head):
		return `"RIFF": a WAV file? use hashcall detect`
	case isText(head):
		return fmt.Sprintf("%q", head)
	}
	return fmt.Sprintf("% x", head)
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c > 0x7e {
			return false
		}
	}
	return true
}

func readError(format string, err error) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return formatErrorf("%s header is truncated", format)
	}
	return formatErrorf("damaged %s header: %v", format, err)
}

// next returns the next packet: its bytes (valid until the next call), its
// capture time and link type.
func (s *source) next() (data []byte, ts time.Time, link layers.LinkType, err error) {
	defer func() {
		if p := recover(); p != nil {
			data, err = nil, formatErrorf("damaged capture file (%v)", p)
		}
	}()
	if s.pcap != nil {
		data, ci, err := s.pcap.ZeroCopyReadPacketData()
		return data, ci.Timestamp, s.link, err
	}
	data, ci, err := s.ng.ZeroCopyReadPacketData()
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	if len(ci.AncillaryData) > 0 {
		link, _ = ci.AncillaryData[0].(layers.LinkType)
	}
	return data, ci.Timestamp, link, nil
}
