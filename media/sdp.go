package media

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// DefaultEventPT is the telephone-event payload type offered when
// [Local.EventPT] is zero (a=rtpmap:101 telephone-event/8000).
const DefaultEventPT = 101

// Local is our side of the SDP offer/answer exchange (RFC 3264): the address
// we receive RTP on, the codecs we accept in order of preference and the
// payload type on which we receive telephone-events (RFC 4733).
//
// A Local remembers the last SDP it produced so that the o= line follows
// RFC 3264 §8: the version stays when the description is unchanged (a
// session refresh) and increases by one when it changes. It is not safe for
// concurrent use.
type Local struct {
	// Addr is where we receive RTP (our socket); its IP goes into o= and c=
	// and must be a specific unicast address.
	Addr netip.AddrPort
	// Codecs in order of preference; nil means DefaultCodecs() (PCMA, PCMU).
	// Only G.711 is supported.
	Codecs []Codec
	// EventPT is the dynamic payload type offered for telephone-event
	// (96–127); 0 means 101.
	EventPT uint8
	// SessionID is the o= session id; 0 means a random one, chosen at the
	// first SDP produced.
	SessionID uint64
	// Version is the o= session version of the next SDP produced. It
	// increases by itself when the SDP changes; see Bump.
	Version uint64

	sent      bool
	last      []byte // last SDP produced
	lastVer   uint64 // its version
	lastState string
}

// Negotiated is the outcome of one offer/answer exchange for the audio
// stream: what to send where, and what to accept.
type Negotiated struct {
	// Remote is the far end's RTP address from its SDP (media-level c=,
	// else session-level, and the m= port).
	Remote netip.AddrPort
	// Codec is the codec we send, with the far end's payload type. From
	// ParseAnswer it is the answer's first format that is one of ours
	// (RFC 3264 §7: the answer lists what the far end prefers to receive);
	// from Answer it is the offer's most preferred format we support (§6.1).
	Codec Codec
	// RecvCodecs are the audio codecs the far end may send us, with the
	// payload types we receive them on; Codec is among them. An answer that
	// lists several of our codecs lets the far end pick any of them, and
	// peers do send a different one than they receive.
	RecvCodecs []Codec
	// SendEventPT is the payload type we send telephone-events on: the one
	// in the far end's SDP (RFC 4733 §7.1.1). Valid when HaveEvents.
	SendEventPT uint8
	// HaveEvents reports whether both sides agreed on telephone-event at
	// the audio clock rate; without it keys arrive only in-band or by SIP
	// INFO.
	HaveEvents bool
	// RecvEventPT is the payload type we receive telephone-events on: the
	// one in our own SDP.
	RecvEventPT uint8
	// EventClockRate is the telephone-event clock rate (8000).
	EventClockRate uint32
	// Ptime is the far end's a=ptime, 20 ms when absent.
	Ptime time.Duration
	// Direction is the far end's direction attribute (sendrecv, sendonly,
	// recvonly, inactive; sendrecv when absent).
	Direction string
	// Hold reports that the far end does not want our media: its direction
	// is sendonly or inactive, or its address is 0.0.0.0 (RFC 3264 §8.4).
	Hold bool
}

// StreamConfig returns the receive-path configuration for n.
func (n Negotiated) StreamConfig(latch bool) StreamConfig {
	codecs := n.RecvCodecs
	if len(codecs) == 0 {
		codecs = []Codec{n.Codec}
	}
	cfg := StreamConfig{
		Remote:         n.Remote,
		Latch:          latch,
		Codecs:         codecs,
		EventPT:        n.RecvEventPT,
		HaveEvents:     n.HaveEvents,
		EventClockRate: n.EventClockRate,
	}
	if n.SendEventPT != n.RecvEventPT {
		cfg.PeerEventPT = n.SendEventPT
	}
	return cfg
}

