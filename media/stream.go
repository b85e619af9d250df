package media

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/pion/rtp"
)

// Sequence number rules for audio (after RFC 3550 Appendix A.1).
const (
	// maxConcealed is the largest gap of lost packets that is filled with
	// silence before the next packet is fed to the in-band detector, so
	// that the detector's clock keeps pace with the sender's. A larger jump
	// is a sender restart or a long outage, not loss to conceal.
	maxConcealed = 5
	// maxMisorder is how far behind the highest sequence number a packet
	// may be and still be taken as a duplicate or reordered packet; further
	// back is a sender that restarted its sequence numbers.
	maxMisorder = 100
	// maxInfoDuration caps the duration a SIP INFO claims.
	maxInfoDuration = time.Second
)

// The lock onto the far end's stream (RFC 3550 §8: an SSRC identifies a
// stream; the first packet to arrive proves nothing, anyone who can reach
// the port, or spoof the far end's address with a raw socket, can send it).
const (
	// lockRun (N) is how many consecutive in-order packets of one SSRC
	// (and, when latching, of one source address) lock the stream onto
	// them. Until then packets are held, not decided, so a single forged
	// packet — even one that arrives before the phone's first, spoofing its
	// SDP address — never decides a key and never locks the phone out: the
	// phone's own packets reach N whatever else arrives. Why 3: a forger
	// racing the phone has to land three packets of one SSRC, in sequence,
	// before the phone's third (40 ms after its first) rather than one
	// packet anywhere in that window; and a larger N buys little (a forger
	// who can send three packets can send thirty: that case is the
	// takeover rule's) while it costs time: a press carried by the
	// phone's very first packets is decided only once the lock comes, at
	// most (N − 1) × 20 ms = 40 ms late. In a call the lock comes in the
	// first 60 ms after the answer, long before a key may count
	// (verify.min_key_delay), so the #-to-decision time is unchanged.
	lockRun = 3
	// takeoverQuiet is how long another SSRC (or, when latching, another
	// source) must keep arriving in sequence, with the locked one silent
	// all the while, to take the lock over: the phone that lost the lock
	// to a forger's burst, or a far end that changed its SSRC without a
	// re-INVITE. A live phone sends every 20 ms (trunks hang up silent
	// calls), so while it sends nobody takes its lock; ten packets' time.
	takeoverQuiet = 200 * time.Millisecond
	// maxHeld bounds the packets held per candidate: takeoverQuiet's worth
	// at 10 ms packets, with room to spare. Beyond it the oldest is dropped.
	maxHeld = 32
	// numCandidates is how many unlocked streams are tracked at once; a new
	// one replaces the one with the shortest run, so the phone's growing
	// run survives a forger's spray of single packets.
	numCandidates = 3
)

// silence holds one frame of G.711 silence for each law, for concealment.
var silence = func() (s struct{ ulaw, alaw [1024]byte }) {
	for i := range s.ulaw {
		s.ulaw[i], s.alaw[i] = PCMU.Silence(), PCMA.Silence()
	}
	return s
}()

// StreamConfig configures a [Stream]; [Negotiated.StreamConfig] builds it
// from an offer/answer exchange.
type StreamConfig struct {
	// Remote is the far end's RTP address from its SDP. Without Latch only
	// packets from exactly this address and port are accepted.
	Remote netip.AddrPort
	// Latch (config media.symmetric_latching) accepts packets from any
	// source until the lock: the first source to send lockRun consecutive
	// in-order packets of one SSRC is latched, and then only it (see
	// [Stream] for takeovers): for far ends behind NAT, whose packets do
	// not come from the address in their SDP. A stream from Remote itself
	// takes the latch over once it has lockRun packets in order.
	Latch bool
	// Codecs are the audio codecs accepted, by payload type; nil means
	// DefaultCodecs. Only G.711 is decoded; others are ignored.
	Codecs []Codec
	// EventPT is the payload type we receive telephone-events on (the one
	// we offered), used when HaveEvents.
	EventPT uint8
	// PeerEventPT is the far end's telephone-event payload type when it
	// differs from EventPT. RFC 4733 §7.1.1 says to send on the payload
	// type the receiver declared, but peers in the wild send on their own;
	// both were negotiated as telephone-event in the SDP, so both count
	// (anything else is still dropped, contract row R9). 0: none.
	PeerEventPT uint8
	// HaveEvents enables RFC 4733 telephone-events.
	HaveEvents bool
	// EventClockRate is the telephone-event clock rate; 0 means 8000.
	EventClockRate uint32
}

