// Package testwait lets tests wait for events instead of sleeping. Output
// keeps a program's output or a log and wakes its waiters at every write,
// so a test blocks until the line it expects is there; WaitFile does the
// same for a file another program writes (inotify). Until is the one
// place where tests poll: for a condition that announces itself by no
// event the test could block on (a counter in another process, a socket
// an external program binds, the goroutine count); a call of it says why
// it has no event.
package testwait

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// tick is how often Until checks its condition.
const tick = 5 * time.Millisecond

// Until returns nil as soon as cond reports true, checking it at once and
// then on every tick, or ctx's error (wrapped) if ctx ends first.
func Until(ctx context.Context, cond func() bool) error {
	if cond() {
		return nil
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met: %w", context.Cause(ctx))
		case <-t.C:
			if cond() {
				return nil
			}
		}
	}
}

// For waits up to within for cond with Until and fails t, naming what it
// waited for, when it does not come.
func For(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	if err := Until(ctx, cond); err != nil {
		t.Fatalf("waiting %v for %s: %v", within, what, err)
	}
}

// Output is an io.Writer that keeps everything written to it and wakes
// every Wait at each write. The zero value is ready to use.
type Output struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed (and replaced) at each write
}

// Write keeps p and wakes the waiters.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
	return len(p), nil
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// snapshot returns the output so far and a channel closed at the next
// write.
func (o *Output) snapshot() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.changed == nil {
		o.changed = make(chan struct{})
	}
	return o.b.String(), o.changed
}

// Wait returns nil once cond holds for the output so far, checking it
// after every write, or ctx's error (wrapped) if ctx ends first.
func (o *Output) Wait(ctx context.Context, cond func(out string) bool) error {
	for {
		s, changed := o.snapshot()
		if cond(s) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("output not as awaited: %w", context.Cause(ctx))
		}
	}
}

// WaitContains waits for sub in the output.
func (o *Output) WaitContains(ctx context.Context, sub string) error {
	return o.Wait(ctx, func(s string) bool { return strings.Contains(s, sub) })
}
