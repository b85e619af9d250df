package media

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxSDPSize bounds the SDP bodies parsed: a SIP message over UDP is far
// smaller, and a body this large is an attack or a bug.
const maxSDPSize = 64 << 10

// Directions (RFC 3264 §5.1, RFC 4566 §6).
const (
	SendRecv = "sendrecv"
	SendOnly = "sendonly"
	RecvOnly = "recvonly"
	Inactive = "inactive"
)

// ErrNotSDP is returned by [ParseSDP] for a body that is not SDP at all:
// empty, larger than 64 KiB, or without a v=0 line.
var ErrNotSDP = errors.New("media: not an SDP body")

// attribute is one a= line: "a=<key>[:<value>]" (RFC 4566 §5.13).
type attribute struct{ key, value string }

// section is the session part or one media section of an SDP body.
type section struct {
	conn  string // the first c= value of the section, "" when none
	attrs []attribute
}

// mline is one m= line as the peer wrote it, with its section: an answer
// must repeat every offered m= line, including the ones it rejects (RFC
// 3264 §6), whatever its media type or transport.
type mline struct {
	media string
	port  int
	proto string
	fmts  []string
	bad   bool // the m= line could not be read; port, proto and fmts are zero
	section
}

// SDP is an SDP body read by [ParseSDP]: the session section and each m=
// section in order, with their c= and a= lines. It is the one SDP reader of
// hashcall, used by live offer/answer ([Local.ParseAnswer], [Local.Answer])
// and by the replay of captures alike.
type SDP struct {
	origin string
	sess   section
	m      []mline
	// problem is the first departure from the RFC 4566 §5 grammar that
	// live negotiation refuses; the lenient readers of captures go on.
	problem error
}

// ParseSDP reads an SDP body leniently, section by section (RFC 4566 §5):
// line breaks may be CRLF or LF, blank lines and trailing blanks are
// ignored, the lines hashcall never reads (i, u, e, p, b, z, k, r, s, t)
// are skipped, the first c= of each section counts, and lines out of the
// grammar's order are taken where they stand. It fails with [ErrNotSDP]
// only for a body that is not SDP at all; other departures from the
// grammar (a line that is not <type>=<value>, a first line other than v=0,
// no or a malformed o= or c= line, a malformed m= line) are kept for
// [SDP.Err], which live negotiation checks and the replay of a capture
// need not.
func ParseSDP(b []byte) (*SDP, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrNotSDP)
	}
	if len(b) > maxSDPSize {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrNotSDP, len(b), maxSDPSize)
	}
	var (
		d       SDP
		sawV    bool
		lineNum int
	)
	problem := func(format string, args ...any) {
		if d.problem == nil {
			d.problem = fmt.Errorf(format, args...)
		}
	}
	cur := &d.sess
	for raw := range strings.SplitSeq(string(b), "\n") {
		lineNum++
		line := strings.TrimRight(raw, "\r \t")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			problem("SDP line %d is not a <type>=<value> line: %q", lineNum, clip(line))
			continue
		}
		if !sawV {
			if line != "v=0" {
				problem("SDP does not start with v=0 (line %d: %q)", lineNum, clip(line))
				continue
			}
			sawV = true
			continue
		}
		val := line[2:]
		switch line[0] {
		case 'o':
			if d.origin == "" && cur == &d.sess {
				if err := checkOrigin(val); err != nil {
					problem("SDP line %d: %w", lineNum, err)
				}
				d.origin = val
			}
		case 'c':
			if cur.conn == "" {
				if _, _, err := splitConnection(val); err != nil {
					problem("SDP line %d: %w", lineNum, err)
				}
				cur.conn = val
			}
		case 'a':
			k, v, _ := strings.Cut(val, ":")
			cur.attrs = append(cur.attrs, attribute{key: k, value: v})
		case 'm':
			ml, err := parseMLine(val)
			if err != nil {
				problem("SDP line %d: %w", lineNum, err)
			}
			d.m = append(d.m, ml)
			cur = &d.m[len(d.m)-1].section
		}
	}
	if !sawV {
		return nil, fmt.Errorf("%w: no v=0 line", ErrNotSDP)
	}
	if d.origin == "" {
		problem("SDP has no o= line")
	}
	return &d, nil
}

