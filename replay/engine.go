package replay

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/pion/rtp"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/media"
)

const (
	// tickInterval is how often, in capture time, idle receive paths are
	// ticked for RFC 4733 timeouts, as a live session does when no packet
	// arrives for 50 ms.
	tickInterval = 50 * time.Millisecond
	// maxCandidates bounds the UDP flows held while deciding whether they
	// are RTP.
	maxCandidates = 4096
)

// receiver states: a receive path is set up from SDP before the call is
// answered (packets are early media, which a live call drops), live from
// the answer, and ended at the BYE or when the call failed.
type rxState uint8

const (
	rxEarly rxState = iota
	rxLive
	rxEnded
)

// receiver is one endpoint's receive path: the packets arriving at one
// address, as a live media session receives them on its socket.
type receiver struct {
	dst   netip.AddrPort
	call  *call // nil for a receiver found by heuristics
	side  int   // 0 caller, 1 callee
	cfg   media.StreamConfig
	state rxState
	live  *path

	heuristic bool
	seenPT    [128]bool // heuristics: dynamic payload types looked at
}

// path is one media.Stream fed with packets: a receiver's live path, or a
// shadow that replays packets the live path dropped, to show what they
// carried.
type path struct {
	st     *media.Stream
	live   bool
	reason string
	rx     *receiver
	stream *stream // for a shadow: its stream
	last   *stream // the stream of the last packet fed
	open   []openPress
	ended  bool
}

type openPress struct {
	s    *stream
	i    int
	skip bool // a report of a press another path recorded
}

// Shadow kinds: why the live path did not take a stream's packets.
const (
	shadowEarly = iota
	shadowSource
	shadowSSRC
	shadowPT
	shadowAfter
	shadowKinds
)

// Kinds of stream.
const (
	kindRTP    = "rtp"
	kindRTCP   = "rtcp"
	kindNotRTP = "not-rtp"
	kindSIP    = "sip"
)

type flowKey struct {
	src, dst netip.AddrPort
	ssrc     uint32
	kind     string
}

// stream accumulates one Stream.
type stream struct {
	out       Stream
	idx       int
	rx        *receiver
	seq       seqStats
	ptCount   [128]uint32
	first     time.Duration
	last      time.Duration
	shadows   [shadowKinds]*path
	haveAudio bool    // an audio packet was decoded, for concealment
	owner     []*path // the path that recorded each press
	closed    []bool  // whether each press's end was seen
}

// candidate is a UDP flow that may be RTP: its last packet is held until a
// following packet confirms it.
type candidate struct {
	held []byte
	at   time.Duration
	seq  uint16
	ts   uint32
}

type engine struct {
	opts Options
	hdr  rtp.Header // scratch for media.ParseRTP
	rep  *Report
	dec  decoder
	dg   datagram

	t0       time.Time
	started  bool
	now      time.Duration
	nextTick time.Duration
	links    []layers.LinkType

	unsupported int

	sip     sipState
	rx      map[netip.AddrPort]*receiver
	paths   []*path
	streams []*stream
	flows   map[flowKey]*stream
	cands   map[flowKey]*candidate
	evs     []dtmf.Event
	sevs    []dtmf.Event // shadow's scratch
}

func newEngine(opts Options) *engine {
	return &engine{
		opts:  opts,
		rep:   &Report{},
		rx:    make(map[netip.AddrPort]*receiver),
		flows: make(map[flowKey]*stream),
		cands: make(map[flowKey]*candidate),
		evs:   make([]dtmf.Event, 0, 16),
		sip:   newSIPState(),
	}
}

func (e *engine) warn(s string) { e.rep.Warnings = append(e.rep.Warnings, s) }

// frame processes one captured packet.
func (e *engine) frame(link layers.LinkType, data []byte, ts time.Time) {
	e.rep.Frames++
	if !e.started {
		e.t0, e.started = ts, true
		e.rep.Start, e.rep.End = ts, ts
	}
	if ts.After(e.rep.End) {
		e.rep.End = ts
	}
	// The receive path's clock must not go backwards; a capture merged
	// from several interfaces may.
	if now := ts.Sub(e.t0); now > e.now {
		e.now = now
	}
	if !slices.Contains(e.links, link) {
		e.links = append(e.links, link)
		e.rep.LinkTypes = append(e.rep.LinkTypes, linkName(link))
	}
	if !linkSupported(link) {
		e.unsupported++
		e.rep.Skipped++
		return
	}
	switch e.dec.decode(link, data, e.now, &e.dg) {
	case frameOther:
		e.rep.Skipped++
		return
	case frameTruncated:
		e.rep.Truncated++
		return
	case frameFragment:
		return
	}
	e.rep.Datagrams++
	e.tick()
	e.datagram(e.now, e.dg.src, e.dg.dst, e.dg.payload)
}

