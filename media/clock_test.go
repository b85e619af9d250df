package media

import (
	"sync"
	"testing"
	"time"
)

func TestPace(t *testing.T) {
	const f = 20 * time.Millisecond
	for _, tc := range []struct {
		name     string
		el       time.Duration
		next     int64
		wait     time.Duration
		slot     int64
		skipping bool
	}{
		{"start", 0, 0, 0, 0, false},
		{"early for slot 1", 5 * time.Millisecond, 1, 15 * time.Millisecond, 1, false},
		{"exactly on time", 40 * time.Millisecond, 2, 0, 2, false},
		{"a little late", 47 * time.Millisecond, 2, 0, 2, false},
		{"almost a frame late", 59 * time.Millisecond, 2, 0, 2, false},
		{"a frame late: skip one", 60 * time.Millisecond, 2, 0, 3, true},
		{"stalled 100 ms: skip to the latest slot", 145 * time.Millisecond, 2, 0, 7, true},
		{"woke early (timer slack)", 39 * time.Millisecond, 2, time.Millisecond, 2, false},
		{"after a skip, on schedule again", 141 * time.Millisecond, 8, 19 * time.Millisecond, 8, false},
		{"hours in", 3*time.Hour + 10*time.Millisecond, 540001, 10 * time.Millisecond, 540001, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, slot := pace(tc.el, tc.next, f)
			if wait != tc.wait || slot != tc.slot {
				t.Errorf("pace(%v, %d) = %v, %d; want %v, %d", tc.el, tc.next, wait, slot, tc.wait, tc.slot)
			}
			if (slot > tc.next) != tc.skipping {
				t.Errorf("skipping %v", slot > tc.next)
			}
		})
	}
}

// TestPaceNoDrift runs the schedule with wake-ups that are always a little
// late: the slots stay on the absolute grid.
func TestPaceNoDrift(t *testing.T) {
	const f = 20 * time.Millisecond
	var el time.Duration
	var next int64
	sent := 0
	for sent < 50*3600 { // an hour of packets
		wait, slot := pace(el, next, f)
		if wait > 0 {
			el += wait + 700*time.Microsecond // the timer fires late every time
			continue
		}
		if slot != next {
			t.Fatalf("skipped at %v", el)
		}
		next = slot + 1
		sent++
	}
	if want := time.Duration(sent-1)*f + 700*time.Microsecond; el != want {
		t.Fatalf("after %d packets el = %v, want %v", sent, el, want)
	}
}

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
