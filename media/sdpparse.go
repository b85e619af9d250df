package media

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
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

// mline is one m= line as the peer wrote it. pion/sdp accepts only the media
// types and transport protocols it knows, so the parser hands it a sanitised
// copy and keeps the original here: an answer must repeat every offered
// m= line, including the ones it rejects (RFC 3264 §6).
type mline struct {
	media string
	port  int
	proto string
	fmts  []string
}

// description is a parsed SDP body: pion's view plus the original m= lines,
// index for index.
type description struct {
	sd sdp.SessionDescription
	m  []mline
}

// parseSDP parses an SDP body from a peer. pion/sdp/v3 is strict about the
// order of lines (RFC 4566 §5 grammar), needs a line break after the last
// line and rejects media types and protocols it does not know, all of which
// real peers get wrong now and then. So the body is first normalised: line
// breaks may be CRLF or LF, blank lines and trailing blanks are ignored; the
// lines this package never reads (i, u, e, p, b, z, k, r) are dropped, t= and
// s= are replaced by "t=0 0" and "s=-", the first c= of each section is kept,
// and the remaining lines are put in RFC 4566 order (v o s c t a, then per
// media m c a) keeping the order of the a= lines.
func parseSDP(b []byte) (*description, error) {
	if len(b) == 0 {
		return nil, errors.New("empty SDP body")
	}
	if len(b) > maxSDPSize {
		return nil, fmt.Errorf("SDP body of %d bytes exceeds %d", len(b), maxSDPSize)
	}
	type section struct {
		m     string
		c     string
		attrs []string
	}
	var (
		origin  string
		sess    section
		media   []section
		d       description
		sawV    bool
		lineNum int
	)
	cur := &sess
	for raw := range strings.SplitSeq(string(b), "\n") {
		lineNum++
		line := strings.TrimRight(raw, "\r \t")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return nil, fmt.Errorf("SDP line %d is not a <type>=<value> line: %q", lineNum, clip(line))
		}
		if !sawV {
			if line != "v=0" {
				return nil, fmt.Errorf("SDP does not start with v=0 (line %d: %q)", lineNum, clip(line))
			}
			sawV = true
			continue
		}
		val := line[2:]
		switch line[0] {
		case 'o':
			if origin == "" && cur == &sess {
				origin = line
			}
		case 'c':
			if cur.c == "" {
				cur.c = line
			}
		case 'a':
			cur.attrs = append(cur.attrs, line)
		case 'm':
			ml, sanitised, err := parseMLine(val)
			if err != nil {
				return nil, fmt.Errorf("SDP line %d: %w", lineNum, err)
			}
			d.m = append(d.m, ml)
			media = append(media, section{m: sanitised})
			cur = &media[len(media)-1]
		}
	}
	if !sawV {
		return nil, errors.New("SDP has no v=0 line")
	}
	if origin == "" {
		return nil, errors.New("SDP has no o= line")
	}
	var sb strings.Builder
	sb.Grow(len(b) + 32)
	add := func(s string) {
		if s != "" {
			sb.WriteString(s)
			sb.WriteString("\r\n")
		}
	}
	add("v=0")
	add(origin)
	add("s=-")
	add(sess.c)
	add("t=0 0")
	for _, a := range sess.attrs {
		add(a)
	}
	for _, m := range media {
		add(m.m)
		add(m.c)
		for _, a := range m.attrs {
			add(a)
		}
	}
	if err := d.sd.UnmarshalString(sb.String()); err != nil {
		return nil, fmt.Errorf("parse SDP: %w", err)
	}
	if len(d.sd.MediaDescriptions) != len(d.m) {
		return nil, fmt.Errorf("parse SDP: %d m= lines read as %d", len(d.m), len(d.sd.MediaDescriptions))
	}
	return &d, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// pionMedia and pionProtos are what pion/sdp/v3 accepts in an m= line.