// tick lets idle paths time out RFC 4733 presses every tickInterval of
// capture time.
func (e *engine) tick() {
	if e.now < e.nextTick {
		return
	}
	e.nextTick = e.now + tickInterval
	live := e.paths[:0]
	for _, p := range e.paths {
		if p.ended {
			continue
		}
		live = append(live, p)
		e.evs = p.st.Tick(e.evs[:0], e.now)
		e.events(p, nil, e.evs)
	}
	clear(e.paths[len(live):])
	e.paths = live
}

// datagram dispatches one UDP datagram: SIP to the call tracker, packets to
// an address a receive path owns to it, anything else to the heuristics.
func (e *engine) datagram(now time.Duration, src, dst netip.AddrPort, b []byte) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if looksLikeSIP(b) {
		e.sipMessage(now, src, dst, b)
		return
	}
	if r := e.rx[dst]; r != nil {
		e.feed(r, now, src, dst, b)
		return
	}
	e.heuristic(now, src, dst, b)
}

// classify tells RTP, RTCP (RFC 5761 §4: payload types 64–95 with the
// marker bit) and anything else, and the SSRC of RTP and RTCP.
func classify(b []byte) (string, uint32) {
	switch {
	case len(b) < 12 || b[0]>>6 != 2:
		return kindNotRTP, 0
	case b[1] >= 192 && b[1] <= 223:
		return kindRTCP, binary.BigEndian.Uint32(b[4:8])
	}
	return kindRTP, binary.BigEndian.Uint32(b[8:12])
}

// stream returns the stream of a packet, creating it.
func (e *engine) stream(now time.Duration, src, dst netip.AddrPort, ssrc uint32, kind string, r *receiver) *stream {
	k := flowKey{src: src, dst: dst, ssrc: ssrc, kind: kind}
	if s := e.flows[k]; s != nil && s.rx == r {
		return s
	}
	s := &stream{idx: len(e.streams), rx: r, first: now}
	s.out = Stream{Src: src, Dst: dst, SSRC: ssrc, Kind: kind, Found: FoundHeuristic}
	if r != nil && r.call != nil {
		s.out.Found, s.out.CallID = FoundSIP, r.call.id
	}
	switch kind {
	case kindRTP:
		s.out.Name = fmt.Sprintf("%s->%s ssrc=%#08x", src, dst, ssrc)
	case kindRTCP:
		s.out.Name = fmt.Sprintf("%s->%s rtcp ssrc=%#08x", src, dst, ssrc)
	case kindSIP:
		s.out.Name = fmt.Sprintf("%s->%s sip", src, dst)
	default:
		s.out.Name = fmt.Sprintf("%s->%s not rtp", src, dst)
	}
	e.streams = append(e.streams, s)
	e.flows[k] = s
	return s
}

// feed gives one datagram to the receive path at its destination.
func (e *engine) feed(r *receiver, now time.Duration, src, dst netip.AddrPort, b []byte) {
	kind, ssrc := classify(b)
	s := e.stream(now, src, dst, ssrc, kind, r)
	if r.heuristic && kind == kindRTP {
		e.detectFormats(r, b)
	}
	e.count(s, now, kind, b)
	switch r.state {
	case rxEarly:
		s.out.Dropped.Early++
		if kind == kindRTP {
			e.shadow(s, shadowEarly, now, src, b)
		}
		return
	case rxEnded:
		s.out.Dropped.AfterEnd++
		if kind == kindRTP {
			e.shadow(s, shadowAfter, now, src, b)
		}
		return
	}
	p := r.live
	var drop media.Drop
	e.evs, drop = p.st.Packet(e.evs[:0], now, src, b)
	switch drop {
	case media.DropSource, media.DropSSRC:
		e.dropped(r, media.DroppedPacket{At: now, From: src, Reason: drop, B: b})
	default:
		s.out.Dropped.Add(drop, 1)
	}
	p.last = s
	e.events(p, s, e.evs)
	if drop == media.DropPayloadType && kind == kindRTP {
		if pl, d := media.ParseRTP(&e.hdr, b); d == media.DropNone && e.hdr.PayloadType >= 96 && looksLikeEvent(pl) {
			e.shadow(s, shadowPT, now, src, b)
		}
	}
}

