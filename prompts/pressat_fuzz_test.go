package prompts

import (
	"strings"
	"testing"
	"time"
)

// FuzzPressAt: ask.json is file input. Whatever it holds, parsePressAt
// either fails with an error naming the file or returns a point inside the
// prompt that the file states in whole milliseconds.
func FuzzPressAt(f *testing.F) {
	for _, s := range []string{`{"press_at_ms": 4111}`, `{"press_at_ms": 0}`, `{"press_at_ms": -1}`, `{"press_at_ms": 1e3}`,
		`{"press_at": 1}`, `{"press_at_ms": 1} {}`, `[]`, `null`, `{"press_at_ms": 9223372036854775807}`} {
		f.Add([]byte(s), int64(7480))
	}
	f.Fuzz(func(t *testing.T, b []byte, ms int64) {
		d := time.Duration(ms%60000) * time.Millisecond
		if d < 0 {
			d = -d
		}
		at, err := parsePressAt(b, d, "ask.json")
		if err != nil {
			if !strings.Contains(err.Error(), "ask.json") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if at < 0 || at > d || at%time.Millisecond != 0 {
			t.Fatalf("press at %v for a %v prompt", at, d)
		}
	})
}