// Drops counts packets dropped, by reason.
type Drops struct {
	// NotRTP: too short, not version 2, a malformed header or padding,
	// or an empty audio payload.
	NotRTP uint64
	// Source: from an address other than the expected (or latched) one;
	// when latching, counted once a candidate source's held packets are
	// given up (another source locked, or its run broke).
	Source uint64
	// SSRC: from the right address with another SSRC than the locked one,
	// and packets held before the lock (or for a takeover) whose SSRC did
	// not win, counted when they are given up.
	SSRC uint64
	// PayloadType: neither a negotiated audio codec nor our
	// telephone-event payload type (R9).
	PayloadType uint64
	// Old: audio packets with a sequence number at or behind the highest
	// seen (duplicates and reordered packets).
	Old uint64
	// RTCP: RTCP packets multiplexed on the RTP port (RFC 5761), which
	// peers with rtcp-mux send; they carry no keys.
	RTCP uint64
	// Early: packets before the call was answered. Counted by [Session],
	// which drops them before any Stream exists; a Stream never counts them.
	Early uint64
}

// Total returns the number of packets dropped for any reason.
func (d Drops) Total() uint64 {
	return d.NotRTP + d.Source + d.SSRC + d.PayloadType + d.Old + d.RTCP + d.Early
}

// Drop is what [Stream.Packet] did with a packet it did not take: why it
// was dropped, one of the reasons [Drops] counts. DropNone means the packet
// was taken: processed, or held until the lock (a held packet that is
// given up later is reported then, by [Stream.OnDrop]).
type Drop uint8

// Drop reasons; see the fields of [Drops] of the same names.
const (
	DropNone Drop = iota
	DropNotRTP
	DropSource
	DropSSRC
	DropPayloadType
	DropOld
	DropRTCP
)

var dropNames = [...]string{"none", "not_rtp", "source", "ssrc", "payload_type", "old", "rtcp"}

// String returns the reason's name: "none", "not_rtp", "source", "ssrc",
// "payload_type", "old" or "rtcp".
func (d Drop) String() string {
	if int(d) < len(dropNames) {
		return dropNames[d]
	}
	return "drop(" + strconv.Itoa(int(d)) + ")"
}

// Add counts n packets dropped for reason d (none for DropNone).
func (c *Drops) Add(d Drop, n uint64) {
	fields := [...]*uint64{DropNotRTP: &c.NotRTP, DropSource: &c.Source, DropSSRC: &c.SSRC,
		DropPayloadType: &c.PayloadType, DropOld: &c.Old, DropRTCP: &c.RTCP}
	if int(d) < len(fields) && fields[d] != nil {
		*fields[d] += n
	}
}

// StreamStats counts what a [Stream] did.
type StreamStats struct {
	Received  uint64 // every packet given to Packet
	Audio     uint64 // audio packets fed to the in-band detector
	Events    uint64 // telephone-event packets given to the RFC 4733 receiver
	Info      uint64 // SIP INFO keys given to Info
	Concealed uint64 // silence frames fed in place of lost audio packets
	Presses   uint64 // key presses reported (start reports after combining)
	// Locks counts the times the stream locked onto a source and SSRC:
	// 1 in a plain call, one more for each takeover or Retarget.
	Locks   uint64
	Dropped Drops

	// Source is the source address packets are accepted from (the latched
	// one when latching), and SSRC the locked SSRC; both are zero until the
	// stream is locked.
	Source netip.AddrPort
	SSRC   uint32
	// Receiver is the RFC 4733 receiver's own counters.
	Receiver dtmf.ReceiverStats
}

