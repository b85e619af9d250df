package media

import (
	"net/netip"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/pion/rtp"
	"github.com/zaf/g711"
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
	// Latch (config media.symmetric_latching) accepts the source of the
	// first valid packet, wherever it comes from, and then only that source:
	// for far ends behind NAT, whose packets do not come from the address in
	// their SDP. A packet from Remote itself always takes the latch over.
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
	// Source: from an address other than the expected (or latched) one.
	Source uint64
	// SSRC: from the right address with another SSRC than the first
	// accepted packet's.
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

// StreamStats counts what a [Stream] did.
type StreamStats struct {
	Received  uint64 // every packet given to Packet
	Audio     uint64 // audio packets fed to the in-band detector
	Events    uint64 // telephone-event packets given to the RFC 4733 receiver
	Info      uint64 // SIP INFO keys given to Info
	Concealed uint64 // silence frames fed in place of lost audio packets
	Presses   uint64 // key presses reported (start reports after combining)
	Dropped   Drops

	// Source is the source address packets are accepted from (the latched
	// one when latching), and SSRC the locked SSRC; both are zero until the
	// first packet is accepted.
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
//     accepted; with latching, the source of the first valid packet (RTP
//     version 2, a negotiated payload type, a usable payload) is latched and
//     only it is accepted afterwards, except that a valid packet from Remote
//     itself takes the latch over. Anyone who can reach the port could
//     otherwise forge a '#' (RFC 4961 symmetric RTP is why the far end's
//     source is a fair identity).
//   - SSRC (RFC 3550 §8): the first accepted packet fixes the SSRC; packets
//     of other SSRCs from the right source are dropped. The lock is only
//     released by Retarget (a re-INVITE or UPDATE moved the far end), never
//     by the stream itself: a blind attacker who can spoof the source must
//     still guess a 32-bit SSRC.
//   - Payload type: audio on a negotiated G.711 payload type is decoded into
//     the in-band [dtmf.Detector]; telephone-events on our offered payload
//     type go to the RFC 4733 [dtmf.Receiver] (RFC 4733 §2.5.2); anything
//     else is dropped.
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
// A Stream does not allocate per packet (beyond growing dst) and is not
// safe for concurrent use.
type Stream struct {
	cfg    StreamConfig
	remote netip.AddrPort
	law    [128]byte // by payload type: 'u', 'a' or 0 (not audio)

	det  dtmf.Detector
	rcv  *dtmf.Receiver
	comb dtmf.Combiner

	hdr rtp.Header
	raw []dtmf.Event

	source  netip.AddrPort
	sourced bool
	ssrc    uint32
	ssrcSet bool
	seq     uint16
	seqSet  bool

	stats StreamStats

	audio AudioSink
	pcm   [FrameSamples]int16
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
// change, and the source and SSRC are relearned when Remote changes.
func (s *Stream) configure(cfg StreamConfig) {
	if cfg.EventClockRate == 0 {
		cfg.EventClockRate = dtmf.DefaultClockRate
	}
	if len(cfg.Codecs) == 0 {
		cfg.Codecs = DefaultCodecs
	}
	old := s.cfg
	s.cfg = cfg
	s.law = [128]byte{}
	for _, c := range cfg.Codecs {
		s.law[c.PayloadType&0x7f] = c.law()
	}
	if s.rcv == nil || old.EventPT != cfg.EventPT || old.EventClockRate != cfg.EventClockRate {
		s.rcv = dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: cfg.EventPT, ClockRate: cfg.EventClockRate})
		if s.ssrcSet {
			s.rcv.LockSSRC(s.ssrc)
		}
	}
	if old.HaveEvents && !cfg.HaveEvents {
		s.comb.ForgetEvents() // in-band tones are presses again
	}
	if remote := unmap(cfg.Remote); remote != s.remote || old.Latch != cfg.Latch {
		s.remote = remote
		s.sourced, s.ssrcSet, s.seqSet = false, false, false
	}
}

// Update applies a new configuration after a re-INVITE or UPDATE: new
// codecs and event payload type take effect at once; a new Remote is
// Retarget. Presses in progress are kept unless the telephone-event payload
// type or rate changed.
func (s *Stream) Update(cfg StreamConfig) { s.configure(cfg) }

// Retarget accepts packets from remote from now on, the far end's new
// address after a re-INVITE or UPDATE, and learns the source (when
// latching) and the SSRC anew. A press in progress on the old SSRC ends by
// timeout.
func (s *Stream) Retarget(remote netip.AddrPort) {
	s.remote = unmap(remote)
	s.cfg.Remote = remote
	s.sourced, s.ssrcSet, s.seqSet = false, false, false
	s.comb.ForgetEvents() // another device may have no telephone-events
}

// Source returns the address packets are accepted from and whether it is
// known yet: Remote without latching, the latched source with it.
func (s *Stream) Source() (netip.AddrPort, bool) {
	if s.sourced {
		return s.source, true
	}
	return s.remote, !s.cfg.Latch
}

// Stats returns the stream's counters.
func (s *Stream) Stats() StreamStats {
	st := s.stats
	switch {
	case s.sourced:
		st.Source = s.source
	case !s.cfg.Latch && s.ssrcSet:
		st.Source = s.remote
	}
	st.SSRC = s.ssrc
	st.Receiver = s.rcv.Stats()
	return st
}

// Packet processes one received UDP datagram b from from, arriving at now
// on the caller's clock (which must not go backwards), and appends the key
// press reports it completes to dst. b is only read during the call.
func (s *Stream) Packet(dst []dtmf.Event, now time.Duration, from netip.AddrPort, b []byte) []dtmf.Event {
	s.stats.Received++
	from = unmap(from)

	// Source first, before parsing: a packet from a stranger costs nothing.
	relatch := false
	switch {
	case s.sourced && from == s.source, !s.cfg.Latch && from == s.remote:
	case s.cfg.Latch && (!s.sourced || from == s.remote):
		relatch = true // latch (or take the latch over) if the packet is valid
	default:
		s.stats.Dropped.Source++
		return dst
	}

	// RFC 3550 §5.1 header; pion's Unmarshal does not allocate (the payload
	// aliases b), and the cheap checks first spare it garbage.
	if len(b) < 12 || b[0]>>6 != 2 {
		s.stats.Dropped.NotRTP++
		return dst
	}
	if b[1] >= 192 && b[1] <= 223 {
		// RTCP multiplexed on the RTP port (RFC 5761 §4); not used.
		s.stats.Dropped.RTCP++
		return dst
	}
	h := &s.hdr
	n, err := h.Unmarshal(b)
	if err != nil || n > len(b) {
		s.stats.Dropped.NotRTP++
		return dst
	}
	payload := b[n:]
	if h.Padding {
		// RFC 3550 §5.1: the last octet counts the padding, itself included.
		if len(payload) == 0 || payload[len(payload)-1] == 0 || int(payload[len(payload)-1]) > len(payload) {
			s.stats.Dropped.NotRTP++
			return dst
		}
		payload = payload[:len(payload)-int(payload[len(payload)-1])]
	}
	law := s.law[h.PayloadType]
	event := law == 0 && s.cfg.HaveEvents && (h.PayloadType == s.cfg.EventPT || (s.cfg.PeerEventPT != 0 && h.PayloadType == s.cfg.PeerEventPT))
	if event {
		h.PayloadType = s.cfg.EventPT // the receiver knows one payload type
	}
	switch {
	case law == 0 && !event:
		s.stats.Dropped.PayloadType++
		return dst
	case law != 0 && len(payload) == 0:
		s.stats.Dropped.NotRTP++
		return dst
	case event && (len(payload) < dtmf.PayloadSize || len(payload)%dtmf.PayloadSize != 0) && relatch:
		// Never latch on a packet the receiver would reject.
		s.stats.Dropped.NotRTP++
		return dst
	}

	if relatch {
		if !s.sourced || s.source != from {
			s.source, s.sourced = from, true
			s.ssrcSet, s.seqSet = false, false
		}
	}
	if !s.ssrcSet {
		s.ssrc, s.ssrcSet = h.SSRC, true
		s.rcv.LockSSRC(h.SSRC)
	} else if h.SSRC != s.ssrc {
		s.stats.Dropped.SSRC++
		return dst
	}

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
			s.stats.Dropped.Old++
			s.raw = raw
			return s.combine(dst, raw)
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
	return s.combine(dst, raw)
}

// feed decodes G.711 into the in-band detector (and the audio sink).
func (s *Stream) feed(dst []dtmf.Event, law byte, b []byte) []dtmf.Event {
	if s.audio != nil {
		for rest := b; len(rest) > 0; {
			n := min(len(rest), len(s.pcm))
			for i, c := range rest[:n] {
				if law == 'a' {
					s.pcm[i] = g711.DecodeAlawFrame(c)
				} else {
					s.pcm[i] = g711.DecodeUlawFrame(c)
				}
			}
			s.audio.Audio(s.pcm[:n])
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
// press still in progress in-band or by RFC 4733 is reported as ended.
func (s *Stream) Flush(dst []dtmf.Event, now time.Duration) []dtmf.Event {
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
