package replay

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	sipgo "github.com/emiago/sipgo/sip"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/sip"
)

// call is one SIP dialog being followed.
type call struct {
	id        string
	callerTag string
	rx        [2]*receiver // receive paths of the caller (0) and the callee (1)
	offer     *offer       // the offer waiting for its answer
	early     *sdpInfo     // an answer in a provisional response
	answered  bool
	ended     bool
	seen      map[string]bool // requests and final responses seen (retransmissions)
	sipStream [2]*stream      // pseudo-streams for INFO presses without RTP
	diversion sip.Diversion   // what the INVITE's responses said of forwarding
	out       Call
}

// offer is an SDP offer and who made it.
type offer struct {
	sdp      *sdpInfo
	byCaller bool
	cseq     uint32
	method   string
}

type sipState struct {
	parser *sipgo.Parser
	calls  map[string]*call
	order  []*call
}

func newSIPState() sipState {
	return sipState{parser: sipgo.NewParser(), calls: map[string]*call{}}
}

func (s *sipState) report() []Call {
	out := make([]Call, 0, len(s.order))
	for _, c := range s.order {
		out = append(out, c.out)
	}
	return out
}

// looksLikeSIP tells a SIP message from RTP and other datagrams by its
// first line: "SIP/2.0 200 OK" or "INVITE sip:… SIP/2.0".
func looksLikeSIP(b []byte) bool {
	if len(b) < 12 || b[0] < 'A' || b[0] > 'Z' {
		return false
	}
	if bytes.HasPrefix(b, []byte("SIP/2.0 ")) {
		return true
	}
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line = b[:i]
	}
	return bytes.HasSuffix(bytes.TrimRight(line, "\r"), []byte(" SIP/2.0"))
}

// parseSIP parses one SIP message; sipgo's parser is fuzzed, but a capture
// is untrusted input, so a panic is taken as a parse error.
func (s *sipState) parse(b []byte) (msg sipgo.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = nil, fmt.Errorf("SIP parser: %v", p)
		}
	}()
	return s.parser.ParseSIP(b)
}

// sipMessage follows calls through their SIP messages: offers and answers
// set up the receive paths, the 200 OK makes them live (before it, as
// live, packets are early media), SIP INFO DTMF goes to the receiving side
// and the BYE ends the call.
func (e *engine) sipMessage(now time.Duration, src, dst netip.AddrPort, b []byte) {
	msg, err := e.sip.parse(b)
	if err != nil || msg == nil {
		return
	}
	e.rep.SIP++
	cid, cs := msg.CallID(), msg.CSeq()
	if cid == nil || cs == nil {
		return
	}
	id := cid.Value()
	c := e.sip.calls[id]
	switch m := msg.(type) {
	case *sipgo.Request:
		from, to := m.From(), m.To()
		if from == nil || to == nil {
			return
		}
		fromTag, _ := from.Params.Get("tag")
		_, toTagged := to.Params.Get("tag")
		if c == nil {
			if m.Method != sipgo.INVITE || toTagged {
				return // a request outside any call seen: not ours to follow
			}
			c = &call{id: id, callerTag: fromTag, seen: map[string]bool{}, out: Call{CallID: id}}
			e.sip.calls[id] = c
			e.sip.order = append(e.sip.order, c)
		}
		// A retransmission, or the same request again on the next leg
		// of a proxy (with another Via): within a dialog, each side's
		// requests have their own CSeq numbers (RFC 3261 §12.2.1.1).
		key := fmt.Sprintf("%s %d %s", m.Method, cs.SeqNo, fromTag)
		if c.seen[key] {
			return
		}
		c.seen[key] = true
		if c.ended && m.Method == sipgo.INVITE && !toTagged {
			// A new attempt with the same Call-ID, after a 401/407
			// challenge or another failure.
			c.ended, c.answered, c.offer, c.early = false, false, nil, nil
			c.rx = [2]*receiver{}
			c.out.Ended = time.Time{}
		}
		byCaller := fromTag == c.callerTag
		switch m.Method {
		case sipgo.INVITE, sipgo.UPDATE:
			if c.ended {
				return
			}
			if info := sdpOf(msg); info != nil {
				c.offer = &offer{sdp: info, byCaller: byCaller, cseq: cs.SeqNo, method: string(m.Method)}
				e.prepare(c, c.offer)
			} else if m.Method == sipgo.INVITE {
				c.offer = nil // an offer will come in the 2xx, its answer in the ACK
			}
		case sipgo.ACK:
			if info := sdpOf(msg); info != nil && c.offer != nil && c.offer.byCaller != byCaller {
				e.negotiate(c, c.offer, info)
				c.offer = nil
			}
		case sipgo.INFO:
			e.info(c, now, byCaller, src, dst, m)
		case sipgo.BYE:
			e.hangup(c, now)
		}
	case *sipgo.Response:
		if c == nil || (cs.MethodName != sipgo.INVITE && cs.MethodName != sipgo.UPDATE) {
			return
		}
		code := m.StatusCode
		if cs.MethodName == sipgo.INVITE && !c.answered {
			c.diversion.Add(m)
			c.out.Diverted, c.out.DiversionReasons = c.diversion.Diverted, c.diversion.Reasons
		}
		if code >= 200 {
			key := fmt.Sprintf("%d %d %s", code, cs.SeqNo, cs.MethodName)
			if c.seen[key] {
				return
			}
			c.seen[key] = true
		}
		info := sdpOf(msg)
		pending := c.offer != nil && c.offer.cseq == cs.SeqNo && string(cs.MethodName) == c.offer.method
		switch {
		case code < 200:
			if info != nil && pending && !c.answered {
				// An early answer (RFC 3261 §13.2.1): the media it sets
				// up stays early until the 200.
				c.early = info
				e.negotiate(c, c.offer, info)
			}
		case code < 300:
			initial := !c.answered && cs.MethodName == sipgo.INVITE
			switch {
			case info != nil && pending:
				e.negotiate(c, c.offer, info)
				c.offer = nil
			case info != nil && c.offer == nil && cs.MethodName == sipgo.INVITE:
				// A late offer: the answer comes in the ACK.
				c.offer = &offer{sdp: info, byCaller: false, cseq: cs.SeqNo, method: "INVITE"}
				e.prepare(c, c.offer)
			case info == nil && pending && c.early != nil:
				e.negotiate(c, c.offer, c.early)
				c.offer = nil
			}
			if initial && !c.ended {
				c.answered = true
				c.out.Status = code
				c.out.Answered = e.t0.Add(now)
				for _, r := range c.rx {
					if r != nil && r.call == c {
						e.activate(r)
					}
				}
			}
		default:
			if pending {
				c.offer = nil
			}
			if !c.answered && cs.MethodName == sipgo.INVITE {
				c.out.Status = code
				e.hangup(c, now)
			}
		}
	}
}