// Stream is the receive path of one call's RTP, without I/O: the owner
// passes each packet with its source address and arrival time, and gets key
// press reports back. Rules, in order:
//
//   - Source: without latching, only packets from StreamConfig.Remote are
//     accepted; with latching, packets from any source are candidates until
//     the lock, and then only the locked source's (and candidates that may
//     take it over, below; none from elsewhere once the lock is on Remote
//     itself). Anyone who can reach the port could otherwise
//     forge a '#' (RFC 4961 symmetric RTP is why the far end's source is a
//     fair identity).
//   - Payload type: audio on a negotiated G.711 payload type is decoded into
//     the in-band [dtmf.Detector]; telephone-events on our offered payload
//     type go to the RFC 4733 [dtmf.Receiver] (RFC 4733 §2.5.2); anything
//     else is dropped.
//   - Lock (RFC 3550 §8): the stream locks onto a source and SSRC once
//     lockRun (3) consecutive in-order packets of that SSRC from that source
//     arrived. Packets before the lock are held per candidate (source,
//     SSRC), not decided; the winner's are then processed in arrival order
//     with their arrival times, so no genuine press is lost, and every other
//     candidate's are dropped (counted as SSRC, or Source when they came
//     from another address). So a single packet, forged or not, never
//     decides a key nor locks anyone out. After the lock, packets of other
//     SSRCs are candidates for a takeover: one whose run has lasted
//     takeoverQuiet (200 ms) while the locked SSRC sent nothing takes the
//     lock over (the continuous stream is preferred to a silent one); with
//     latching, a candidate from Remote itself takes the latch over from
//     another source as soon as it has lockRun packets in order. Retarget (a
//     re-INVITE or UPDATE moved the far end) unlocks.
//   - Sequence numbers (shared by audio and events of one SSRC, which
//     interleave as baresip sends them): audio at or behind the highest
//     number seen is a duplicate or reordered and dropped; a gap of 1–5
//     lost packets is filled with as many frames of silence before the
//     packet, so that the detector's timing stays honest.
//
// In-band reports are timed on the caller's clock: a report made while
// feeding a packet that arrived at now is placed at now − (samples fed −
// the report's sample offset) / 8000 s. The RFC 4733 receiver times its
// reports with now directly. Reports of both, and SIP INFO, go through one
// [dtmf.Combiner], so one press is reported once.
//
// A Stream does not allocate per packet (beyond growing dst, and the
// buffers of held packets the first time they are used) and is not safe
// for concurrent use.
type Stream struct {
	cfg    StreamConfig
	remote netip.AddrPort
	law    [128]byte // by payload type: 'u', 'a' or 0 (not audio)

	det  dtmf.Detector
	rcv  *dtmf.Receiver
	comb dtmf.Combiner

	hdr rtp.Header
	raw []dtmf.Event

	// The lock: source and SSRC, once locked.
	locked bool
	source netip.AddrPort
	ssrc   uint32
	seq    uint16
	seqSet bool

	// cands are the streams not (or not yet) locked onto; ncand of them
	// are in use.
	cands [numCandidates]candidate
	ncand int

	onDrop func(DroppedPacket)

	stats StreamStats

	audio AudioSink
	pcm   [FrameSamples]int16
}

// DroppedPacket is a packet held before a lock and dropped later, as
// [Stream.OnDrop] reports it: when its candidate's held packets are given
// up (for its source or SSRC), or when the lock processes them (a
// duplicate: DropOld).
type DroppedPacket struct {
	At     time.Duration  // its arrival
	From   netip.AddrPort // its source
	Reason Drop           // the Drops field it is counted in
	B      []byte         // the datagram, valid during the call only
}