// config returns the effective codecs and event payload type, checked.
func (l *Local) config() ([]Codec, uint8, error) {
	codecs := l.Codecs
	if len(codecs) == 0 {
		codecs = DefaultCodecs()
	}
	ev := l.EventPT
	if ev == 0 {
		ev = DefaultEventPT
	}
	if ev < 96 || ev > 127 {
		return nil, 0, fmt.Errorf("media: telephone-event payload type %d is not dynamic (96–127)", ev)
	}
	for i, c := range codecs {
		if !c.Supported() {
			return nil, 0, fmt.Errorf("media: unsupported codec %s (supported: PCMU, PCMA)", c)
		}
		if c.PayloadType == ev {
			return nil, 0, fmt.Errorf("media: codec %s uses the telephone-event payload type %d", c.Name, ev)
		}
		for _, o := range codecs[:i] {
			if o.PayloadType == c.PayloadType {
				return nil, 0, fmt.Errorf("media: codecs %s and %s share payload type %d", o.Name, c.Name, c.PayloadType)
			}
		}
	}
	ip := l.Addr.Addr()
	switch {
	case !ip.IsValid():
		return nil, 0, errors.New("media: local RTP address is not set")
	case ip.Unmap().IsUnspecified(), ip.IsMulticast():
		return nil, 0, fmt.Errorf("media: local RTP address %s cannot be advertised in SDP; configure a unicast media IP", ip)
	case l.Addr.Port() == 0:
		return nil, 0, errors.New("media: local RTP port is 0")
	}
	return codecs, ev, nil
}

// state fingerprints the fields an SDP is built from.
func (l *Local) state() string {
	return fmt.Sprintf("%v|%v|%d|%d", l.Addr, l.Codecs, l.EventPT, l.SessionID)
}

// mediaOut is one m= section of an SDP we write.
type mediaOut struct {
	media string
	port  uint16
	proto string
	fmts  []string
	attrs []string // a= values, in order
}

