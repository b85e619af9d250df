package policy

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// RuleFailedCodes is the rule that refuses a number with too many failed
// codes (policy.max_failed_codes): 422, API code too_many_failures.
const RuleFailedCodes = "max_failed_codes"

// Failed codes are counted per number over FailureWindow (NIST SP 800-63B
// rev 4 §3.2.2: a new code does not reset the count).
const (
	FailureWindow     = 24 * time.Hour
	DefaultMaxFailed  = 5
	MaxMaxFailedCodes = 100
)

// FailureCounter counts failed codes per number (E.164) over a window,
// across calls, requests and codes. MemoryFailures is the in-memory one;
// a durable store implements the same two methods.
type FailureCounter interface {
	// AddFailure records one failed code for e164 now and returns how many
	// the number has in the window, this one included.
	AddFailure(e164 string) (int, error)
	// Failures returns the times of e164's failed codes in the window,
	// oldest first.
	Failures(e164 string) ([]time.Time, error)
}

// MemoryFailures is a FailureCounter in memory, with a sliding window and
// an injectable clock. It is safe for concurrent use.
type MemoryFailures struct {
	mu     sync.Mutex
	window time.Duration
	now    func() time.Time
	m      map[string][]time.Time
}

// NewMemoryFailures returns an empty counter over window (0: FailureWindow);
// now may be nil for the real clock.
func NewMemoryFailures(window time.Duration, now func() time.Time) *MemoryFailures {
	if window <= 0 {
		window = FailureWindow
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryFailures{window: window, now: now, m: map[string][]time.Time{}}
}

// AddFailure implements FailureCounter.
func (f *MemoryFailures) AddFailure(e164 string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	ts := append(f.prune(f.m[e164], now), now)
	f.m[e164] = ts
	if len(f.m) > 1024 {
		for k, v := range f.m {
			if len(f.prune(v, now)) == 0 {
				delete(f.m, k)
			}
		}
	}
	return len(ts), nil
}

// Failures implements FailureCounter.
func (f *MemoryFailures) Failures(e164 string) ([]time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts := f.prune(f.m[e164], f.now())
	if len(ts) == 0 {
		delete(f.m, e164)
		return nil, nil
	}
	f.m[e164] = ts
	return append([]time.Time(nil), ts...), nil
}

func (f *MemoryFailures) prune(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= f.window {
		i++
	}
	return ts[i:]
}

// CheckFailures refuses e164 (422, RuleFailedCodes) when it has max or more
// failed codes in the window, with RetryAfter when enough of them will
// have expired; window is the counter's. A counter that fails refuses too
// (closed, not open): the count cannot be shown to be under the limit.
func CheckFailures(c FailureCounter, e164 string, max int, window time.Duration, now time.Time) *Refusal {
	if c == nil || max <= 0 {
		return nil
	}
	ts, err := c.Failures(e164)
	if err != nil {
		return &Refusal{http.StatusServiceUnavailable, RuleFailedCodes, fmt.Sprintf("the failed-code count cannot be read: %v", err), 30 * time.Second}
	}
	if len(ts) < max {
		return nil
	}
	// Below the limit again once all but max-1 of them have expired.
	free := ts[len(ts)-max].Add(window)
	return &Refusal{http.StatusUnprocessableEntity, RuleFailedCodes,
		fmt.Sprintf("%d wrong codes were keyed on this number in the last %v (policy.max_failed_codes %d); try again later", len(ts), window, max),
		retry(free.Sub(now))}
}
