package replay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Capture file limits. A capture whose headers claim more is refused rather
// than trusted with an allocation.
const (
	// maxSnaplen is the largest packet read; a UDP datagram is at most
	// 64 KiB, and tshark's default snap length is 256 KiB.
	maxSnaplen = 256 << 10
	// maxBlock is the largest pcapng block accepted.
	maxBlock = maxSnaplen + 64<<10
)

// Capture file magic numbers.
const (
	magicPcapMicros   = 0xa1b2c3d4
	magicPcapNanos    = 0xa1b23c4d
	magicPcapModified = 0xa1b2cd34 // Kuznetzov's patched libpcap
	magicPcapng       = 0x0a0d0d0a
	pcapngByteOrder   = 0x1a2b3c4d
)

// pcapng block types (draft-ietf-opsawg-pcapng).
const (
	ngSHB = 0x0a0d0d0a // section header
	ngIDB = 1          // interface description
	ngOPB = 2          // packet block (obsolete)
	ngSPB = 3          // simple packet
	ngNRB = 4          // name resolution
	ngISB = 5          // interface statistics
	ngEPB = 6          // enhanced packet
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

// openSource detects the format of r and opens it. Input goes through a
// guard that checks the framing of every block before pcapgo sees it:
// pcapgo trusts lengths and options it reads (a damaged file can make it
// allocate gigabytes, divide by zero or index out of range).
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
		ng, err := pcapgo.NewNgReader(&ngGuard{r: br}, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, readError("pcapng", err)
		}
		return &source{format: "pcapng" + gz, ng: ng}, nil
	case le == magicPcapMicros || le == magicPcapNanos || be == magicPcapMicros || be == magicPcapNanos:
		pr, err := pcapgo.NewReader(&pcapGuard{r: br})
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
	case bytes.HasPrefix(head, []byte("RIFF")):
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

// pcapGuard passes a classic pcap file through, bounding the snap length
// in its header so that pcapgo never allocates more than maxSnaplen for a
// packet (it allocates the snap length at once).
type pcapGuard struct {
	r    io.Reader
	head [24]byte
	pos  int
	done bool
}

func (g *pcapGuard) Read(p []byte) (int, error) {
	if g.done {
		return g.r.Read(p)
	}
	if g.pos == 0 {
		if _, err := io.ReadFull(g.r, g.head[:]); err != nil {
			return 0, err
		}
		var order binary.ByteOrder = binary.LittleEndian
		if m := binary.BigEndian.Uint32(g.head[:4]); m == magicPcapMicros || m == magicPcapNanos {
			order = binary.BigEndian
		}
		if snap := order.Uint32(g.head[16:20]); snap == 0 || snap > maxSnaplen {
			order.PutUint32(g.head[16:20], maxSnaplen)
		}
	}
	n := copy(p, g.head[g.pos:])
	g.pos += n
	if g.pos == len(g.head) {
		g.done = true
	}
	return n, nil
}

// ngGuard passes a pcapng file through block by block, checking each
// block's framing and the fields pcapgo trusts: block lengths, captured
// lengths against the block, interface option lengths and timestamp
// resolutions. Interface statistics blocks, which pcapgo parses but
// replay does not use, are left out. A damaged block ends the file with a
// FormatError.
type ngGuard struct {
	r       io.Reader
	buf     []byte // the current block
	off     int
	order   binary.ByteOrder
	ifaces  int
	spbSnap uint32 // snap length of the section's first interface
	err     error
}

func (g *ngGuard) Read(p []byte) (int, error) {
	for g.off == len(g.buf) {
		if g.err != nil {
			return 0, g.err
		}
		g.err = g.block()
	}
	n := copy(p, g.buf[g.off:])
	g.off += n
	return n, nil
}

// block reads and checks the next block into g.buf.
func (g *ngGuard) block() error {
	g.buf, g.off = g.buf[:0], 0
	var hdr [12]byte
	if _, err := io.ReadFull(g.r, hdr[:8]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	typ := binary.LittleEndian.Uint32(hdr[:4])
	if typ == ngSHB {
		if _, err := io.ReadFull(g.r, hdr[8:12]); err != nil {
			return io.ErrUnexpectedEOF
		}
		switch {
		case binary.LittleEndian.Uint32(hdr[8:12]) == pcapngByteOrder:
			g.order = binary.LittleEndian
		case binary.BigEndian.Uint32(hdr[8:12]) == pcapngByteOrder:
			g.order = binary.BigEndian
		default:
			return formatErrorf("damaged pcapng section header (byte-order magic % x)", hdr[8:12])
		}
		g.ifaces, g.spbSnap = 0, 0
	} else if g.order == nil {
		return formatErrorf("pcapng file does not start with a section header")
	} else {
		typ = g.order.Uint32(hdr[:4])
	}
	length := g.order.Uint32(hdr[4:8])
	min := uint32(12)
	if typ == ngSHB {
		min = 28
	}
	if length < min || length%4 != 0 || length > maxBlock {
		return formatErrorf("damaged pcapng block (type %#x, length %d)", typ, length)
	}
	if cap(g.buf) < int(length) {
		g.buf = make([]byte, 0, max(int(length), 4096))
	}
	b := g.buf[:length]
	n := copy(b, hdr[:8])
	if typ == ngSHB {
		n = copy(b, hdr[:12])
	}
	if m, err := io.ReadFull(g.r, b[n:]); err != nil {
		// Hand out what there is: pcapng readers take an end of file at a
		// block's first byte for the end of the capture.
		g.buf = b[:n+m]
		return io.ErrUnexpectedEOF
	}
	if g.order.Uint32(b[length-4:]) != length {
		return formatErrorf("damaged pcapng block (type %#x: trailing length %d, leading %d)", typ, g.order.Uint32(b[length-4:]), length)
	}
	body := b[8 : length-4]
	switch typ {
	case ngSHB:
		if g.order.Uint16(body[4:6]) != 1 {
			// pcapgo skips sections of other major versions.
			break
		}
		if !g.optionsOK(body[16:], nil) {
			// Comments and such: drop the options rather than the file.
			b = append(b[:24:24], 0, 0, 0, 0)
			g.order.PutUint32(b[4:], 28)
			g.order.PutUint32(b[24:], 28)
		}
	case ngIDB:
		if len(body) < 8 {
			return formatErrorf("damaged pcapng interface block")
		}
		if !g.optionsOK(body[8:], checkIDBOption) {
			return formatErrorf("damaged pcapng interface block options")
		}
		snap := g.order.Uint32(body[4:8])
		if snap > maxSnaplen {
			snap = 0
			g.order.PutUint32(body[4:8], 0)
		}
		if g.ifaces == 0 {
			g.spbSnap = snap
		}
		g.ifaces++
	case ngEPB, ngOPB:
		if len(body) < 20 {
			return formatErrorf("damaged pcapng packet block")
		}
		id := g.order.Uint32(body[0:4])
		if typ == ngOPB {
			id = uint32(g.order.Uint16(body[0:2]))
		}
		if id >= uint32(g.ifaces) {
			return formatErrorf("pcapng packet of interface %d, but the section describes %d", id, g.ifaces)
		}
		if capLen := g.order.Uint32(body[12:16]); capLen > uint32(len(body)-20) {
			return formatErrorf("damaged pcapng packet block (captured length %d in a block of %d)", capLen, length)
		}
	case ngSPB:
		if len(body) < 4 || g.ifaces == 0 {
			return formatErrorf("damaged pcapng simple packet block")
		}
		capLen := g.order.Uint32(body[0:4])
		if g.spbSnap != 0 && capLen > g.spbSnap {
			capLen = g.spbSnap
		}
		if capLen > uint32(len(body)-4) {
			return formatErrorf("damaged pcapng simple packet block (length %d in a block of %d)", capLen, length)
		}
	case ngISB:
		return nil // not used; pcapgo would parse its options
	}
	g.buf = b
	return nil
}

// optionsOK checks that opts is a well-formed option list that fills the
// block (with or without an end-of-options option), and each option with
// check.
func (g *ngGuard) optionsOK(opts []byte, check func(code uint16, v []byte) bool) bool {
	for len(opts) > 0 {
		if len(opts) < 4 {
			return false
		}
		code, n := g.order.Uint16(opts[0:2]), int(g.order.Uint16(opts[2:4]))
		if code == 0 {
			return n == 0 && len(opts) == 4
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(opts) {
			return false
		}
		if check != nil && !check(code, opts[4:4+n]) {
			return false
		}
		opts = opts[4+padded:]
	}
	return true
}

// checkIDBOption checks the interface options pcapgo reads by fixed size.
func checkIDBOption(code uint16, v []byte) bool {
	switch code {
	case 9: // if_tsresol: one byte; 2^-e or 10^-e seconds
		if len(v) != 1 {
			return false
		}
		if v[0]&0x80 != 0 {
			return v[0]&0x7f <= 63
		}
		return v[0] <= 19
	case 11: // if_filter: a type byte, then the filter
		return len(v) >= 1
	case 14: // if_tsoffset: 64 bits
		return len(v) == 8
	}
	return true
}