var (
	pionMedia  = []string{"audio", "video", "text", "application", "message"}
	pionProtos = []string{"UDP", "RTP", "AVP", "SAVP", "SAVPF", "TLS", "DTLS", "SCTP", "AVPF", "TCP", "MSRP", "BFCP", "UDT", "IX", "MRCPv2", "FEC"}
)

// parseMLine reads "<media> <port>[/<n>] <proto> <fmt> ..." (RFC 4566 §5.14)
// and returns it with a line pion accepts: an unknown media type becomes
// "application" and an unknown protocol "UDP".
func parseMLine(val string) (mline, string, error) {
	f := strings.Fields(val)
	if len(f) < 3 {
		return mline{}, "", fmt.Errorf("m= line %q has fewer than 3 fields", clip(val))
	}
	portField := f[1]
	if i := strings.IndexByte(portField, '/'); i >= 0 {
		if _, err := strconv.ParseUint(portField[i+1:], 10, 16); err != nil {
			return mline{}, "", fmt.Errorf("m= line %q has an invalid port count", clip(val))
		}
		portField = portField[:i]
	}
	port, err := strconv.ParseUint(portField, 10, 16)
	if err != nil {
		return mline{}, "", fmt.Errorf("m= line %q has an invalid port", clip(val))
	}
	ml := mline{media: f[0], port: int(port), proto: f[2], fmts: f[3:]}
	media := ml.media
	if !slices.Contains(pionMedia, media) {
		media = "application"
	}
	proto := ml.proto
	for p := range strings.SplitSeq(proto, "/") {
		if !slices.Contains(pionProtos, p) {
			proto = "UDP"
			break
		}
	}
	out := "m=" + media + " " + f[1] + " " + proto
	if len(ml.fmts) > 0 {
		out += " " + strings.Join(ml.fmts, " ")
	}
	return ml, out, nil
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

// formats returns the payload formats of media description i in m= line
// order; entries that are not RTP payload types (0–127) are skipped.
func (d *description) formats(i int) []format {
	rtpmaps := map[uint8]format{}
	for _, a := range d.sd.MediaDescriptions[i].Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		if f, ok := parseRtpmap(a.Value); ok {
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

// attr returns media description i's attribute key, else the session's.
func (d *description) attr(i int, key string) (string, bool) {
	if v, ok := d.sd.MediaDescriptions[i].Attribute(key); ok {
		return v, true
	}
	return d.sd.Attribute(key)
}

// direction returns the direction attribute of media description i (media
// level first, then session level; RFC 3264 §5.1: sendrecv when absent).
func (d *description) direction(i int) string {
	for _, attrs := range [][]sdp.Attribute{d.sd.MediaDescriptions[i].Attributes, d.sd.Attributes} {
		for _, a := range attrs {
			switch a.Key {
			case SendRecv, SendOnly, RecvOnly, Inactive:
				return a.Key
			}
		}
	}
	return SendRecv
}

// ptime returns the a=ptime of media description i, or 20 ms when it is
// absent or unusable (RFC 3551 §4.5: the default packetisation of G.711).
func (d *description) ptime(i int) time.Duration {
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

// address returns the connection address of media description i: its own
// c= line first, else the session's (RFC 4566 §5.7).
func (d *description) address(i int) (netip.Addr, error) {
	ci := d.sd.MediaDescriptions[i].ConnectionInformation
	if ci == nil {
		ci = d.sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil || ci.Address.Address == "" {
		return netip.Addr{}, errors.New("no c= connection address for the audio stream")
	}
	s := ci.Address.Address
	if j := strings.IndexByte(s, '/'); j >= 0 {
		s = s[:j] // multicast TTL / count
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("connection address %q is not an IP address", clip(ci.Address.Address))
	}
	addr = addr.Unmap()
	if (ci.AddressType == "IP4") != addr.Is4() {
		return netip.Addr{}, fmt.Errorf("connection address %s does not match address type %s", addr, ci.AddressType)
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