// dropped counts a packet the live path of r dropped on the stream it
// belongs to, and shadows it when it was dropped for its source or SSRC.
// Those drops are known late for packets the stream held before a lock
// (media.Stream.OnDrop).
func (e *engine) dropped(r *receiver, d media.DroppedPacket) {
	_, ssrc := classify(d.B)
	s := e.stream(d.At, d.From, r.dst, ssrc, kindRTP, r)
	s.out.Dropped.Add(d.Reason, 1)
	switch d.Reason {
	case media.DropSource:
		e.shadow(s, shadowSource, d.At, d.From, d.B)
	case media.DropSSRC:
		e.shadow(s, shadowSSRC, d.At, d.From, d.B)
	}
}

// count updates a stream's packet counters.
func (e *engine) count(s *stream, now time.Duration, kind string, b []byte) {
	s.out.Packets++
	s.last = now
	if kind != kindRTP {
		return
	}
	pt := b[1] & 0x7f
	s.ptCount[pt]++
	cfg := &s.rx.cfg
	if cfg.HaveEvents && pt == cfg.EventPT {
		s.out.Events++
	}
	gap, fresh := s.seq.add(binary.BigEndian.Uint16(b[2:4]))
	if !e.opts.Audio || !fresh {
		return
	}
	codec, ok := cfg.AudioCodec(pt)
	if !ok || cfg.HaveEvents && pt == cfg.EventPT {
		return
	}
	payload, drop := media.ParseRTP(&e.hdr, b)
	if drop != media.DropNone {
		return
	}
	if gap >= 1 && gap <= 5 && s.haveAudio {
		for range gap * len(payload) {
			s.out.Audio = append(s.out.Audio, 0)
		}
	}
	s.haveAudio = true
	s.out.Audio = codec.AppendDecoded(s.out.Audio, payload)
}

// shadow replays a packet the live path did not take on a path of its own,
// so that a key press in it is reported as one a live call ignored.
func (e *engine) shadow(s *stream, kind int, now time.Duration, src netip.AddrPort, b []byte) {
	p := s.shadows[kind]
	if p == nil {
		cfg := s.rx.cfg
		cfg.Remote, cfg.Latch = src, false
		var reason string
		switch kind {
		case shadowEarly:
			reason = "early media: before the call was answered"
		case shadowAfter:
			reason = "after the call ended"
		case shadowSource:
			far := "address in its SDP " + s.rx.cfg.Remote.String()
			if a, ok := s.rx.live.st.Source(); ok && a.IsValid() && a != s.rx.cfg.Remote {
				far = "latched source " + a.String()
			}
			reason = fmt.Sprintf("from %s, not the far end's %s", src, far)
		case shadowSSRC:
			reason = fmt.Sprintf("SSRC %#08x, not the stream's %#08x", s.out.SSRC, s.rx.live.st.Stats().SSRC)
		case shadowPT:
			pt := b[1] & 0x7f
			if s.rx.cfg.HaveEvents {
				reason = fmt.Sprintf("telephone-event on payload type %d, negotiated %d", pt, s.rx.cfg.EventPT)
			} else {
				reason = fmt.Sprintf("telephone-event on payload type %d, not negotiated", pt)
			}
			cfg.EventPT, cfg.HaveEvents = pt, true
		}
		p = &path{st: media.NewStream(cfg), reason: reason, rx: s.rx, stream: s}
		s.shadows[kind] = p
		e.paths = append(e.paths, p)
	}
	// Its own scratch: shadow runs inside the live stream's Packet too
	// (OnDrop), while e.evs is in use.
	e.sevs, _ = p.st.Packet(e.sevs[:0], now, src, b)
	p.last = s
	e.events(p, s, e.sevs)
}

