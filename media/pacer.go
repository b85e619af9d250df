package media

import (
	"math"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// The pacers send the RTP of every started Session: a few goroutines
// (pacersPerCore per core, runtime.GOMAXPROCS) instead of one goroutine and
// one timer per call. Each pacer owns a timing wheel of 1 ms buckets over the 20 ms
// packet period; a session gets a pacer and a bucket (its phase) when it
// starts, the least loaded one, so that 2,000 calls are spread at about a
// hundred packets per millisecond instead of all at once. A session's slot
// k is due at an absolute time, base + k·20 ms on the pacer's clock, so the
// schedule never drifts however late a wake-up is.
//
// A pacer that falls behind (the process stalled, the machine is
// overloaded) serves the missed milliseconds in order as soon as it runs:
// every session's due packets leave one after another with continuous
// sequence numbers and timestamps, and each is counted with how late it
// left. Only a stall longer than maxBehind skips slots (their timestamps
// are left out, RFC 3550 §5.1 allows the gap): packets that late are past
// any jitter buffer's window and would only flood the far end.
//
// Sessions on the same Clock share pacers; sessions on an injected clock
// (tests) get pacers of their own clock, one per clock, so a fake clock
// drives them exactly as before. The pacers of a clock run while at least
// one of its sessions is started and stop when the last one leaves.

const (
	// pacerTick is the width of a wheel bucket: the resolution of phases.
	pacerTick = time.Millisecond
	// wheelSize is the number of buckets: one packet period.
	wheelSize = int64(FrameDuration / pacerTick)
	// maxBehind is how far a pacer catches up after a stall: the slots of
	// the last 200 ms leave (10 a session), older ones are skipped.
	maxBehind = 200 * time.Millisecond
	// pacersPerCore is how many pacers the real clock gets per P. A pacer
	// sends its sessions one after the other, so one that waits (its
	// thread preempted by the kernel, its timer on a P busy with a GC mark
	// worker) delays all of them; at 1,000 calls on this 2-core machine 4
	// a core instead of 1 cut the p99 send lateness (3.6 and 18 ms against
	// 22 and 68 ms) for the same CPU. A pacer costs a wake-up a
	// millisecond.
	pacersPerCore = 4
	// lateAfter is the lateness from which a packet counts as late: it left
	// a whole frame after its slot, bunched with the next one.
	lateAfter = FrameDuration
)

// slotSender is what a pacer sends for (a Session). sendSlot sends the
// packet of slot, using sc as scratch space, and reports whether a packet
// left (false on hold, with nowhere to send, or after shutdown).
type slotSender interface {
	sendSlot(slot int64, sc *sendScratch) bool
}

// sendScratch is a pacer's buffer for building packets: one per pacer, not
// one per call.
type sendScratch struct {
	hdr rtp.Header
	buf [maxDatagram]byte
	out *sendBatch // the packets of sessions on a Mux, sent per tick
}

// Entry states, under registry.mu.
const (
	entryNew = iota
	entryPaced
	entryGone
)

// paceEntry is a session's place on a pacer's wheel.
type paceEntry struct {
	s slotSender

	// Under registry.mu.
	state int
	p     *pacer
	pi    int // index of p in its group

	// Under p.mu.
	bucket int64
	idx    int   // index in p.wheel[bucket]
	base   int64 // tick of slot 0
	next   int64 // next slot to send

	late, skipped atomic.Uint64
}

// pacerGroup is the pacers of one clock.
type pacerGroup struct {
	key    any
	clock  Clock
	t0     time.Time // tick 0
	stats  *pacerCounters
	pacers []*pacer
	wg     sync.WaitGroup

	// Under registry.mu.
	load [][wheelSize]int // sessions per pacer and bucket
	n    int              // sessions in the group
}

// pacer is one sender goroutine and its wheel.
type pacer struct {
	g    *pacerGroup
	wake chan struct{} // a session joined
	stop chan struct{}

	// due is the next tick with sessions (math.MaxInt64 when none): a
	// sibling that finds it long past serves the ticks for this pacer.
	due atomic.Int64

	mu    sync.Mutex
	wheel [wheelSize][]*paceEntry
	n     int   // sessions on the wheel
	next  int64 // next tick to serve
	sc    sendScratch
}

// registry maps clocks to their running pacers.
var registry struct {
	mu     sync.Mutex
	groups map[any]*pacerGroup
}

// realStats accumulates the real clock's pacing over the process's life,
// across the groups that come and go with the calls.
var realStats pacerCounters

// groupKey is the registry key of c: c itself when comparable, otherwise a
// key of its own (each session then paces alone).
func groupKey(c Clock) any {
	if reflect.TypeOf(c).Comparable() {
		return c
	}
	return new(byte)
}

// joinPacer puts e on a wheel of c's pacers, starting them if needed. A
// session that already left (Close raced with Start) is not added.
func joinPacer(c Clock, e *paceEntry) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if e.state != entryNew {
		return
	}
	key := groupKey(c)
	g := registry.groups[key]
	if g == nil {
		n, stats := 1, new(pacerCounters)
		if _, real := c.(realClock); real {
			n, stats = pacersPerCore*runtime.GOMAXPROCS(0), &realStats
		}
		g = newPacerGroup(key, c, n, stats)
		if registry.groups == nil {
			registry.groups = map[any]*pacerGroup{}
		}
		registry.groups[key] = g
		g.start()
	}
	g.add(e)
	e.state = entryPaced
}