// candidate is a stream of one source and SSRC that is not locked onto:
// its current run of in-order packets, held until it wins or breaks.
type candidate struct {
	used  bool
	from  netip.AddrPort
	ssrc  uint32
	seq   uint16        // highest sequence number of the run
	run   int           // in-order packets in the run
	first time.Duration // arrival of the run's first packet
	last  time.Duration // arrival of its latest packet
	held  [maxHeld]heldPacket
	nheld int
}

// heldPacket is a packet kept until its candidate wins or breaks.
type heldPacket struct {
	at time.Duration
	b  []byte // reused from one run to the next
}

// AudioSink receives a stream's decoded audio: 8 kHz linear samples in
// arrival order, lost packets (up to five in a row) concealed with
// silence. The slice is only valid during the call, which must not block.
type AudioSink interface {
	Audio(samples []int16)
}

// SetAudio makes the stream pass the audio it decodes to a (nil: none),
// for analysis such as answering-machine detection.
func (s *Stream) SetAudio(a AudioSink) { s.audio = a }

// NewStream returns the receive path for one call's RTP stream.
func NewStream(cfg StreamConfig) *Stream {
	s := &Stream{
		raw: make([]dtmf.Event, 0, 16),
		hdr: rtp.Header{CSRC: make([]uint32, 0, 15), Extensions: make([]rtp.Extension, 0, 8)},
	}
	s.configure(cfg)
	return s
}

// configure applies cfg; the receiver is replaced when its parameters
// change, and the lock is relearned when Remote changes.
func (s *Stream) configure(cfg StreamConfig) {
	if cfg.EventClockRate == 0 {
		cfg.EventClockRate = dtmf.DefaultClockRate
	}
	if len(cfg.Codecs) == 0 {
		cfg.Codecs = DefaultCodecs()
	}
	old := s.cfg
	s.cfg = cfg
	s.law = [128]byte{}
	for _, c := range cfg.Codecs {
		s.law[c.PayloadType&0x7f] = c.law()
	}
	if s.rcv == nil || old.EventPT != cfg.EventPT || old.EventClockRate != cfg.EventClockRate {
		s.rcv = dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: cfg.EventPT, ClockRate: cfg.EventClockRate})
		if s.locked {
			s.rcv.LockSSRC(s.ssrc)
		}
	}
	if old.HaveEvents && !cfg.HaveEvents {
		s.comb.ForgetEvents() // in-band tones are presses again
	}
	if remote := unmap(cfg.Remote); remote != s.remote || old.Latch != cfg.Latch {
		s.remote = remote
		s.unlock()
	}
}

// AudioCodec returns the codec cfg receives audio on payload type pt: the
// first of Codecs (or of DefaultCodecs when none) with that payload type
// that is G.711.
func (cfg *StreamConfig) AudioCodec(pt uint8) (Codec, bool) {
	codecs := cfg.Codecs
	if len(codecs) == 0 {
		codecs = DefaultCodecs()
	}
	for _, c := range codecs {
		if c.PayloadType == pt && c.Supported() {
			return c, true
		}
	}
	return Codec{}, false
}

// unlock forgets the lock and every candidate (their held packets are
// dropped and counted).
func (s *Stream) unlock() {
	s.discardAll()
	s.locked, s.seqSet = false, false
}

// Update applies a new configuration after a re-INVITE or UPDATE: new
// codecs and event payload type take effect at once; a new Remote is
// Retarget. Presses in progress are kept unless the telephone-event payload
// type or rate changed.
func (s *Stream) Update(cfg StreamConfig) { s.configure(cfg) }

// Retarget accepts packets from remote from now on, the far end's new
// address after a re-INVITE or UPDATE, and locks anew (source when
// latching, and SSRC). A press in progress on the old SSRC ends by timeout.
func (s *Stream) Retarget(remote netip.AddrPort) {
	s.remote = unmap(remote)
	s.cfg.Remote = remote
	s.unlock()
	s.comb.ForgetEvents() // another device may have no telephone-events
}

