package dtmf

import (
	"math"
	"time"

	"github.com/pion/rtp"
)

// Defaults of [ReceiverConfig] and [EncoderConfig].
const (
	// DefaultClockRate is the telephone-event clock rate when none was
	// negotiated: RFC 4733 events use 8000 Hz unless the rtpmap names
	// another rate (seen in the wild: 48000 with Opus).
	DefaultClockRate = 8000
	// DefaultTimeout ends a press for which no packet arrived this long: it
	// stands in for E packets that were all lost (R4) or never sent (R5).
	// It is ten times the 50 ms update interval RFC 4733 §2.5.1.2 suggests.
	DefaultTimeout = 500 * time.Millisecond
	// DefaultMinDuration is the shortest press reported, in event time
	// (ITU-T Q.24: 40 ms operate).
	DefaultMinDuration = 40 * time.Millisecond
	// MinRejectedVolume is the lowest volume field value the Receiver rejects:
	// 56–63 are tones below −55 dBm0 (RFC 4733 §2.3.4 reports power as
	// −volume dBm0; Q.24 says ≤ −55 dBm0 must never operate).
	MinRejectedVolume = 56
)

// maxSegment is the largest duration one segment can express (RFC 4733
// §2.5.1.3): a longer event continues in a new segment whose RTP timestamp is
// this much later.
const maxSegment = 0xFFFF

// lateWindowSeconds is how far behind the most recent press, in seconds of event
// time, a packet's timestamp may be and still be taken as a stale packet of an
// older press rather than a new one (for example after a relay re-based the
// timestamps backwards).
const lateWindowSeconds = 4

// ringSize is the number of recently completed presses remembered to drop
// their late packets and end retransmissions (R8).
const ringSize = 8

// ReceiverConfig configures a [Receiver]. The zero value of each field
// selects its default.
type ReceiverConfig struct {
	// PayloadType is the telephone-event payload type this side offered in
	// SDP (a=rtpmap:<pt> telephone-event/<rate>); packets of any other type
	// are dropped (R9).
	PayloadType uint8
	// ClockRate is the negotiated telephone-event rate; 0 means 8000.
	// Durations in packets are counted in units of this clock.
	ClockRate uint32
	// Timeout ends a press when no packet for it arrived this long on the
	// caller's clock; 0 means DefaultTimeout (500 ms).
	Timeout time.Duration
	// MinDuration is the shortest press reported, in event time (the
	// payload's duration field scaled by ClockRate); 0 means 40 ms.
	MinDuration time.Duration
}

// ReceiverStats counts what a [Receiver] did with the packets it was given.
// Each packet is counted in Packets and in at most one of the drop counters;
// the press counters count presses, not packets.
type ReceiverStats struct {
	Packets uint64 // every call of Packet

	WrongPayloadType uint64 // not the negotiated payload type (R9)
	BadPayload       uint64 // nil header, payload empty, short or not a multiple of 4 bytes (R13)
	ForeignSSRC      uint64 // SSRC other than the latched or locked one (R13)
	NonKey           uint64 // event code outside 0–15: flash (16) and non-DTMF events (R11)
	LowVolume        uint64 // volume field 56–63, below −55 dBm0 (R10)
	Late             uint64 // a packet of a completed press or older than the current one (R8)
	Duplicate        uint64 // carried nothing new: a repeat, a reordered older update or a repeated E packet

	Accepted uint64 // presses reported (one start report each)
	TooShort uint64 // presses that ended below MinDuration and were never reported (R12)
	NoEnd    uint64 // reported presses that ended without an E packet: timeout, Flush or a following press
}