// Err returns the first departure of the body from the RFC 4566 §5
// grammar, or nil.
func (d *SDP) Err() error { return d.problem }

// parseStrict is ParseSDP for live negotiation: any departure from the
// grammar is an error.
func parseStrict(b []byte) (*SDP, error) {
	d, err := ParseSDP(b)
	if err != nil {
		return nil, err
	}
	if d.problem != nil {
		return nil, d.problem
	}
	return d, nil
}

// checkOrigin checks "<username> <sess-id> <sess-version> <nettype>
// <addrtype> <unicast-address>" (RFC 4566 §5.2).
func checkOrigin(v string) error {
	f := strings.Fields(v)
	if len(f) != 6 {
		return fmt.Errorf("o= line %q does not have 6 fields", clip(v))
	}
	for _, n := range f[1:3] {
		if _, err := strconv.ParseUint(n, 10, 64); err != nil {
			return fmt.Errorf("o= line %q has a session id or version that is not a number", clip(v))
		}
	}
	if f[3] != "IN" || f[4] != "IP4" && f[4] != "IP6" {
		return fmt.Errorf("o= line %q is not of network IN and address type IP4 or IP6", clip(v))
	}
	return nil
}

// splitConnection reads "<nettype> <addrtype> <connection-address>" (RFC
// 4566 §5.7).
func splitConnection(v string) (addrType, addr string, err error) {
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != "IN" || f[1] != "IP4" && f[1] != "IP6" {
		return "", "", fmt.Errorf("c= line %q is not \"IN IP4|IP6 <address>\"", clip(v))
	}
	return f[1], f[2], nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// parseMLine reads "<media> <port>[/<n>] <proto> <fmt> ..." (RFC 4566
// §5.14). A line that cannot be read is returned with bad set and its media
// type, so that the sections that follow stay in place.
func parseMLine(val string) (mline, error) {
	f := strings.Fields(val)
	if len(f) < 3 {
		ml := mline{bad: true}
		if len(f) > 0 {
			ml.media = f[0]
		}
		return ml, fmt.Errorf("m= line %q has fewer than 3 fields", clip(val))
	}
	portField := f[1]
	if i := strings.IndexByte(portField, '/'); i >= 0 {
		if _, err := strconv.ParseUint(portField[i+1:], 10, 16); err != nil {
			return mline{media: f[0], bad: true}, fmt.Errorf("m= line %q has an invalid port count", clip(val))
		}
		portField = portField[:i]
	}
	port, err := strconv.ParseUint(portField, 10, 16)
	if err != nil {
		return mline{media: f[0], bad: true}, fmt.Errorf("m= line %q has an invalid port", clip(val))
	}
	return mline{media: f[0], port: int(port), proto: f[2], fmts: f[3:]}, nil
}

// AudioStream is the first m=audio section of an SDP body as a reader
// of captures needs it, read without the checks of live negotiation.
type AudioStream struct {
	// Remote is the section's address: its c= line, else the session's,
	// and the m= port.
	Remote netip.AddrPort
	// Codecs are the G.711 formats (PCMU, PCMA at 8000 Hz) in m= line
	// order, with the body's payload types.
	Codecs []Codec
	// EventPT is the first dynamic payload type mapped to
	// telephone-event/8000 (RFC 4733 §7.1), valid when HaveEvents.
	EventPT    uint8
	HaveEvents bool
	// Formats is the m= line's format list as written, for messages.
	Formats string
}

// Audio returns the first m=audio section; ok is false when there is none,
// its m= line is unreadable, or neither it nor the session has a c= line
// with an IP address.
func (d *SDP) Audio() (a AudioStream, ok bool) {
	i := d.audio()
	if i < 0 || d.m[i].bad {
		return AudioStream{}, false
	}
	f := strings.Fields(d.connection(i))
	if len(f) < 3 || f[0] != "IN" {
		return AudioStream{}, false
	}
	host, _, _ := strings.Cut(f[2], "/")
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return AudioStream{}, false
	}
	a.Remote = netip.AddrPortFrom(addr.Unmap(), uint16(d.m[i].port))
	a.Formats = strings.Join(d.m[i].fmts, " ")
	for _, f := range d.formats(i) {
		for _, c := range [...]Codec{PCMU, PCMA} {
			if strings.EqualFold(f.name, c.Name) && f.rate == c.ClockRate {
				c.PayloadType = f.pt
				a.Codecs = append(a.Codecs, c)
			}
		}
		if !a.HaveEvents && f.isEvent(8000) {
			a.EventPT, a.HaveEvents = f.pt, true
		}
	}
	return a, true
}