// Source returns the address packets are accepted from and whether it is
// known yet: Remote without latching, the latched source with it.
func (s *Stream) Source() (netip.AddrPort, bool) {
	if s.locked {
		return s.source, true
	}
	return s.remote, !s.cfg.Latch
}

// Lock returns the source and SSRC the stream is locked onto, and how many
// times it locked so far (StreamStats.Locks), without copying the stats.
func (s *Stream) Lock() (source netip.AddrPort, ssrc uint32, locks uint64) {
	if !s.locked {
		return netip.AddrPort{}, 0, s.stats.Locks
	}
	return s.source, s.ssrc, s.stats.Locks
}

// OnDrop sets f to be called with each packet held before a lock that is
// dropped later, when it is counted: a held packet's drop is only known
// when its candidate loses (or the lock processes it), during a later
// call of Packet or Flush. The drop of the packet a Packet call is given
// is its result instead. replay uses both to tell which packet a drop was.
// nil turns it off.
func (s *Stream) OnDrop(f func(DroppedPacket)) { s.onDrop = f }

// Stats returns the stream's counters.
func (s *Stream) Stats() StreamStats {
	st := s.stats
	if s.locked {
		st.Source, st.SSRC = s.source, s.ssrc
	}
	st.Receiver = s.rcv.Stats()
	return st
}

// Packet processes one received UDP datagram b from from, arriving at now
// on the caller's clock (which must not go backwards), appends the key
// press reports it completes to dst and says what happened to b: DropNone
// when it was taken (processed, or held until the lock), else why it was
// dropped (counted in Stats().Dropped as well). b is only read during the
// call (a packet held before the lock is copied).
func (s *Stream) Packet(dst []dtmf.Event, now time.Duration, from netip.AddrPort, b []byte) ([]dtmf.Event, Drop) {
	s.stats.Received++
	from = unmap(from)

	// Source first, before parsing: a packet from a stranger costs nothing.
	onLock := s.locked && from == s.source
	// Once locked onto Remote itself latching has nothing more to give:
	// only Remote is accepted, as without it.
	strict := !s.cfg.Latch || s.locked && s.source == s.remote
	if !onLock && strict && from != s.remote {
		return dst, s.dropped(DropSource)
	}
	payload, law, event, drop := s.parse(b)
	if drop != DropNone {
		return dst, s.dropped(drop)
	}
	if onLock && s.hdr.SSRC == s.ssrc {
		if s.ncand > 0 {
			s.interrupt()
		}
		dst, drop = s.process(dst, now, payload, law, event)
		return dst, s.dropped(drop)
	}
	if event && (len(payload) < dtmf.PayloadSize || len(payload)%dtmf.PayloadSize != 0) {
		// Never hold (nor lock on) a packet the receiver would reject.
		return dst, s.dropped(DropNotRTP)
	}
	return s.candidate(dst, now, from, b)
}

// dropped counts a drop of the packet being processed and returns it.
func (s *Stream) dropped(d Drop) Drop {
	s.stats.Dropped.Add(d, 1)
	return d
}

// parse checks and parses b into s.hdr and returns its payload, its G.711
// law (0 for an event) and whether it is a telephone-event, or why it is
// to be dropped (not counted yet).
func (s *Stream) parse(b []byte) (payload []byte, law byte, event bool, drop Drop) {
	h := &s.hdr
	payload, drop = ParseRTP(h, b)
	if drop != DropNone {
		return nil, 0, false, drop
	}
	law = s.law[h.PayloadType]
	event = law == 0 && s.cfg.HaveEvents && (h.PayloadType == s.cfg.EventPT || (s.cfg.PeerEventPT != 0 && h.PayloadType == s.cfg.PeerEventPT))
	if event {
		h.PayloadType = s.cfg.EventPT // the receiver knows one payload type
	}
	switch {
	case law == 0 && !event:
		return nil, 0, false, DropPayloadType
	case law != 0 && len(payload) == 0:
		return nil, 0, false, DropNotRTP
	}
	return payload, law, event, DropNone
}