// Receiver is the per-stream RFC 4733 telephone-event state machine. It turns
// a stream of event packets into key press reports ([Event] with Source
// [SourceRFC4733]): a start report as soon as a press has lasted MinDuration
// of event time, and an end report at its first E packet or when it times out.
//
// A press is identified by (SSRC, RTP timestamp, event code), the timestamp
// being the event's start (RFC 4733 §2.2.1, receiver procedures §2.5.2), never by the marker bit (§2.2.2), which may be
// lost or absent (R3). Rules and heuristics:
//
//   - Only the negotiated payload type is read (R9). The SSRC of the first
//     packet that passes every packet check (payload type, size, key event,
//     volume) is latched, unless [Receiver.LockSSRC] named one; packets of
//     other SSRCs are dropped and counted (R13).
//   - Event codes outside 0–15 are dropped (flash 16 and the non-DTMF events
//     of RFC 4733 §3 are not keys); 0–15 are reported as the keys they are, so
//     only event 11 is ever '#' (R11). Volume 56–63 is dropped (R10).
//   - Durations are counted as the largest duration field seen for the
//     current segment, so duplicates and reordered updates change nothing
//     (R1, R2), and sequence numbers are not used at all: their wrap cannot
//     matter. Timestamps are compared in serial arithmetic, so their wrap
//     cannot matter either.
//   - A press ends at its first E packet (§2.3.2). Later packets with its
//     timestamp and event — the retransmitted E packets of §2.5.1.4 (R1, R2)
//     and late updates (R8) — are recognised from a ring of the last eight
//     completed presses and dropped. A packet whose timestamp lies up to four
//     seconds of event time behind the most recent press is dropped as
//     stale rather than starting a press (the price: after a relay re-based
//     timestamps backwards between two presses, presses are dropped until
//     the timestamps pass the old ones, four seconds at most).
//   - A press also ends, without E, when no packet for it arrived for
//     Timeout (R4, R5): on the next call of Packet or Tick.
//   - A packet of the same event with another timestamp while the press is
//     still open (not ended, not timed out) continues the press, checked in
//     this order, when: (a) its timestamp is exactly 0xFFFF later and its
//     marker is clear: the next segment of a long event (§2.5.1.3, R7); (b)
//     its duration is at least the current segment's largest duration: the
//     duration carried on and only the timestamp changed, a relay re-based it
//     (R15); (c) its timestamp is later by at most the current duration plus
//     half of MinDuration and its marker is clear: a contiguous next segment
//     from a sender that starts segments where its last update ended (R7).
//     Since DTMF presses are separated by at least 40 ms of pause (Q.24), a
//     new press of the same key comes later than (c) allows. Packets with an
//     earlier segment's timestamp are dropped as late. Otherwise the open
//     press lost its E packets: it ends and a new press begins. The marker
//     bit never joins packets into a press; it only vetoes (a) and (c), since
//     it marks the start of a new event. Rule (b) prefers a relay's re-base
//     to a stale packet of an older press of the same key: at worst such a
//     packet shortens the open press, never adds one.
//   - A press whose final duration is below MinDuration is never reported at
//     all (R12): the start report is only sent once MinDuration is reached.
//
// Times in reports are on the caller's clock (the now passed with each
// packet): Start is the arrival time of the first packet of the press; End is
// Start plus the press's duration in event time (the largest duration field,
// summed over segments, scaled by the clock rate), whether the press ended
// by an E packet or by timeout. This End does not depend on the jitter of the
// E packet's arrival, and for a timed-out press it is the end of the last
// update received. LevelDBm0 is minus the volume field of the latest packet.
//
// A Receiver has fixed-size state and does not allocate: Packet and Tick only
// append to the caller's slice. It is not safe for concurrent use.
type Receiver struct {
	pt         uint8
	rate       uint64
	timeout    time.Duration
	minUnits   uint64
	contigTol  uint64
	lateWindow uint64

	ssrcSet bool
	ssrc    uint32

	cur press

	// hw is the current segment timestamp of the most recent press.
	hw    uint32
	hwSet bool

	ring     [ringSize]completed
	ringNext int

	stats ReceiverStats
}

// press is the state of the open press.
type press struct {
	active  bool
	started bool
	event   uint8
	key     Key
	volume  uint8
	ssrc    uint32
	firstTS uint32 // timestamp of the first segment seen
	prevTS  uint32 // timestamp of the segment before the current one
	ts      uint32 // timestamp of the current segment
	done    uint64 // units of the segments before the current one
	segMax  uint64 // largest duration field seen in the current segment
	total   uint64 // largest done+segMax seen: the press's duration in units
	start   time.Duration
	last    time.Duration // arrival of the latest packet of the press
}

// completed remembers a finished press: its timestamps span first…last.
type completed struct {
	valid       bool
	event       uint8
	ssrc        uint32
	first, last uint32
}

// NewReceiver returns a receiver for one RTP stream.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	rate := uint64(cfg.ClockRate)
	if rate == 0 {
		rate = DefaultClockRate
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	minDur := cfg.MinDuration
	if minDur <= 0 {
		minDur = DefaultMinDuration
	}
	minUnits := durationToUnits(minDur, rate)
	late := rate * lateWindowSeconds
	if late > math.MaxInt32 {
		late = math.MaxInt32
	}
	return &Receiver{
		pt:         cfg.PayloadType,
		rate:       rate,
		timeout:    timeout,
		minUnits:   minUnits,
		contigTol:  minUnits / 2,
		lateWindow: late,
	}
}