// events records the key press reports of path p; s is the stream of the
// packet that produced them (nil for ticks and flushes).
//
// One physical press can reach two paths of a stream: early media that goes
// on past the answer, or a press the live path reported whose last packets
// came after the BYE. A press overlapping (within the combiner's window)
// one of the same key already recorded from another path is that press: a
// shadow's report of it is dropped, and the live path's report takes a
// shadow's over.
func (e *engine) events(p *path, s *stream, evs []dtmf.Event) {
	for _, ev := range evs {
		if !ev.Ended {
			if s == nil {
				s = p.last
			}
			if s == nil {
				continue
			}
			press := Press{
				Key: ev.Key, Source: ev.Source, At: e.t0.Add(ev.Start), Offset: ev.Start,
				LevelDBm0: ev.LevelDBm0, Live: p.live, Reason: p.reason, Stream: s.idx,
			}
			if j := s.overlapping(ev.Key, ev.Start, p); j >= 0 {
				if !p.live || s.out.Presses[j].Live {
					p.open = append(p.open, openPress{s: s, i: j, skip: true})
					continue
				}
				s.out.Presses[j], s.owner[j], s.closed[j] = press, p, false
				p.open = append(p.open, openPress{s: s, i: j})
				continue
			}
			s.out.Presses = append(s.out.Presses, press)
			s.owner = append(s.owner, p)
			s.closed = append(s.closed, false)
			p.open = append(p.open, openPress{s: s, i: len(s.out.Presses) - 1})
			continue
		}
		match := -1
		for i := len(p.open) - 1; i >= 0; i-- {
			pr := &p.open[i].s.out.Presses[p.open[i].i]
			if pr.Key == ev.Key && (pr.Source == ev.Source || p.open[i].skip) {
				if match < 0 || pr.Offset == ev.Start {
					match = i
				}
			}
		}
		if match < 0 {
			continue
		}
		o := p.open[match]
		p.open = slices.Delete(p.open, match, match+1)
		if !o.skip && o.s.owner[o.i] == p {
			o.s.out.Presses[o.i].Duration = ev.End - ev.Start
			o.s.closed[o.i] = true
		}
	}
}

// overlapping returns the index of a press of key recorded by another path
// than p that is still open or ended less than the combiner's window
// before start, or −1.
func (s *stream) overlapping(key dtmf.Key, start time.Duration, p *path) int {
	for j := len(s.out.Presses) - 1; j >= 0; j-- {
		q := &s.out.Presses[j]
		if q.Key != key || s.owner[j] == p {
			continue
		}
		if !s.closed[j] || start <= q.Offset+q.Duration+dtmf.DefaultWindow {
			return j
		}
	}
	return -1
}

// flush ends a path at now: presses in progress are ended.
func (e *engine) flush(p *path) {
	if p == nil || p.ended {
		return
	}
	e.evs = p.st.Flush(e.evs[:0], e.now)
	e.events(p, nil, e.evs)
	p.ended = true
}

// activate starts a receiver's live path: the call was answered.
func (e *engine) activate(r *receiver) {
	if r.state != rxEarly {
		return
	}
	r.state = rxLive
	r.live = &path{st: media.NewStream(r.cfg), live: true, rx: r}
	// Drops of packets the stream held before a lock are known late
	// (media.Stream.OnDrop): each is counted on, and shadowed from, its
	// own stream when it comes.
	r.live.st.OnDrop(func(d media.DroppedPacket) { e.dropped(r, d) })
	e.paths = append(e.paths, r.live)
}

// end ends a receiver: the call ended, or its address was taken over.
func (e *engine) end(r *receiver) {
	if r == nil || r.state == rxEnded {
		return
	}
	e.flush(r.live)
	r.state = rxEnded
}

// heuristic looks at a datagram to an address no SDP named: a flow is taken
// for RTP once two packets of one SSRC follow each other in sequence.
func (e *engine) heuristic(now time.Duration, src, dst netip.AddrPort, b []byte) {
	if !rtpCandidate(src, dst, b) {
		return
	}
	ssrc := binary.BigEndian.Uint32(b[8:12])
	seq, ts := binary.BigEndian.Uint16(b[2:4]), binary.BigEndian.Uint32(b[4:8])
	k := flowKey{src: src, dst: dst, ssrc: ssrc, kind: kindRTP}
	c := e.cands[k]
	if c == nil {
		if len(e.cands) >= maxCandidates {
			clear(e.cands)
		}
		c = &candidate{}
		e.cands[k] = c
	} else if d, dt := seq-c.seq, ts-c.ts; d >= 1 && d <= 64 && dt < 10*8000 {
		delete(e.cands, k)
		r := e.rx[dst]
		if r == nil {
			r = e.heuristicReceiver(src, dst)
		}
		e.feed(r, c.at, src, dst, c.held)
		e.feed(r, now, src, dst, b)
		return
	}
	c.held = append(c.held[:0], b...)
	c.at, c.seq, c.ts = now, seq, ts
}

// rtpCandidate tells whether a datagram may be RTP: version 2, an audio or
// dynamic payload type, between unprivileged ports that are not SIP's or
// well-known discovery protocols'.
func rtpCandidate(src, dst netip.AddrPort, b []byte) bool {
	if len(b) < 12 || b[0]>>6 != 2 {
		return false
	}
	if pt := b[1] & 0x7f; pt > 34 && pt < 96 {
		return false
	}
	for _, p := range [2]uint16{src.Port(), dst.Port()} {
		switch p {
		case 1900, 3478, 3702, 5060, 5061, 5353, 5355:
			return false
		}
		if p < 1024 {
			return false
		}
	}
	return true
}