// ParseRTP parses the RTP header of datagram b into h (RFC 3550 §5.1) and
// returns the payload, after the CSRC list and header extension and
// without padding, or why the datagram is not an RTP packet to take:
// DropRTCP for RTCP multiplexed on the RTP port (RFC 5761 §4), DropNotRTP
// for anything else that is not RTP. The payload aliases b; reusing h, it
// does not allocate (pion's Unmarshal; the cheap checks first spare it
// garbage).
func ParseRTP(h *rtp.Header, b []byte) ([]byte, Drop) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return nil, DropNotRTP
	}
	if b[1] >= 192 && b[1] <= 223 {
		return nil, DropRTCP
	}
	n, err := h.Unmarshal(b)
	if err != nil || n > len(b) {
		return nil, DropNotRTP
	}
	payload := b[n:]
	if h.Padding {
		// RFC 3550 §5.1: the last octet counts the padding, itself included.
		if len(payload) == 0 || payload[len(payload)-1] == 0 || int(payload[len(payload)-1]) > len(payload) {
			return nil, DropNotRTP
		}
		payload = payload[:len(payload)-int(payload[len(payload)-1])]
	}
	return payload, DropNone
}

// candidate holds a packet (parsed into s.hdr) that is not of the locked
// stream, in its candidate's run, and locks onto the candidate when the run
// wins.
func (s *Stream) candidate(dst []dtmf.Event, now time.Duration, from netip.AddrPort, b []byte) ([]dtmf.Event, Drop) {
	h := &s.hdr
	c := s.find(from, h.SSRC)
	if c.run > 0 {
		switch d := int16(h.SequenceNumber - c.seq); {
		case d > 0 && d <= maxConcealed+1: // in order, perhaps after a loss
			c.run++
			c.seq = h.SequenceNumber
		case d <= 0 && d > -maxMisorder:
			// A duplicate or reordered packet (SIPp repeats an E packet's
			// sequence number): kept with the run, not counted in it.
		default:
			// A jump: the count starts again. The packets held are kept:
			// one SSRC from one source is one sender (a forger cannot
			// guess a 32-bit SSRC), and some send events in a sequence
			// space of their own; the receive path sorts them out.
			c.run, c.seq = 1, h.SequenceNumber
		}
	} else {
		c.run, c.seq, c.first = 1, h.SequenceNumber, now
	}
	c.last = now
	if c.nheld == maxHeld {
		s.drop(c, 1)
		first := c.held[0]
		copy(c.held[:], c.held[1:])
		c.held[maxHeld-1] = first // keep its buffer
		c.nheld--
	}
	hp := &c.held[c.nheld]
	hp.at, hp.b = now, append(hp.b[:0], b...)
	c.nheld++
	if c.run < lockRun {
		return dst, DropNone
	}
	switch {
	case !s.locked:
	case s.cfg.Latch && c.from == s.remote && s.source != s.remote:
		// The SDP address is preferred over a latched other source.
	case now-c.first >= takeoverQuiet:
		// The locked stream has been silent throughout the run (its
		// packets interrupt runs): the continuous one is preferred.
	default:
		return dst, DropNone
	}
	return s.lock(dst, c)
}

// find returns the candidate of from and ssrc, or a fresh one in the slot
// of the one with the shortest run (the oldest of those), whose held
// packets are dropped.
func (s *Stream) find(from netip.AddrPort, ssrc uint32) *candidate {
	var pick *candidate
	for i := range s.cands {
		c := &s.cands[i]
		if !c.used {
			if pick == nil || pick.used {
				pick = c
			}
			continue
		}
		if c.ssrc == ssrc && c.from == from {
			return c
		}
		if pick == nil || pick.used && (c.run < pick.run || c.run == pick.run && c.last < pick.last) {
			pick = c
		}
	}
	if pick.used {
		s.discard(pick)
	}
	pick.used, pick.from, pick.ssrc, pick.run, pick.nheld = true, from, ssrc, 0, 0
	s.ncand++
	return pick
}