// LockSSRC makes the receiver accept only packets of ssrc, instead of
// latching the SSRC of the first valid packet. A press open on another SSRC
// receives no more packets and ends by timeout (or by the next press).
func (r *Receiver) LockSSRC(ssrc uint32) {
	r.ssrc = ssrc
	r.ssrcSet = true
}

// SSRC returns the SSRC the receiver accepts, and false while none has been
// latched or locked yet.
func (r *Receiver) SSRC() (uint32, bool) { return r.ssrc, r.ssrcSet }

// Stats returns the receiver's counters.
func (r *Receiver) Stats() ReceiverStats { return r.stats }

// Packet processes one RTP packet: h is its header and payload its payload
// (after any padding was removed, as rtp.Packet.Unmarshal does). now is the
// packet's arrival time on the caller's clock; it should not go backwards.
// Reports are appended to dst, which is returned: with enough capacity in dst
// Packet does not allocate. At most three reports are appended (the end of a
// timed-out or superseded press, and the start and end of the packet's press).
func (r *Receiver) Packet(dst []Event, now time.Duration, h *rtp.Header, payload []byte) []Event {
	r.stats.Packets++
	if h == nil {
		r.stats.BadPayload++
		return dst
	}
	dst = r.expire(dst, now)
	if h.PayloadType != r.pt {
		r.stats.WrongPayloadType++
		return dst
	}
	var p Payload
	if err := p.Unmarshal(payload); err != nil {
		r.stats.BadPayload++
		return dst
	}
	if r.ssrcSet && h.SSRC != r.ssrc {
		r.stats.ForeignSSRC++
		return dst
	}
	key, ok := KeyForEvent(p.Event)
	if !ok {
		r.stats.NonKey++
		return dst
	}
	if p.Volume >= MinRejectedVolume {
		r.stats.LowVolume++
		return dst
	}
	if !r.ssrcSet {
		r.ssrc, r.ssrcSet = h.SSRC, true
	}
	return r.handle(dst, now, h, p, key)
}

// Tick ends a press for which no packet arrived for the timeout (R4, R5) and
// appends its end report to dst. Call it periodically (every 20–100 ms) when
// no packets arrive; Packet does the same check by itself.
func (r *Receiver) Tick(dst []Event, now time.Duration) []Event {
	return r.expire(dst, now)
}

// Flush ends the open press, if any, as if it had timed out now: use it when
// the stream ends. A press below MinDuration is dropped as usual.
func (r *Receiver) Flush(dst []Event) []Event {
	if r.cur.active {
		dst = r.finish(dst, false)
	}
	return dst
}

func (r *Receiver) expire(dst []Event, now time.Duration) []Event {
	if r.cur.active && now-r.cur.last >= r.timeout {
		dst = r.finish(dst, false)
	}
	return dst
}

// handle classifies a valid packet against the open press and the recently
// completed ones.
func (r *Receiver) handle(dst []Event, now time.Duration, h *rtp.Header, p Payload, key Key) []Event {
	ts := h.Timestamp
	c := &r.cur
	if c.active && c.ssrc == h.SSRC {
		if p.Event == c.event && ts == c.ts {
			return r.update(dst, now, p, false)
		}
		if r.isCompleted(h.SSRC, ts, p.Event) {
			r.countLate(p)
			return dst
		}
		d := int32(ts - c.ts)
		if p.Event == c.event && c.earlierSegment(ts) {
			// A reordered update of one of this press's earlier segments.
			r.stats.Late++
			return dst
		}
		if p.Event == c.event {
			segment := false
			switch {
			case !h.Marker && d == maxSegment:
				// The next segment of a long event (RFC 4733 §2.5.1.3, R7).
				segment = true
			case uint64(p.Duration) >= c.segMax:
				// The duration carried on and only the timestamp changed:
				// a relay re-based the stream mid-press (R15).
				c.prevTS, c.ts = c.ts, ts
				r.hw = ts
				return r.update(dst, now, p, true)
			case !h.Marker && d > 0 && uint64(d) <= c.segMax+r.contigTol:
				// A contiguous next segment from a sender that starts it
				// where its last update ended rather than at +0xFFFF.
				segment = true
			}
			if segment {
				c.done += uint64(d)
				c.prevTS, c.ts = c.ts, ts
				c.segMax = 0
				r.hw = ts
				return r.update(dst, now, p, true)
			}
		}
		if d < 0 && uint64(-int64(d)) <= r.lateWindow {
			r.stats.Late++
			return dst
		}
		// A new press: the open one lost its E packets.
		dst = r.finish(dst, false)
	} else {
		if c.active {
			// Another SSRC after LockSSRC: the open press gets no more packets.
			dst = r.finish(dst, false)
		}
		if r.isCompleted(h.SSRC, ts, p.Event) {
			r.countLate(p)
			return dst
		}
		if r.hwSet {
			if d := int32(ts - r.hw); d < 0 && uint64(-int64(d)) <= r.lateWindow {
				r.stats.Late++
				return dst
			}
		}
	}
	*c = press{
		active:  true,
		event:   p.Event,
		key:     key,
		ssrc:    h.SSRC,
		firstTS: ts,
		prevTS:  ts,
		ts:      ts,
		start:   now,
	}
	r.hw, r.hwSet = ts, true
	return r.update(dst, now, p, true)
}