// heuristicReceiver sets up a receive path for a destination no SDP named:
// the first RTP source is the far end.
func (e *engine) heuristicReceiver(src, dst netip.AddrPort) *receiver {
	cfg := media.StreamConfig{Remote: src, Codecs: []media.Codec{media.PCMU, media.PCMA}}
	if e.opts.EventPT != 0 {
		cfg.EventPT, cfg.HaveEvents = e.opts.EventPT, true
	}
	r := &receiver{dst: dst, cfg: cfg, heuristic: true}
	e.rx[dst] = r
	e.activate(r)
	return r
}

// detectFormats works out dynamic payload types of a heuristic stream:
// telephone-events (unless Options.EventPT names them) and audio in
// Options.Codec.
func (e *engine) detectFormats(r *receiver, b []byte) {
	pt := b[1] & 0x7f
	if pt < 96 || r.seenPT[pt] || r.cfg.HaveEvents && pt == r.cfg.EventPT {
		return
	}
	r.seenPT[pt] = true
	payload, drop := media.ParseRTP(&e.hdr, b)
	if drop != media.DropNone {
		return
	}
	cfg := r.cfg
	switch {
	case looksLikeEvent(payload):
		if e.opts.EventPT != 0 || cfg.HaveEvents {
			return
		}
		cfg.EventPT, cfg.HaveEvents = pt, true
	case e.opts.Codec.Supported():
		c := e.opts.Codec
		c.PayloadType = pt
		cfg.Codecs = append(slices.Clone(cfg.Codecs), c)
	default:
		return
	}
	r.cfg = cfg
	if r.live != nil {
		r.live.st.Update(cfg)
	}
}

// looksLikeEvent tells whether an RTP payload may be RFC 4733 DTMF events:
// one to four 4-byte events of codes 0–16 with the reserved bit clear.
func looksLikeEvent(p []byte) bool {
	if len(p) < 4 || len(p) > 16 || len(p)%4 != 0 {
		return false
	}
	for i := 0; i < len(p); i += 4 {
		if p[i] > 16 || p[i+1]&0x40 != 0 {
			return false
		}
	}
	return true
}

// finish ends the replay and builds the report.
func (e *engine) finish() *Report {
	for _, p := range e.paths {
		e.flush(p)
	}
	e.dec.frag.finish()
	e.rep.Fragments = FragmentStats{Fragments: e.dec.frag.fragments, Reassembled: e.dec.frag.reassembled, Incomplete: e.dec.frag.incomplete}
	e.rep.Calls = e.sip.report()
	for _, c := range e.sip.order {
		if !c.answered && c.out.Status == 0 {
			e.warn(fmt.Sprintf("call %s: no final response to its INVITE in the capture; its media counts as early", c.id))
		}
	}
	rtp := 0
	for _, s := range e.streams {
		if s.out.Kind == kindRTP || len(s.out.Presses) > 0 {
			rtp++
		}
	}
	switch {
	case e.rep.Frames == 0:
		e.warn("the capture holds no packets")
	case rtp == 0:
		e.warn(fmt.Sprintf("no RTP stream found in %d UDP datagrams (SIP over TCP or TLS and SRTP are not read)", e.rep.Datagrams))
	}
	for _, s := range e.streams {
		out := s.out
		out.First, out.Last = e.t0.Add(s.first), e.t0.Add(s.last)
		out.Lost, out.Duplicated, out.Reordered = s.seq.lost(), s.seq.dup, s.seq.reordered
		var best uint32
		for pt, n := range s.ptCount {
			if n == 0 {
				continue
			}
			out.PayloadTypes = append(out.PayloadTypes, uint8(pt))
			if s.rx.cfg.HaveEvents && uint8(pt) == s.rx.cfg.EventPT {
				continue
			}
			if n > best {
				best = n
				out.Codec = codecName(&s.rx.cfg, uint8(pt))
			}
		}
		for i := range out.Presses {
			out.Presses[i].Accepted = out.Presses[i].Live && out.Presses[i].Key.Accepted()
		}
		e.rep.Streams = append(e.rep.Streams, out)
	}
	return e.rep
}

// codecName names the codec of payload type pt in cfg.
func codecName(cfg *media.StreamConfig, pt uint8) string {
	if c, ok := cfg.AudioCodec(pt); ok {
		return c.Name
	}
	return "PT " + strconv.Itoa(int(pt))
}

func itoa(n int) string { return strconv.Itoa(n) }
