package dtmf

import "time"

// DefaultWindow is the [Combiner]'s default merge window (contract row R14:
// the same press in-band and as RFC 4733, overlapping within 200 ms).
const DefaultWindow = 200 * time.Millisecond

// combinerSize is the number of presses a Combiner remembers.
const combinerSize = 16

// Combiner merges the reports of one call's sources — the in-band
// [Detector], the RFC 4733 [Receiver] and SIP INFO — so that one physical
// press is reported once, whichever source reports it first (R14).
//
// Rules:
//   - A start report of key K from source S is forwarded unless a press of K
//     from a different source overlaps it within Window: that press is still
//     open (not ended), or its interval [Start, End] comes within Window of
//     the new report's Start (of [Start, End] for a report that arrives
//     already ended). The new press then joins that press's group and is not
//     forwarded. A group holds at most one press per source: reports of the
//     same source are never merged, since every source already separates its
//     own presses, so a second press of S joins no group that has one of S.
//   - An end report is forwarded only when the press it ends was forwarded.
//   - An end report with no open press of its source and key, as SIP INFO
//     gives (Start == End), is a whole press: if it is forwarded, a start
//     report (Ended false, End zero) is forwarded before it, so that the
//     output is always start then end.
//   - A start report of K from S while S still has an open press of K closes
//     that press (with an end report at the new Start, if it was forwarded).
//   - Once the call has carried an RFC 4733 report, in-band presses are no
//     longer forwarded (an in-band press already forwarded still gets its
//     end report); [Combiner.Suppressed] counts them. A far end that sends
//     telephone-events is signalling its keys out of band (RFC 4733 §2.6
//     asks senders not to send the tones as well, but gateways such as
//     Asterisk leak them): in-band tones on such a stream are leaks of the
//     same presses, arriving an unknown time behind the events (often more
//     than the Window), broken up by drop-outs into several presses, and
//     echoes of our own prompt's talk-off. Merging them by time cannot be
//     made safe for codes, where a doubled digit is a wrong code; ignoring
//     them can, since every press of such a far end comes as events. The
//     first press may still arrive in-band first (audio ahead of events):
//     it is forwarded, and its events merge with it within the Window.
//
// All sources must report times on one clock (the call's timeline). The
// Combiner remembers the last sixteen presses in fixed-size state and does
// not allocate; Push only appends to the caller's slice. The zero value is
// ready to use. It is not safe for concurrent use.
type Combiner struct {
	// Window is how far apart two sources' reports of one press may be;
	// 0 means DefaultWindow (200 ms).
	Window time.Duration

	presses    [combinerSize]combined
	serial     uint64 // insertion counter: ages of presses
	groups     uint64 // group counter
	events     bool   // an RFC 4733 report was pushed
	suppressed uint64 // in-band presses not forwarded because of events
}

// ForgetEvents makes in-band presses count again until the next RFC 4733
// report: for a far end that changed (the media moved to another device,
// or telephone-events are no longer negotiated).
func (c *Combiner) ForgetEvents() { c.events = false }

// Suppressed returns the number of in-band presses not forwarded because
// the call carries telephone-events.
func (c *Combiner) Suppressed() uint64 { return c.suppressed }

// combined is one source's press as the Combiner saw it.
type combined struct {
	valid     bool
	ended     bool
	forwarded bool
	key       Key
	src       Source
	group     uint64
	age       uint64
	start     time.Duration
	end       time.Duration
}

// Reset forgets every press (for a new call); Window is kept.
func (c *Combiner) Reset() {
	c.presses = [combinerSize]combined{}
	c.serial, c.groups = 0, 0
	c.events, c.suppressed = false, 0
}