// marshal writes our SDP (RFC 4566 §5) with session version version:
// v, o, s, c, t, then each m= section with its a= lines, CRLF after every
// line.
func (l *Local) marshal(version uint64, media []mediaOut) []byte {
	ip := l.Addr.Addr().Unmap().WithZone("")
	typ := "IP4"
	if ip.Is6() {
		typ = "IP6"
	}
	b := make([]byte, 0, 320)
	b = fmt.Appendf(b, "v=0\r\no=hashcall %d %d IN %s %s\r\ns=hashcall\r\nc=IN %s %s\r\nt=0 0\r\n",
		l.SessionID, version, typ, ip, typ, ip)
	for _, m := range media {
		b = fmt.Appendf(b, "m=%s %d %s", m.media, m.port, m.proto)
		for _, f := range m.fmts {
			b = append(b, ' ')
			b = append(b, f...)
		}
		b = append(b, "\r\n"...)
		for _, a := range m.attrs {
			b = append(b, "a="...)
			b = append(b, a...)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// audioMedia returns an m=audio section: codecs in order, telephone-event on
// ev when haveEvent, a=ptime:20 and the direction.
func audioMedia(port uint16, proto string, codecs []Codec, ev uint8, haveEvent bool, dir string) mediaOut {
	md := mediaOut{media: "audio", port: port, proto: proto}
	for _, c := range codecs {
		md.fmts = append(md.fmts, strconv.Itoa(int(c.PayloadType)))
		md.attrs = append(md.attrs, fmt.Sprintf("rtpmap:%d %s/%d", c.PayloadType, c.Name, c.ClockRate))
	}
	if haveEvent {
		md.fmts = append(md.fmts, strconv.Itoa(int(ev)))
		md.attrs = append(md.attrs,
			fmt.Sprintf("rtpmap:%d telephone-event/%d", ev, codecs[0].ClockRate),
			fmt.Sprintf("fmtp:%d 0-16", ev))
	}
	md.attrs = append(md.attrs, "ptime:"+strconv.Itoa(int(FrameDuration/time.Millisecond)), dir)
	return md
}

// emit writes our SDP with media and applies RFC 3264 §8: when it differs
// from the last SDP produced under the same version, the version increases
// by one first.
func (l *Local) emit(media []mediaOut) []byte {
	if l.SessionID == 0 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		l.SessionID = uint64(binary.BigEndian.Uint32(b[:])&0x7fffffff | 1)
	}
	out := l.marshal(l.Version, media)
	if l.sent && l.Version == l.lastVer && !bytes.Equal(out, l.last) {
		l.Version++
		out = l.marshal(l.Version, media)
	}
	l.sent, l.last, l.lastVer, l.lastState = true, out, l.Version, l.state()
	return bytes.Clone(out)
}

// Offer returns our SDP offer (RFC 3264 §5): one m=audio stream on
// RTP/AVP with our codecs in order of preference and telephone-event, for
// example
//
//	v=0
//	o=hashcall 1234 0 IN IP4 192.0.2.1
//	s=hashcall
//	c=IN IP4 192.0.2.1
//	t=0 0
//	m=audio 20000 RTP/AVP 8 0 101
//	a=rtpmap:8 PCMA/8000
//	a=rtpmap:0 PCMU/8000
//	a=rtpmap:101 telephone-event/8000
//	a=fmtp:101 0-16
//	a=ptime:20
//	a=sendrecv
//
// It is about 250 bytes, so the INVITE stays well under the 1300 bytes a
// UDP request may have. An IPv6 address gives IN IP6.
func (l *Local) Offer() ([]byte, error) {
	codecs, ev, err := l.config()
	if err != nil {
		return nil, err
	}
	return l.emit([]mediaOut{audioMedia(l.Addr.Port(), "RTP/AVP", codecs, ev, true, SendRecv)}), nil
}

// Current returns our current SDP, to put in a response to a re-INVITE or
// UPDATE without an offer: the last SDP produced, byte for byte with the
// same o= version, when none of Addr, Codecs, EventPT and SessionID
// changed and Bump was not called since; otherwise a new offer with the
// version increased (RFC 3264 §8). Before any SDP was produced it is Offer.
func (l *Local) Current() ([]byte, error) {
	if l.sent && l.Version == l.lastVer && l.state() == l.lastState {
		return bytes.Clone(l.last), nil
	}
	return l.Offer()
}

// Bump increases the o= version for a change that the SDP's text does not
// show by itself. Changes of the text bump the version anyway.
func (l *Local) Bump() { l.Version++ }

// ParseAnswer reads the far end's answer to our Offer (RFC 3264 §7).
//
// The first m=audio line is our stream (an answer has exactly the offer's
// one m= line; further lines are ignored). We send the first format of the
// answer that is one of our codecs (by payload type for static types, by
// rtpmap name and rate for dynamic ones) and accept all of ours that it
// lists. Telephone-events are sent on the answer's payload type and
// received on the one we offered; an answer without telephone-event at the
// codec's clock rate gives HaveEvents false. The address is the media-level
// c= first, else the session-level one. A port of 0, a transport other than
// RTP/AVP, no codec in common, or an address of the other IP family than
// ours are errors naming the problem.
func (l *Local) ParseAnswer(answer []byte) (Negotiated, error) {
	d, err := ParseSDP(answer)
	if err != nil {
		return Negotiated{}, fmt.Errorf("media: answer: %w", err)
	}
	return l.Negotiate(d)
}

// Negotiate is [Local.ParseAnswer] for an answer already read by
// [ParseSDP], so that a reader of captures parses each body once and
// negotiates exactly as live: an answer with an [SDP.Err] is refused.
func (l *Local) Negotiate(d *SDP) (Negotiated, error) {
	if err := d.Err(); err != nil {
		return Negotiated{}, fmt.Errorf("media: answer: %w", err)
	}
	codecs, ev, err := l.config()
	if err != nil {
		return Negotiated{}, err
	}
	i := d.audio()
	if i < 0 || d.m[i].bad {
		return Negotiated{}, errors.New("media: answer has no m=audio stream")
	}
	m := d.m[i]
	if m.port == 0 {
		return Negotiated{}, errors.New("media: answer rejected the audio stream (m=audio port 0)")
	}
	if !rtpAVP(m.proto) {
		return Negotiated{}, fmt.Errorf("media: answer uses transport %s, offered RTP/AVP", m.proto)
	}
	fs := d.formats(i)
	var n Negotiated
	found := false
	for _, f := range fs {
		for _, c := range codecs {
			if f.matches(c) {
				if !found {
					n.Codec, found = c, true
					n.Codec.PayloadType = f.pt
				}
				if !slices.Contains(n.RecvCodecs, c) {
					n.RecvCodecs = append(n.RecvCodecs, c)
				}
			}
		}
	}
	if !found {
		return Negotiated{}, fmt.Errorf("media: answer has no codec in common with the offer (offered %s; answered %s)", codecNames(codecs), names(fs))
	}
	n.RecvEventPT = ev
	n.EventClockRate = n.Codec.ClockRate
	for _, f := range fs {
		if f.isEvent(n.EventClockRate) && !slices.ContainsFunc(n.RecvCodecs, func(c Codec) bool { return c.PayloadType == f.pt }) {
			n.SendEventPT, n.HaveEvents = f.pt, true
			break
		}
	}
	if err := l.peer(d, i, &n); err != nil {
		return Negotiated{}, fmt.Errorf("media: answer: %w", err)
	}
	return n, nil
}

// peer sets n's far end from media description i of d: its address
// (which our socket must reach), ptime, direction and hold.
func (l *Local) peer(d *SDP, i int, n *Negotiated) error {
	addr, err := d.address(i)
	if err != nil {
		return err
	}
	if err := l.sameFamily(addr); err != nil {
		return err
	}
	n.Remote = netip.AddrPortFrom(addr, uint16(d.m[i].port))
	n.Ptime = d.ptime(i)
	n.Direction = d.direction(i)
	n.Hold = n.Direction == SendOnly || n.Direction == Inactive || addr.IsUnspecified()
	return nil
}

// sameFamily checks that the far end's address is reachable from our socket.
func (l *Local) sameFamily(addr netip.Addr) error {
	if addr.IsUnspecified() {
		return nil
	}
	ours := l.Addr.Addr().Unmap()
	if ours.Is4() != addr.Is4() {
		return fmt.Errorf("media address %s is not of the IP family of ours (%s)", addr, ours)
	}
	return nil
}

// answerDirection is our direction for an offer's (RFC 3264 §6.1).
func answerDirection(offer string) string {
	switch offer {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// Answer answers the far end's offer (RFC 3264 §6), for the simulated phone
// and for re-INVITE and UPDATE offers during a call. The first m=audio
// stream on RTP/AVP with a codec of ours is accepted, with one codec — the
// offer's most preferred one we support (§6.1), so both directions use the
// same — and the offer's telephone-event payload type when it has one at
// the codec's clock rate. Every other m= line is rejected with port 0, as
// §6 requires the answer to have the offer's m= lines in the same order.
// The direction mirrors the offer's (sendonly → recvonly, recvonly →
// sendonly, inactive → inactive).
//
// The returned Negotiated describes the far end's side: its address, the
// codec and events on the offer's payload types, its direction. Answer
// fails, and the caller should reject the request with 488, when no stream
// can be accepted.
func (l *Local) Answer(offer []byte) ([]byte, Negotiated, error) {
	codecs, _, err := l.config()
	if err != nil {
		return nil, Negotiated{}, err
	}
	d, err := parseStrict(offer)
	if err != nil {
		return nil, Negotiated{}, fmt.Errorf("media: offer: %w", err)
	}
	var (
		n        Negotiated
		accepted = -1
		problem  error
		media    = make([]mediaOut, len(d.m))
	)
	for i, m := range d.m {
		if accepted < 0 && m.media == "audio" && m.port != 0 {
			nn, err := l.accept(d, i, codecs)
			if err == nil {
				n, accepted = nn, i
				media[i] = audioMedia(l.Addr.Port(), m.proto,
					[]Codec{n.Codec}, n.SendEventPT, n.HaveEvents, answerDirection(n.Direction))
				continue
			}
			if problem == nil {
				problem = err
			}
		}
		// A rejected stream keeps its media type, transport and (one of
		// its) formats, with port 0 (RFC 3264 §6).
		f := []string{"0"}
		if len(m.fmts) > 0 {
			f = m.fmts[:1]
		}
		media[i] = mediaOut{media: m.media, proto: m.proto, fmts: f}
	}
	if accepted < 0 {
		if problem == nil {
			problem = errors.New("offer has no m=audio stream")
		}
		return nil, Negotiated{}, fmt.Errorf("media: %w", problem)
	}
	return l.emit(media), n, nil
}

// accept negotiates offered media description i against our codecs.
func (l *Local) accept(d *SDP, i int, codecs []Codec) (Negotiated, error) {
	m := d.m[i]
	if !rtpAVP(m.proto) {
		return Negotiated{}, fmt.Errorf("offer uses transport %s for audio; only RTP/AVP is supported", m.proto)
	}
	fs := d.formats(i)
	var n Negotiated
	found := false
	for _, f := range fs {
		for _, c := range codecs {
			if !found && f.matches(c) {
				n.Codec, found = c, true
				n.Codec.PayloadType = f.pt
			}
		}
	}
	if !found {
		return Negotiated{}, fmt.Errorf("offer has no codec in common with ours (offered %s; supported %s)", names(fs), codecNames(codecs))
	}
	n.RecvCodecs = []Codec{n.Codec}
	n.EventClockRate = n.Codec.ClockRate
	for _, f := range fs {
		if f.isEvent(n.EventClockRate) && f.pt != n.Codec.PayloadType {
			n.SendEventPT, n.RecvEventPT, n.HaveEvents = f.pt, f.pt, true
			break
		}
	}
	if err := l.peer(d, i, &n); err != nil {
		return Negotiated{}, fmt.Errorf("offer: %w", err)
	}
	return n, nil
}
