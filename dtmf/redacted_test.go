package dtmf_test

import (
	"testing"

	"github.com/hashcall/hashcall/dtmf"
)

// TestKeyRedacted: digits and A–D show as "digit", * and # as themselves
// (verify mode code keeps a code's digits out of logs).
func TestKeyRedacted(t *testing.T) {
	for _, k := range "0123456789ABCD*#" {
		want := "digit"
		if k == '*' || k == '#' {
			want = string(k)
		}
		if got := dtmf.Key(k).Redacted(); got != want {
			t.Errorf("Key(%c).Redacted() = %q, want %q", k, got, want)
		}
	}
}