// drop counts n of c's held packets as dropped: SSRC when c shares the
// expected source's address (the locked one, or Remote), Source otherwise.
func (s *Stream) drop(c *candidate, n int) {
	expected := s.remote
	if s.locked {
		expected = s.source
	}
	reason := DropSource
	if c.from == expected || !s.cfg.Latch {
		reason = DropSSRC
	}
	s.stats.Dropped.Add(reason, uint64(n))
	if s.onDrop != nil {
		for i := range n {
			hp := &c.held[i]
			s.onDrop(DroppedPacket{At: hp.at, From: c.from, Reason: reason, B: hp.b})
		}
	}
}

// discard gives up candidate c: its held packets are dropped.
func (s *Stream) discard(c *candidate) {
	if !c.used {
		return
	}
	s.drop(c, c.nheld)
	c.used, c.run, c.nheld = false, 0, 0
	s.ncand--
}

func (s *Stream) discardAll() {
	for i := range s.cands {
		s.discard(&s.cands[i])
	}
}

// interrupt ends the runs of the candidates that need the locked stream to
// be silent to take over: a packet of it arrived. A candidate from Remote
// that may take the latch over from another source keeps its run.
func (s *Stream) interrupt() {
	for i := range s.cands {
		c := &s.cands[i]
		if c.used && !(s.cfg.Latch && c.from == s.remote && s.source != s.remote) {
			s.discard(c)
		}
	}
}

// lock locks the stream onto candidate c, drops every other candidate's
// packets and processes c's held ones in their order of arrival; the last
// of them is the packet being processed, whose drop is returned.
func (s *Stream) lock(dst []dtmf.Event, c *candidate) ([]dtmf.Event, Drop) {
	s.locked, s.source, s.ssrc, s.seqSet = true, c.from, c.ssrc, false
	s.rcv.LockSSRC(c.ssrc)
	s.stats.Locks++
	c.used = false
	s.ncand--
	for i := range s.cands {
		if o := &s.cands[i]; o != c {
			s.discard(o)
		}
	}
	n := c.nheld
	c.run, c.nheld = 0, 0
	var drop Drop
	for i := range n {
		hp := &c.held[i]
		payload, law, event, d := s.parse(hp.b)
		if d == DropNone {
			dst, d = s.process(dst, hp.at, payload, law, event)
		}
		drop = s.dropped(d)
		if d != DropNone && i < n-1 && s.onDrop != nil {
			s.onDrop(DroppedPacket{At: hp.at, From: c.from, Reason: d, B: hp.b})
		}
	}
	return dst, drop
}

// process runs a packet of the locked stream, parsed into s.hdr, through
// the sequence rules into the detector or the RFC 4733 receiver.
func (s *Stream) process(dst []dtmf.Event, now time.Duration, payload []byte, law byte, event bool) ([]dtmf.Event, Drop) {
	h := &s.hdr
	// Sequence numbers, in serial arithmetic (RFC 3550 Appendix A.1).
	gap := 0
	old := false
	if !s.seqSet {
		s.seq, s.seqSet = h.SequenceNumber, true
	} else {
		switch d := int16(h.SequenceNumber - s.seq); {
		case d > 0:
			gap = int(d) - 1
			s.seq = h.SequenceNumber
		case d > -maxMisorder:
			old = true
		default: // the sender restarted its sequence numbers
			s.seq = h.SequenceNumber
		}
	}

	raw := s.rcv.Tick(s.raw[:0], now)
	if event {
		// Duplicates and retransmitted E packets (RFC 4733 §2.5.1.4, some
		// with the same sequence number) are the receiver's business.
		s.stats.Events++
		raw = s.rcv.Packet(raw, now, h, payload)
	} else {
		if old {
			s.raw = raw
			return s.combine(dst, raw), DropOld
		}
		s.stats.Audio++
		mark := len(raw)
		if gap >= 1 && gap <= maxConcealed {
			fill := silence.ulaw[:min(len(payload), len(silence.ulaw))]
			if law == 'a' {
				fill = silence.alaw[:len(fill)]
			}
			for range gap {
				raw = s.feed(raw, law, fill)
			}
			s.stats.Concealed += uint64(gap)
		}
		raw = s.feed(raw, law, payload)
		s.place(raw[mark:], now)
	}
	s.raw = raw
	return s.combine(dst, raw), DropNone
}