// leavePacer takes e off its wheel; when it returns, no pacer sends for
// e's session any more. The last session of a clock stops its pacers and
// waits for them. It is idempotent, and safe before joinPacer.
func leavePacer(e *paceEntry) {
	registry.mu.Lock()
	if e.state != entryPaced {
		e.state = entryGone
		registry.mu.Unlock()
		return
	}
	e.state = entryGone
	g := e.p.g
	g.remove(e)
	stopped := g.n == 0
	if stopped {
		delete(registry.groups, g.key)
		g.halt()
	}
	registry.mu.Unlock()
	if stopped {
		g.wg.Wait()
	}
}

func newPacerGroup(key any, c Clock, n int, stats *pacerCounters) *pacerGroup {
	g := &pacerGroup{key: key, clock: c, t0: c.Now(), stats: stats, load: make([][wheelSize]int, n)}
	for range n {
		p := &pacer{g: g, wake: make(chan struct{}, 1), stop: make(chan struct{})}
		p.due.Store(math.MaxInt64)
		g.pacers = append(g.pacers, p)
	}
	return g
}

func (g *pacerGroup) start() {
	g.wg.Add(len(g.pacers))
	for _, p := range g.pacers {
		go p.run()
	}
}

// halt tells the pacers to stop; g.wg waits for them.
func (g *pacerGroup) halt() {
	for _, p := range g.pacers {
		close(p.stop)
	}
}