// sdpOf returns the SDP body of a message, if it has one.
func sdpOf(msg sipgo.Message) *sdpInfo {
	body := msg.Body()
	if len(body) == 0 {
		return nil
	}
	if ct := msg.GetHeaders("Content-Type"); len(ct) > 0 && !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct[0].Value())), "application/sdp") {
		return nil
	}
	info, _ := parseSDPInfo(body)
	return info
}

// prepare sets up the offerer's receive path from an offer alone, so that
// packets arriving before the answer are counted as early media.
func (e *engine) prepare(c *call, o *offer) {
	side := 1
	if o.byCaller {
		side = 0
	}
	cfg := media.StreamConfig{Codecs: codecsOrNone(o.sdp.Codecs), EventPT: o.sdp.EventPT, HaveEvents: o.sdp.HaveEvents, Latch: e.opts.Latch}
	if r := c.rx[side]; r != nil && r.dst == o.sdp.remote() {
		return // a re-offer to the same address: the answer updates it
	}
	e.setReceiver(c, side, o.sdp.remote(), cfg)
}

// negotiate applies an offer and its answer to both sides' receive paths.
// The offerer's path is configured as hashcall's media negotiates it live
// (media.Local.Negotiate with the offer's codecs and telephone-event
// payload type); the answerer's receives what the offer lists that the
// answer accepted, with telephone-events on the answer's payload type.
func (e *engine) negotiate(c *call, o *offer, answer *sdpInfo) {
	offCfg, ansCfg, problem := configs(o.sdp, answer, e.opts.Latch)
	if problem != "" {
		e.warn(fmt.Sprintf("call %s: %s", c.id, problem))
	}
	off, ans := 1, 0
	if o.byCaller {
		off, ans = 0, 1
	}
	if off == 0 {
		c.out.Codec = codecList(offCfg.Codecs)
		c.out.Events, c.out.EventPT = offCfg.HaveEvents, offCfg.EventPT
	} else {
		c.out.Codec = codecList(ansCfg.Codecs)
		c.out.Events, c.out.EventPT = ansCfg.HaveEvents, ansCfg.EventPT
	}
	e.setReceiver(c, off, o.sdp.remote(), offCfg)
	e.setReceiver(c, ans, answer.remote(), ansCfg)
}