// feed decodes G.711 into the in-band detector (and the audio sink).
func (s *Stream) feed(dst []dtmf.Event, law byte, b []byte) []dtmf.Event {
	if s.audio != nil {
		for rest := b; len(rest) > 0; {
			n := min(len(rest), len(s.pcm))
			s.audio.Audio(appendDecoded(law, s.pcm[:0], rest[:n]))
			rest = rest[n:]
		}
	}
	if law == 'a' {
		return s.det.FeedAlaw(dst, b)
	}
	return s.det.FeedUlaw(dst, b)
}

// place moves in-band reports from the detector's sample timeline onto the
// caller's clock: the last sample fed arrived at now.
func (s *Stream) place(evs []dtmf.Event, now time.Duration) {
	pos := s.det.Position()
	for i := range evs {
		e := &evs[i]
		e.Start = now - samplesToDuration(pos-e.StartSample)
		if e.Ended {
			e.End = now - samplesToDuration(pos-e.EndSample)
		}
	}
}

func samplesToDuration(n int64) time.Duration {
	return time.Duration(n) * time.Second / SampleRate
}

// combine passes raw reports through the combiner onto dst.
func (s *Stream) combine(dst []dtmf.Event, raw []dtmf.Event) []dtmf.Event {
	for _, e := range raw {
		n := len(dst)
		dst = s.comb.Push(dst, e)
		for _, f := range dst[n:] {
			if !f.Ended {
				s.stats.Presses++
			}
		}
	}
	return dst
}

// Tick ends an RFC 4733 press whose packets stopped for the receiver's
// timeout (RFC 4733 §2.5.2 leaves lost end packets to the receiver). Call it
// every 20–100 ms when no packets arrive; Packet does it by itself.
func (s *Stream) Tick(dst []dtmf.Event, now time.Duration) []dtmf.Event {
	s.raw = s.rcv.Tick(s.raw[:0], now)
	return s.combine(dst, s.raw)
}

// Flush ends the stream at now (the end of a capture or of the call): a
// press still in progress in-band or by RFC 4733 is reported as ended, and
// packets still held for a candidate are dropped.
func (s *Stream) Flush(dst []dtmf.Event, now time.Duration) []dtmf.Event {
	// Packets still held never locked anything: they are dropped.
	s.discardAll()
	raw := s.det.Flush(s.raw[:0])
	s.place(raw, now)
	raw = s.rcv.Flush(raw)
	s.raw = raw
	return s.combine(dst, raw)
}

// Info adds a key the far end sent by SIP INFO (application/dtmf-relay,
// Signal= and Duration=), received at now and lasting dur (capped at one
// second; 0 when unknown). It is reported as a whole press, start then end,
// with Source dtmf.SourceSIPInfo, unless the same press already arrived by
// RFC 4733 or in-band. An invalid key is ignored.
func (s *Stream) Info(dst []dtmf.Event, now time.Duration, key dtmf.Key, dur time.Duration) []dtmf.Event {
	if !key.Valid() {
		return dst
	}
	s.stats.Info++
	dur = max(0, min(dur, maxInfoDuration))
	s.raw = append(s.raw[:0], dtmf.Event{Key: key, Source: dtmf.SourceSIPInfo, Ended: true, Start: now, End: now + dur})
	return s.combine(dst, s.raw)
}

// unmap turns an IPv4-mapped IPv6 address (from a dual-stack socket) into
// IPv4, so that addresses compare equal however the socket reports them.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}
