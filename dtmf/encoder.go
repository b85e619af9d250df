package dtmf

import (
	"fmt"
	"io"
	"time"

	"github.com/pion/rtp"
)

// Defaults of [EncoderConfig].
const (
	// DefaultPayloadType is the telephone-event payload type most often
	// seen in SDP (a=rtpmap:101 telephone-event/8000).
	DefaultPayloadType = 101
	// DefaultVolume is the volume field sent: −10 dBm0 (RFC 4733 §2.3.4).
	DefaultVolume = 10
	// DefaultInterval is the update interval RFC 4733 §2.5.1.2 suggests.
	DefaultInterval = 50 * time.Millisecond
	// DefaultEndPackets is how many times the final packet is sent
	// (RFC 4733 §2.5.1.4: a total of three times).
	DefaultEndPackets = 3
)

// EncoderConfig configures an [Encoder]. The zero value of each field selects
// its default.
type EncoderConfig struct {
	// PayloadType is the telephone-event payload type; 0 means 101.
	PayloadType uint8
	// ClockRate is the telephone-event clock rate; 0 means 8000.
	ClockRate uint32
	// SSRC is the stream's synchronisation source.
	SSRC uint32
	// Sequence is the sequence number of the first packet.
	Sequence uint16
	// Timestamp is the RTP timestamp of the first press.
	Timestamp uint32
	// Volume is the volume field, the tone's level in −dBm0 (RFC 4733
	// §2.3.4): 0 means 10 (−10 dBm0), a negative value sends 0 (0 dBm0) and
	// values above 63 send 63.
	Volume int
	// Interval is the time between updates; 0 means 50 ms (RFC 4733
	// §2.5.1.2). Many phones use 20 ms, the audio packet time.
	Interval time.Duration
	// EndPackets is how many times the final (E) packet is sent; 0 means 3
	// (RFC 4733 §2.5.1.4).
	EndPackets int
	// EndSameSequence makes the retransmitted E packets repeat the first E
	// packet's sequence number, as SIPp's captures do; by default each packet
	// gets the next sequence number, as Asterisk and baresip send them.
	EndSameSequence bool
	// NoMarker leaves the marker bit clear on the first packet of a press
	// (RFC 4733 §2.2.2 says to set it), as some gateways do.
	NoMarker bool
}

// Packet is one RTP telephone-event packet written by an [Encoder].
type Packet struct {
	Header  rtp.Header
	Payload Payload
	// Offset is the packet's send time relative to the start of the press.
	Offset time.Duration
}

// MarshalSize returns the size of the encoded packet: RTP header and payload.
func (p *Packet) MarshalSize() int { return p.Header.MarshalSize() + p.Payload.MarshalSize() }

// MarshalTo writes the RTP header and the telephone-event payload into buf
// and returns the number of bytes written.
func (p *Packet) MarshalTo(buf []byte) (int, error) {
	if len(buf) < p.MarshalSize() {
		return 0, fmt.Errorf("dtmf: marshal packet of %d bytes into %d: %w", p.MarshalSize(), len(buf), io.ErrShortBuffer)
	}
	n, err := p.Header.MarshalTo(buf)
	if err != nil {
		return 0, fmt.Errorf("dtmf: marshal rtp header: %w", err)
	}
	m, err := p.Payload.MarshalTo(buf[n:])
	if err != nil {
		return 0, err
	}
	return n + m, nil
}

// Encoder writes the RFC 4733 packet sequences of key presses on one RTP
// stream, for tests and simulated phones. Each press is sent as RFC 4733
// §2.5.1 describes: the first packet carries the marker bit (§2.2.2) and the
// press's RTP timestamp (§2.2.1), updates follow every Interval with the
// duration so far (§2.5.1.2), and the final packet with the E bit is sent
// EndPackets times, Interval apart (§2.5.1.4). An event longer than 0xFFFF
// units is split into segments (§2.5.1.3): the last packet of a segment
// carries duration 0xFFFF without E, and the next segment continues with the
// timestamp 0xFFFF later and its durations counted from there.
//
// After a press the timestamp clock stands at the end of the press: the next
// press starts there unless [Encoder.Skip] advances it for a pause. Sequence
// numbers continue from packet to packet and press to press.
type Encoder struct {
	cfg      EncoderConfig
	rate     uint64
	interval uint64 // units
	volume   uint8
	ends     int
	seq      uint16
	ts       uint32
}