// audio returns the index of the first m=audio section, or -1.
func (d *SDP) audio() int {
	return slices.IndexFunc(d.m, func(m mline) bool { return m.media == "audio" })
}

// rtpAVP reports whether proto is plain RTP: RTP/AVP (RFC 3551) or
// RTP/AVPF (RFC 4585), which a receiver without RTCP feedback treats alike.
func rtpAVP(proto string) bool {
	return strings.EqualFold(proto, "RTP/AVP") || strings.EqualFold(proto, "RTP/AVPF")
}

// format is one payload format of an m= line with its rtpmap.
type format struct {
	pt     uint8
	name   string // from a=rtpmap, else the static name, else ""
	rate   uint32
	rtpmap bool // name and rate come from an a=rtpmap line
}

// staticFormats are RFC 3551 §6's static audio payload types.
var staticFormats = map[uint8]format{
	0: {name: "PCMU", rate: 8000}, 3: {name: "GSM", rate: 8000}, 4: {name: "G723", rate: 8000},
	5: {name: "DVI4", rate: 8000}, 6: {name: "DVI4", rate: 16000}, 7: {name: "LPC", rate: 8000},
	8: {name: "PCMA", rate: 8000}, 9: {name: "G722", rate: 8000}, 10: {name: "L16", rate: 44100},
	11: {name: "L16", rate: 44100}, 12: {name: "QCELP", rate: 8000}, 13: {name: "CN", rate: 8000},
	14: {name: "MPA", rate: 90000}, 15: {name: "G728", rate: 8000}, 16: {name: "DVI4", rate: 11025},
	17: {name: "DVI4", rate: 22050}, 18: {name: "G729", rate: 8000},
}

// formats returns the payload formats of media section i in m= line
// order; entries that are not RTP payload types (0–127) are skipped.
func (d *SDP) formats(i int) []format {
	rtpmaps := map[uint8]format{}
	for _, a := range d.m[i].attrs {
		if a.key != "rtpmap" {
			continue
		}
		if f, ok := parseRtpmap(a.value); ok {
			if _, dup := rtpmaps[f.pt]; !dup {
				rtpmaps[f.pt] = f
			}
		}
	}
	var out []format
	for _, s := range d.m[i].fmts {
		pt, err := strconv.ParseUint(s, 10, 7)
		if err != nil {
			continue
		}
		f, ok := rtpmaps[uint8(pt)]
		if !ok {
			f = staticFormats[uint8(pt)]
			f.pt = uint8(pt)
		}
		out = append(out, f)
	}
	return out
}

// parseRtpmap reads "<pt> <name>/<rate>[/<channels>]" (RFC 4566 §6).
func parseRtpmap(v string) (format, bool) {
	ptStr, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return format{}, false
	}
	pt, err := strconv.ParseUint(ptStr, 10, 7)
	if err != nil {
		return format{}, false
	}
	parts := strings.Split(strings.TrimSpace(rest), "/")
	if len(parts) < 2 || parts[0] == "" {
		return format{}, false
	}
	rate, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || rate == 0 {
		return format{}, false
	}
	return format{pt: uint8(pt), name: parts[0], rate: uint32(rate), rtpmap: true}, true
}

