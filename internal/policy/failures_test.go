package policy

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestFailures: failed codes are counted per number over a sliding 24 h
// window, and CheckFailures refuses at the limit until enough expire.
func TestFailures(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	now := t0
	f := NewMemoryFailures(0, func() time.Time { return now })
	const a, b = "+447700900123", "+447700900124"
	tests := []struct {
		name    string
		at      time.Duration // after t0
		add     string        // number to add a failure to, or ""
		count   int           // failures of a then
		refused bool          // at max 3
		retry   time.Duration
	}{
		{"none", 0, "", 0, false, 0},
		{"one", 0, a, 1, false, 0},
		{"other_number", time.Minute, b, 1, false, 0},
		{"two", time.Hour, a, 2, false, 0},
		{"three_refused", 2 * time.Hour, a, 3, true, 22 * time.Hour},
		{"still_refused", 23 * time.Hour, "", 3, true, time.Hour},
		{"first_expired", 24 * time.Hour, "", 2, false, 0},
		{"again", 24*time.Hour + time.Minute, a, 3, true, time.Hour - time.Minute},
		{"all_expired", 50 * time.Hour, "", 0, false, 0},
	}
	for _, tc := range tests {
		now = t0.Add(tc.at)
		if tc.add != "" {
			if _, err := f.AddFailure(tc.add); err != nil {
				t.Fatal(err)
			}
		}
		ts, _ := f.Failures(a)
		if len(ts) != tc.count {
			t.Errorf("%s: %d failures, want %d", tc.name, len(ts), tc.count)
		}
		ref := CheckFailures(f, a, 3, FailureWindow, now)
		if (ref != nil) != tc.refused {
			t.Fatalf("%s: refusal %v, want refused %v", tc.name, ref, tc.refused)
		}
		if ref != nil && (ref.Status != http.StatusUnprocessableEntity || ref.Rule != RuleFailedCodes || ref.RetryAfter != tc.retry) {
			t.Errorf("%s: %d %s retry %v, want 422 %s retry %v", tc.name, ref.Status, ref.Rule, ref.RetryAfter, RuleFailedCodes, tc.retry)
		}
	}
	if n, _ := f.Failures(b); len(n) != 0 {
		t.Errorf("b's failure outlived the window")
	}
}

// Wrong codes count per number; at the limit the number is refused until
// enough of them are a window old.
func ExampleCheckFailures() {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	f := NewMemoryFailures(FailureWindow, func() time.Time { return now })
	for range 5 {
		_, _ = f.AddFailure("+447700900123")
	}
	ref := CheckFailures(f, "+447700900123", DefaultMaxFailed, FailureWindow, now)
	fmt.Println(ref.Status, ref.Rule, ref.RetryAfter)
	fmt.Println(CheckFailures(f, "+447700900124", DefaultMaxFailed, FailureWindow, now) == nil)
	// Output:
	// 422 max_failed_codes 24h0m0s
	// true
}