// NewEncoder returns an encoder for one RTP stream.
func NewEncoder(cfg EncoderConfig) *Encoder {
	if cfg.PayloadType == 0 {
		cfg.PayloadType = DefaultPayloadType
	}
	if cfg.ClockRate == 0 {
		cfg.ClockRate = DefaultClockRate
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.EndPackets <= 0 {
		cfg.EndPackets = DefaultEndPackets
	}
	vol := cfg.Volume
	switch {
	case vol == 0:
		vol = DefaultVolume
	case vol < 0:
		vol = 0
	case vol > MaxVolume:
		vol = MaxVolume
	}
	rate := uint64(cfg.ClockRate)
	iu := durationToUnits(cfg.Interval, rate)
	if iu == 0 {
		iu = 1
	}
	return &Encoder{
		cfg:      cfg,
		rate:     rate,
		interval: iu,
		volume:   uint8(vol),
		ends:     cfg.EndPackets,
		seq:      cfg.Sequence,
		ts:       cfg.Timestamp,
	}
}

// Sequence returns the sequence number the next packet will carry.
func (e *Encoder) Sequence() uint16 { return e.seq }

// Timestamp returns the RTP timestamp the next press will carry.
func (e *Encoder) Timestamp() uint32 { return e.ts }

// Skip advances the timestamp clock by d, a pause between presses.
func (e *Encoder) Skip(d time.Duration) {
	e.ts += uint32(durationToUnits(d, e.rate))
}

// Press appends the packets of one press of key lasting duration (event
// time, rounded up to whole clock units) to dst. An invalid key appends
// nothing.
func (e *Encoder) Press(dst []Packet, key Key, duration time.Duration) []Packet {
	code, ok := key.EventCode()
	if !ok {
		return dst
	}
	return e.PressEvent(dst, code, duration)
}

// PressEvent is [Encoder.Press] for any RFC 4733 event code, such as 16
// (flash) or codes that are not DTMF.
func (e *Encoder) PressEvent(dst []Packet, event uint8, duration time.Duration) []Packet {
	total := durationToUnits(duration, e.rate)
	ts := e.ts
	first := true
	emit := func(dur uint64, end bool, at uint64, sameSeq bool) {
		if sameSeq {
			e.seq--
		}
		dst = append(dst, Packet{
			Header: rtp.Header{
				Version:        2,
				Marker:         first && !e.cfg.NoMarker,
				PayloadType:    e.cfg.PayloadType,
				SequenceNumber: e.seq,
				Timestamp:      ts,
				SSRC:           e.cfg.SSRC,
			},
			Payload: Payload{Event: event, End: end, Volume: e.volume, Duration: uint16(dur)},
			Offset:  unitsToDuration(at, e.rate),
		})
		e.seq++
		first = false
	}
	var t, segStart uint64
	for {
		segEnd := segStart + maxSegment
		if total <= segEnd {
			for ; t < total; t += e.interval {
				emit(t-segStart, false, t, false)
			}
			for k := 0; k < e.ends; k++ {
				emit(total-segStart, true, total+uint64(k)*e.interval, k > 0 && e.cfg.EndSameSequence)
			}
			break
		}
		for ; t < segEnd; t += e.interval {
			emit(t-segStart, false, t, false)
		}
		// Last packet of the segment: the maximum duration, no E bit.
		emit(maxSegment, false, segEnd, false)
		segStart = segEnd
		ts += maxSegment
	}
	e.ts += uint32(total)
	return dst
}
