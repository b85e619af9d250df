package media

import (
	"sync"
	"time"
)

// fakeClock is a Clock whose time moves only by Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1700000000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clk: c, c: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

// Advance moves time by d and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fire()
}

func (c *fakeClock) fire() {
	for _, t := range c.timers {
		if t.active && !t.when.After(c.now) {
			t.active = false
			select {
			case t.c <- c.now:
			default:
			}
		}
	}
}

type fakeTimer struct {
	clk    *fakeClock
	c      chan time.Time
	when   time.Time
	active bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Reset(d time.Duration) {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	select {
	case <-t.c:
	default:
	}
	t.when, t.active = t.clk.now.Add(d), true
	t.clk.fire()
}

// resetAt makes the timer fire at when (at once if that has passed): the
// pacer aims at its tick, not at a delay measured before an Advance.
func (t *fakeTimer) resetAt(when time.Time) {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	select {
	case <-t.c:
	default:
	}
	t.when, t.active = when, true
	t.clk.fire()
}

func (t *fakeTimer) Stop() {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	t.active = false
}

// armed reports whether a timer waits for a time after now: the sender has
// finished its slot and sleeps until the next one.
func (c *fakeClock) armed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if t.active && t.when.After(c.now) {
			return true
		}
	}
	return false
}

// armedCount is the number of timers waiting for a time after now.
func (c *fakeClock) armedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.active && t.when.After(c.now) {
			n++
		}
	}
	return n
}