// add places e in the least loaded bucket (the fewest sessions due in that
// millisecond across all pacers; among equals, the one due soonest, so a
// session alone starts at once), on the pacer with the fewest sessions in
// that bucket, then in all. registry.mu is held.
func (g *pacerGroup) add(e *paceEntry) {
	now := g.clock.Now().Sub(g.t0)
	first := int64((now + pacerTick - 1) / pacerTick) // the next tick not yet begun
	bestOff, bestLoad := int64(-1), 0
	for off := range wheelSize {
		b := (first + off) % wheelSize
		l := 0
		for pi := range g.pacers {
			l += g.load[pi][b]
		}
		if bestOff < 0 || l < bestLoad {
			bestOff, bestLoad = off, l
		}
	}
	tick := first + bestOff
	b := tick % wheelSize
	total := func(pi int) (t int) {
		for _, l := range g.load[pi] {
			t += l
		}
		return t
	}
	bestPi := 0
	for pi := 1; pi < len(g.pacers); pi++ {
		l, bl := g.load[pi][b], g.load[bestPi][b]
		if l < bl || (l == bl && total(pi) < total(bestPi)) {
			bestPi = pi
		}
	}
	p := g.pacers[bestPi]
	g.load[bestPi][b]++
	g.n++
	e.p, e.pi = p, bestPi

	p.mu.Lock()
	if p.n == 0 {
		p.next = first
	}
	if tick < p.next {
		// The pacer served this tick already (now is exactly on it): serve
		// it again, the sessions there sent their slot and skip it.
		p.next = tick
	}
	e.bucket, e.idx, e.base, e.next = b, len(p.wheel[b]), tick, 0
	p.wheel[b] = append(p.wheel[b], e)
	p.n++
	if tick < p.due.Load() {
		p.due.Store(tick)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// remove takes e off its pacer's wheel; registry.mu is held. Taking p.mu
// waits for a millisecond being served to end.
func (g *pacerGroup) remove(e *paceEntry) {
	p := e.p
	p.mu.Lock()
	w := p.wheel[e.bucket]
	last := len(w) - 1
	w[e.idx] = w[last]
	w[e.idx].idx = e.idx
	w[last] = nil
	p.wheel[e.bucket] = w[:last]
	p.n--
	p.mu.Unlock()
	g.load[e.pi][e.bucket]--
	g.n--
	e.p = nil
}

// run is the pacer goroutine.
func (p *pacer) run() {
	defer p.g.wg.Done()
	g := p.g
	timer := g.clock.NewTimer(time.Hour)
	timer.Stop()
	at, absolute := timer.(interface{ resetAt(time.Time) })
	for {
		due, wait, idle := p.serve()
		if idle {
			timer.Stop()
			select {
			case <-p.wake:
				continue
			case <-p.stop:
				return
			}
		}
		if absolute {
			// wait was measured a moment ago: aim at the tick itself, so
			// that time passing in between (a fake clock's Advance) does
			// not push the wake-up later.
			at.resetAt(due)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C():
		case <-p.wake:
		case <-p.stop:
			timer.Stop()
			return
		}
	}
}

// serve sends everything that is due and returns when the next tick with
// sessions begins and how long that is from now, or idle when the wheel is
// empty. It holds
// p.mu one tick at a time, so that sessions joining or leaving wait for one
// tick's sends at most, not for a whole catch-up. Then it serves any
// sibling pacer that is more than stealAfter late.
func (p *pacer) serve() (at time.Time, wait time.Duration, idle bool) {
	g := p.g
	for {
		p.mu.Lock()
		now := g.clock.Now().Sub(g.t0)
		due, more := p.step(int64(now / pacerTick))
		p.mu.Unlock()
		if more {
			continue
		}
		if len(g.pacers) > 1 {
			p.help(now)
		}
		if due == math.MaxInt64 {
			return time.Time{}, 0, true
		}
		at = g.t0.Add(time.Duration(due) * pacerTick)
		if wait = at.Sub(g.clock.Now()); wait > 0 {
			return at, wait, false
		}
		// Already due (the tick began while we looked): serve again.
	}
}

// step serves the next tick if it has begun (cur is the latest begun) and
// reports more; otherwise it returns the next tick with sessions, or
// math.MaxInt64 for none, and publishes it in p.due. p.mu is held.
func (p *pacer) step(cur int64) (due int64, more bool) {
	if p.n == 0 {
		p.due.Store(math.MaxInt64)
		return math.MaxInt64, false
	}
	if oldest := cur - int64(maxBehind/pacerTick) + 1; p.next < oldest {
		p.next = oldest // a long stall: the slots before are skipped
	}
	if p.next <= cur {
		p.serveTick(p.next)
		p.next++
		return 0, true
	}
	due = math.MaxInt64
	for t := p.next; t < p.next+wheelSize; t++ {
		if len(p.wheel[t%wheelSize]) > 0 {
			due = t
			break
		}
	}
	p.due.Store(due)
	return due, false
}

// stealAfter is how late a pacer may be before a sibling serves its ticks.
// Wake-ups are up to a millisecond late anyway (the runtime's poller waits
// in whole milliseconds).
const stealAfter = 2 * pacerTick

// help serves the due ticks of siblings whose own goroutine is late: its
// timer may sit on a P running a GC mark worker, which runs no timers for
// the whole mark phase, or its thread may be preempted. A sibling busy
// serving (its lock held) is left alone.
func (p *pacer) help(now time.Duration) {
	if now < stealAfter {
		return
	}
	late := int64((now - stealAfter) / pacerTick) // ticks that began stealAfter ago or more
	for _, q := range p.g.pacers {
		if q == p || q.due.Load() > late || !q.mu.TryLock() {
			continue
		}
		for {
			cur := int64(p.g.clock.Now().Sub(p.g.t0) / pacerTick)
			if _, more := q.step(cur); !more {
				break
			}
		}
		q.mu.Unlock()
	}
}

// serveTick sends the packets of tick t's bucket, in the order the
// sessions joined it (a removal moves the last one into the gap); p.mu is
// held.
func (p *pacer) serveTick(t int64) {
	g := p.g
	for _, e := range p.wheel[t%wheelSize] {
		if t < e.base {
			continue // joined for a later round of this bucket
		}
		slot := (t - e.base) / wheelSize
		if slot < e.next {
			continue
		}
		if n := uint64(slot - e.next); n > 0 {
			e.skipped.Add(n)
			g.stats.skipped.Add(n)
		}
		late := g.clock.Now().Sub(g.t0.Add(time.Duration(t) * pacerTick))
		if e.s.sendSlot(slot, &p.sc) {
			g.stats.observe(late)
			if late >= lateAfter {
				e.late.Add(1)
			}
		}
		e.next = slot + 1
	}
	p.sc.flush()
}

// latenessBounds are the upper bounds of the lateness histogram's buckets.
var latenessBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
}

// pacerCounters are a group's counters, updated without locks.
type pacerCounters struct {
	sent, late, skipped atomic.Uint64
	sum                 atomic.Int64 // nanoseconds
	buckets             [len(latenessBounds) + 1]atomic.Uint64
}

// observe counts one packet sent late after its slot.
func (c *pacerCounters) observe(late time.Duration) {
	late = max(late, 0)
	c.sent.Add(1)
	c.sum.Add(int64(late))
	if late >= lateAfter {
		c.late.Add(1)
	}
	i := 0
	for i < len(latenessBounds) && late > latenessBounds[i] {
		i++
	}
	c.buckets[i].Add(1)
}

func (c *pacerCounters) read() PacingStats {
	st := PacingStats{
		Sent:    c.sent.Load(),
		Late:    c.late.Load(),
		Skipped: c.skipped.Load(),
		Lateness: LatenessHistogram{
			Bounds: latenessBounds[:],
			Counts: make([]uint64, len(c.buckets)),
			Sum:    time.Duration(c.sum.Load()),
		},
	}
	for i := range c.buckets {
		n := c.buckets[i].Load()
		st.Lateness.Counts[i] = n
		st.Lateness.Count += n
	}
	return st
}

// PacingStats describes how the pacers sent RTP: the sessions on the real
// clock, over the life of the process. See [PacerStats].
type PacingStats struct {
	// Sessions is how many started sessions are paced now, by Pacers
	// goroutines (0 when no call is up).
	Sessions, Pacers int
	// Sent counts RTP packets sent.
	Sent uint64
	// Late counts packets that left a frame (20 ms) or more after their
	// slot, after the process stalled or the pacers fell behind.
	Late uint64
	// Skipped counts 20 ms slots left out after a stall of more than
	// 200 ms: no packet was sent for them.
	Skipped uint64
	// Lateness is how late each packet left against its slot.
	Lateness LatenessHistogram
}

// LatenessHistogram counts packets by how late they left.
type LatenessHistogram struct {
	// Bounds are the buckets' upper bounds, ascending; Counts has one more
	// entry than Bounds, the packets later than the last bound. Counts are
	// per bucket, not cumulative.
	Bounds []time.Duration
	Counts []uint64
	// Count and Sum are the number of packets and their total lateness.
	Count uint64
	Sum   time.Duration
}

// PacerStats returns the pacing figures of every [Session] on the real
// clock since the process started, for metrics.
func PacerStats() PacingStats {
	st := realStats.read()
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if g := registry.groups[any(realClock{})]; g != nil {
		st.Sessions, st.Pacers = g.n, len(g.pacers)
	}
	return st
}
