package media

import "time"

// Clock is the time source of a [Session]: the sender's schedule and the
// arrival times of packets. Tests inject a fake one to drive the sender
// without sleeping; nil means the real clock.
type Clock interface {
	// Now returns the current time; only differences between values are
	// used, so it must be monotonic.
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
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

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time   { return r.t.C }
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }
func (r realTimer) Stop()                 { r.t.Stop() }

// pace is the sender's schedule: slot k is due at k·frame after the start,
// an absolute schedule that never drifts however late each wake-up is. At
// elapsed time el, with slot next the next one to send, it returns either
// wait > 0, how long to sleep until slot next is due, or wait == 0 and the
// slot to send now. That slot is next when the sender is on time or less
// than a frame late; when it fell further behind (the process stalled) it is
// the latest slot whose time has come, so the slots in between are skipped
// (their timestamps are left out rather than sent in a burst) and the
// following slot is on schedule again.
func pace(el time.Duration, next int64, frame time.Duration) (wait time.Duration, slot int64) {
	due := time.Duration(next) * frame
	if el < due {
		return due - el, next
	}
	return 0, max(next, int64(el/frame))
}

// SystemClock returns the real clock, the one a Session uses when
// SessionConfig.Clock is nil.
func SystemClock() Clock { return realClock{} }
