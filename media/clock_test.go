package media

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock whose time moves only by Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	// changed is signalled whenever time moves or a timer is set or
	// stopped: awaitTimers blocks on it instead of polling.
	changed *waker
}

// waker lets one goroutine at a time wait for a condition that others
// signal the changes of; neither side allocates (after newWaker), so the
// allocation tests can wait on it.
type waker struct {
	wake    chan struct{}
	timeout *time.Timer
}

func newWaker() *waker {
	w := &waker{wake: make(chan struct{}, 1), timeout: time.NewTimer(time.Hour)}
	w.timeout.Stop()
	return w
}

// signal wakes the waiter, if any; a wake-up already pending is enough.
func (w *waker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// await blocks until cond holds, checking it after every signal, and
// fails t after 5 s (what names the awaited state).
func (w *waker) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if cond() {
		return
	}
	w.timeout.Reset(5 * time.Second)
	defer w.timeout.Stop()
	for !cond() {
		select {
		case <-w.wake:
		case <-w.timeout.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1700000000, 0), changed: newWaker()}
}

// notify wakes awaitTimers; c.mu is held.
func (c *fakeClock) notify() { c.changed.signal() }

// awaitTimers blocks until cond holds, checking it after every change of
// the clock, and fails t after 5 s (what names the awaited state).
func (c *fakeClock) awaitTimers(t *testing.T, what string, cond func() bool) {
	t.Helper()
	c.changed.await(t, what, cond)
}

// waitAsleep waits until a timer waits for a time after now: the sender
// has finished its slot and sleeps until the next one.
func (c *fakeClock) waitAsleep(t *testing.T) {
	t.Helper()
	c.awaitTimers(t, "the sender to sleep", c.armed)
}

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

// AfterFunc calls f when a timer of c fires after d.
func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	t := c.NewTimer(d)
	stop := make(chan struct{})
	ran := make(chan bool, 1)
	go func() {
		select {
		case <-t.C():
			ran <- true
			f()
		case <-stop:
			ran <- false
		}
	}()
	var once sync.Once
	stopped := false
	return func() bool {
		once.Do(func() {
			t.Stop()
			close(stop)
			stopped = !<-ran
		})
		return stopped
	}
}

// Advance moves time by d and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fire()
	c.notify()
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
	t.clk.notify()
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
	t.clk.notify()
}

func (t *fakeTimer) Stop() {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	t.active = false
	t.clk.notify()
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