// configs returns the receive configurations of the offerer and the
// answerer, and a problem when the answer could not be read as live.
func configs(off, ans *sdpInfo, latch bool) (offCfg, ansCfg media.StreamConfig, problem string) {
	ev := off.EventPT
	if !off.HaveEvents {
		ev = media.DefaultEventPT
	}
	local := media.Local{Addr: off.remote(), Codecs: off.Codecs, EventPT: ev}
	neg, err := local.Negotiate(ans.sdp)
	if err == nil && len(off.Codecs) > 0 {
		offCfg = neg.StreamConfig(latch)
		offCfg.HaveEvents = offCfg.HaveEvents && off.HaveEvents
		var recv []media.Codec
		for _, c := range neg.RecvCodecs {
			if a, ok := ans.hasCodec(c); ok {
				recv = append(recv, a)
			}
		}
		ansCfg = media.StreamConfig{Remote: off.remote(), Latch: latch, Codecs: codecsOrNone(recv), EventPT: neg.SendEventPT, HaveEvents: offCfg.HaveEvents}
		return offCfg, ansCfg, ""
	}
	if len(off.Codecs) == 0 {
		problem = fmt.Sprintf("the offer has no G.711 codec (formats %s): only telephone-events can be read", off.Formats)
	} else {
		problem = fmt.Sprintf("answer not accepted as live (%v); replayed with the codecs both sides list", err)
	}
	// What both list, without the live checks.
	var offCodecs, ansCodecs []media.Codec
	for _, c := range off.Codecs {
		if a, ok := ans.hasCodec(c); ok {
			offCodecs, ansCodecs = append(offCodecs, c), append(ansCodecs, a)
		}
	}
	events := off.HaveEvents && ans.HaveEvents
	offCfg = media.StreamConfig{Remote: ans.remote(), Latch: latch, Codecs: codecsOrNone(offCodecs), EventPT: off.EventPT, HaveEvents: events}
	ansCfg = media.StreamConfig{Remote: off.remote(), Latch: latch, Codecs: codecsOrNone(ansCodecs), EventPT: ans.EventPT, HaveEvents: events}
	return offCfg, ansCfg, problem
}

// noCodec stands for "no audio codec": an empty list means media's defaults.
var noCodec = []media.Codec{{Name: "none", PayloadType: 127, ClockRate: 8000}}

func codecsOrNone(cs []media.Codec) []media.Codec {
	if len(cs) == 0 {
		return noCodec
	}
	return cs
}

func codecList(cs []media.Codec) string {
	var names []string
	for _, c := range cs {
		if c.Supported() && !slices.Contains(names, c.Name) {
			names = append(names, c.Name)
		}
	}
	return strings.Join(names, ",")
}

// setReceiver gives side of call c a receive path at dst with cfg: the
// path it has is updated when dst is the same (a re-INVITE keeps the
// stream, as live), otherwise replaced.
func (e *engine) setReceiver(c *call, side int, dst netip.AddrPort, cfg media.StreamConfig) {
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if r := c.rx[side]; r != nil && r.dst == dst && r.state != rxEnded {
		r.cfg = cfg
		if r.live != nil {
			r.live.st.Update(cfg)
		}
		return
	}
	if r := c.rx[side]; r != nil {
		e.end(r)
	}
	if old := e.rx[dst]; old != nil {
		e.end(old) // the port was another call's (or a heuristic stream's)
	}
	r := &receiver{dst: dst, call: c, side: side, cfg: cfg}
	c.rx[side] = r
	e.rx[dst] = r
	if c.answered && !c.ended {
		e.activate(r)
	}
}

// hangup ends a call at now.
func (e *engine) hangup(c *call, now time.Duration) {
	if c.ended {
		return
	}
	c.ended = true
	c.out.Ended = e.t0.Add(now)
	for _, r := range c.rx {
		e.end(r)
	}
}

// info delivers a SIP INFO DTMF request to the receiving side's path, as a
// live call's media session takes it.
func (e *engine) info(c *call, now time.Duration, byCaller bool, src, dst netip.AddrPort, m *sipgo.Request) {
	ct := ""
	if h := m.ContentType(); h != nil {
		ct = h.Value()
	}
	key, d, err := sip.ParseInfo(ct, m.Body())
	if err != nil {
		return
	}
	c.out.Info++
	side := 0
	if byCaller {
		side = 1
	}
	r := c.rx[side]
	var p *path
	reason := ""
	switch {
	case r == nil:
		reason = "SIP INFO in a call without a media stream"
	case r.state == rxEarly:
		reason = "SIP INFO before the call was answered"
	case r.state == rxEnded:
		reason = "SIP INFO after the call ended"
	default:
		p = r.live
	}
	// The stream to report it with: the RTP stream the path accepts, or a
	// pseudo-stream of the SIP messages.
	var s *stream
	if p != nil {
		st := p.st.Stats()
		s = e.flows[flowKey{src: st.Source, dst: r.dst, ssrc: st.SSRC, kind: kindRTP}]
		if s != nil && s.rx != r {
			s = nil
		}
	}
	if s == nil {
		s = c.sipStream[side]
		if s == nil {
			s = e.stream(now, src, dst, 0, kindSIP, r)
			s.rx = &receiver{call: c}
			s.out.Found, s.out.CallID = FoundSIP, c.id
			c.sipStream[side] = s
		}
		s.out.Packets++
		s.last = now
	}
	if p == nil {
		s.out.Presses = append(s.out.Presses, Press{
			Key: key, Source: dtmf.SourceSIPInfo, At: e.t0.Add(now), Offset: now,
			Duration: max(0, min(d, time.Second)), Reason: reason, Stream: s.idx,
		})
		s.owner, s.closed = append(s.owner, nil), append(s.closed, true)
		return
	}
	e.evs = p.st.Info(e.evs[:0], now, key, d)
	e.events(p, s, e.evs)
}