// label names a format in error messages.
func (f format) label() string {
	if f.name != "" {
		return f.name
	}
	return "PT " + strconv.Itoa(int(f.pt))
}

// matches reports whether the peer's format f is codec c: static payload
// types match by number (and by name when the peer gave an rtpmap),
// dynamic ones by name and clock rate.
func (f format) matches(c Codec) bool {
	if c.PayloadType < 96 {
		return f.pt == c.PayloadType && (!f.rtpmap || strings.EqualFold(f.name, c.Name) && f.rate == c.ClockRate)
	}
	return f.pt >= 96 && f.rtpmap && strings.EqualFold(f.name, c.Name) && f.rate == c.ClockRate
}

// isEvent reports whether f is telephone-event at rate on a dynamic payload
// type (RFC 4733 §7.1).
func (f format) isEvent(rate uint32) bool {
	return f.pt >= 96 && f.rtpmap && strings.EqualFold(f.name, "telephone-event") && f.rate == rate
}

// attr returns media section i's attribute key, else the session's.
func (d *SDP) attr(i int, key string) (string, bool) {
	for _, attrs := range [][]attribute{d.m[i].attrs, d.sess.attrs} {
		for _, a := range attrs {
			if a.key == key {
				return a.value, true
			}
		}
	}
	return "", false
}

// direction returns the direction attribute of media section i (media
// level first, then session level; RFC 3264 §5.1: sendrecv when absent).
func (d *SDP) direction(i int) string {
	for _, attrs := range [][]attribute{d.m[i].attrs, d.sess.attrs} {
		for _, a := range attrs {
			switch a.key {
			case SendRecv, SendOnly, RecvOnly, Inactive:
				return a.key
			}
		}
	}
	return SendRecv
}

// ptime returns the a=ptime of media section i, or 20 ms when it is
// absent or unusable (RFC 3551 §4.5: the default packetisation of G.711).
func (d *SDP) ptime(i int) time.Duration {
	v, ok := d.attr(i, "ptime")
	if !ok {
		return FrameDuration
	}
	ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || ms < 1 || ms > 1000 {
		return FrameDuration
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// connection returns media section i's c= value: its own first, else the
// session's (RFC 4566 §5.7).
func (d *SDP) connection(i int) string {
	if c := d.m[i].conn; c != "" {
		return c
	}
	return d.sess.conn
}

// address returns the connection address of media section i, checked for
// live use: an IP address (not a name) of the c= line's address type, not
// multicast.
func (d *SDP) address(i int) (netip.Addr, error) {
	typ, s, err := splitConnection(d.connection(i))
	if err != nil {
		return netip.Addr{}, errors.New("no c= connection address for the audio stream")
	}
	raw := s
	if j := strings.IndexByte(s, '/'); j >= 0 {
		s = s[:j] // multicast TTL / count
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("connection address %q is not an IP address", clip(raw))
	}
	addr = addr.Unmap()
	if (typ == "IP4") != addr.Is4() {
		return netip.Addr{}, fmt.Errorf("connection address %s does not match address type %s", addr, typ)
	}
	if addr.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("connection address %s is multicast", addr)
	}
	return addr, nil
}

// names lists format labels for error messages, skipping telephone-event
// and comfort noise.
func names(fs []format) string {
	var l []string
	for _, f := range fs {
		if strings.EqualFold(f.name, "telephone-event") || strings.EqualFold(f.name, "CN") {
			continue
		}
		l = append(l, f.label())
	}
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func codecNames(cs []Codec) string {
	l := make([]string, len(cs))
	for i, c := range cs {
		l[i] = c.Name
	}
	return strings.Join(l, ", ")
}