// Push takes one report from a source and appends to dst the reports to pass
// on (none, one or two), returning dst.
func (c *Combiner) Push(dst []Event, e Event) []Event {
	if e.Source == SourceRFC4733 {
		c.events = true
	}
	if c.events && e.Source == SourceInband {
		return c.inbandAfterEvents(dst, e)
	}
	if !e.Ended {
		if i := c.open(e.Key, e.Source); i >= 0 {
			p := &c.presses[i]
			p.ended, p.end = true, e.Start
			if p.forwarded {
				dst = append(dst, Event{Key: p.key, Source: p.src, Ended: true, Start: p.start, End: e.Start})
			}
		}
		return c.begin(dst, e)
	}
	i := c.open(e.Key, e.Source)
	if i < 0 {
		return c.begin(dst, e)
	}
	p := &c.presses[i]
	p.ended, p.end = true, e.End
	if p.forwarded {
		dst = append(dst, e)
	}
	return dst
}

// inbandAfterEvents takes an in-band report once the call has carried
// telephone-events: it only ends the in-band press still open.
func (c *Combiner) inbandAfterEvents(dst []Event, e Event) []Event {
	i := c.open(e.Key, e.Source)
	if i >= 0 {
		p := &c.presses[i]
		end := e.End
		if !e.Ended {
			end = e.Start
		}
		p.ended, p.end = true, end
		switch {
		case p.forwarded && e.Ended:
			dst = append(dst, e)
		case p.forwarded:
			dst = append(dst, Event{Key: p.key, Source: p.src, Ended: true, Start: p.start, End: end})
		}
	}
	if !e.Ended {
		c.suppressed++
	}
	return dst
}

// begin records a new press of e's source and forwards it unless it joins
// another source's overlapping press.
func (c *Combiner) begin(dst []Event, e Event) []Event {
	w := c.Window
	if w <= 0 {
		w = DefaultWindow
	}
	lo, hi := e.Start, e.Start
	if e.Ended && e.End > hi {
		hi = e.End
	}
	match := -1
	for i := range c.presses {
		p := &c.presses[i]
		if !p.valid || p.key != e.Key || p.src == e.Source {
			continue
		}
		if hi < p.start-w || (p.ended && lo > p.end+w) {
			continue
		}
		if c.groupHas(p.group, e.Source) {
			continue
		}
		if match < 0 || p.age > c.presses[match].age {
			match = i
		}
	}
	n := combined{valid: true, ended: e.Ended, key: e.Key, src: e.Source, start: e.Start, end: e.End}
	if match >= 0 {
		n.group = c.presses[match].group
	} else {
		c.groups++
		n.group = c.groups
		n.forwarded = true
		if e.Ended {
			s := e
			s.Ended, s.End, s.EndSample = false, 0, 0
			dst = append(dst, s, e)
		} else {
			dst = append(dst, e)
		}
	}
	c.serial++
	n.age = c.serial
	c.presses[c.slot()] = n
	return dst
}

// open returns the index of the newest open press of key from src, or −1.
func (c *Combiner) open(key Key, src Source) int {
	idx := -1
	for i := range c.presses {
		p := &c.presses[i]
		if p.valid && !p.ended && p.key == key && p.src == src && (idx < 0 || p.age > c.presses[idx].age) {
			idx = i
		}
	}
	return idx
}

// groupHas reports whether group already holds a press of src.
func (c *Combiner) groupHas(group uint64, src Source) bool {
	for i := range c.presses {
		p := &c.presses[i]
		if p.valid && p.group == group && p.src == src {
			return true
		}
	}
	return false
}

// slot returns where to store a new press: a free slot, else the oldest
// ended press, else the oldest press.
func (c *Combiner) slot() int {
	oldestEnded, oldest := -1, 0
	for i := range c.presses {
		p := &c.presses[i]
		if !p.valid {
			return i
		}
		if p.ended && (oldestEnded < 0 || p.age < c.presses[oldestEnded].age) {
			oldestEnded = i
		}
		if p.age < c.presses[oldest].age {
			oldest = i
		}
	}
	if oldestEnded >= 0 {
		return oldestEnded
	}
	return oldest
}
