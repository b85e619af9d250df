package media

import "time"

// Clock is the time source of a [Session]: the pacer's schedule and the
// arrival times of packets. Tests inject a fake one to drive the sender
// without sleeping (sessions on one clock share its pacer); nil means the
// real clock.
type Clock interface {
	// Now returns the current time; only differences between values are
	// used, so it must be monotonic.
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine after d, as time.AfterFunc
	// does; stop cancels it and reports whether that kept f from running.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// Timer is a one-shot timer of a [Clock], reused across waits.
type Timer interface {
	// C delivers the time when the timer fires.
	C() <-chan time.Time
	// Reset makes the timer fire after d (stopping it first if pending).
	Reset(d time.Duration)
	// Stop stops the timer.
	Stop()
}

// realClock is the wall clock with its monotonic reading.
type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// AfterFunc runs f in its own goroutine after d, like time.AfterFunc:
// nothing waits until then. stop cancels it unless f started.
func (realClock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	return time.AfterFunc(d, f).Stop
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time   { return r.t.C }
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }
func (r realTimer) Stop()                 { r.t.Stop() }

// SystemClock returns the real clock, the one a Session uses when
// SessionConfig.Clock is nil.
func SystemClock() Clock { return realClock{} }