// countLate counts a packet of a completed press: a repeated E packet is a
// duplicate (§2.5.1.4), anything else a late packet (R8).
func (r *Receiver) countLate(p Payload) {
	if p.End {
		r.stats.Duplicate++
	} else {
		r.stats.Late++
	}
}

// update applies a packet of the open press's current segment; news is
// true for the first packet of a press or of a segment.
func (r *Receiver) update(dst []Event, now time.Duration, p Payload, news bool) []Event {
	c := &r.cur
	c.last = now
	c.volume = p.Volume
	if d := uint64(p.Duration); d > c.segMax {
		c.segMax = d
		news = true
	}
	if t := c.done + c.segMax; t > c.total {
		c.total = t
		news = true
	}
	if !news && !p.End {
		r.stats.Duplicate++
	}
	if !c.started && c.total >= r.minUnits {
		c.started = true
		r.stats.Accepted++
		dst = append(dst, r.report(false))
	}
	if p.End {
		dst = r.finish(dst, true)
	}
	return dst
}

// finish ends the open press: reports its end if it was reported, counts it
// as too short if not, and remembers it in the ring of completed presses.
func (r *Receiver) finish(dst []Event, byEnd bool) []Event {
	c := &r.cur
	if c.started {
		if !byEnd {
			r.stats.NoEnd++
		}
		dst = append(dst, r.report(true))
	} else {
		r.stats.TooShort++
	}
	r.ring[r.ringNext] = completed{valid: true, event: c.event, ssrc: c.ssrc, first: c.firstTS, last: c.ts}
	r.ringNext = (r.ringNext + 1) % ringSize
	c.active = false
	return dst
}

func (r *Receiver) report(ended bool) Event {
	c := &r.cur
	e := Event{
		Key:       c.key,
		Source:    SourceRFC4733,
		Ended:     ended,
		Start:     c.start,
		LevelDBm0: -float64(c.volume),
	}
	if ended {
		e.End = c.start + unitsToDuration(c.total, r.rate)
	}
	return e
}

// earlierSegment reports whether ts is the timestamp of one of the open
// press's earlier segments (or a re-based timestamp it had before).
func (c *press) earlierSegment(ts uint32) bool {
	if ts == c.ts {
		return false
	}
	if ts == c.firstTS || ts == c.prevTS {
		return true
	}
	return int32(c.ts-c.firstTS) > 0 && int32(ts-c.firstTS) > 0 && int32(c.ts-ts) > 0
}

// isCompleted reports whether (ssrc, ts, event) belongs to a recently
// completed press: its timestamp is one of the press's segment timestamps or
// between them.
func (r *Receiver) isCompleted(ssrc, ts uint32, event uint8) bool {
	for i := range r.ring {
		d := &r.ring[i]
		if !d.valid || d.event != event || d.ssrc != ssrc {
			continue
		}
		if ts == d.first || ts == d.last {
			return true
		}
		if int32(d.last-d.first) > 0 && int32(ts-d.first) > 0 && int32(d.last-ts) > 0 {
			return true
		}
	}
	return false
}

// durationToUnits converts d to units of a rate Hz clock, rounding up.
func durationToUnits(d time.Duration, rate uint64) uint64 {
	if d <= 0 {
		return 0
	}
	sec := uint64(d / time.Second)
	rem := uint64(d % time.Second)
	return sec*rate + (rem*rate+uint64(time.Second)-1)/uint64(time.Second)
}

// unitsToDuration converts u units of a rate Hz clock to a duration,
// rounding down.
func unitsToDuration(u, rate uint64) time.Duration {
	sec := u / rate
	rem := u % rate
	return time.Duration(sec)*time.Second + time.Duration(rem*uint64(time.Second)/rate)
}
