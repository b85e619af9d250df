package replay

import (
	"fmt"
	"strings"
)

// TB is the part of testing.TB the test helpers use; *testing.T and
// *testing.B satisfy it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Verify replays the capture at path with default options and fails tb
// unless it holds the presses want, as Report.Expect compares them: "#"
// for a capture that verifies a call, "" for one that does not, or every
// key a live call would have heard ("5#"). It returns the report.
func Verify(tb TB, path, want string) *Report {
	tb.Helper()
	rep := replayFile(tb, path)
	if rep == nil {
		return nil
	}
	if err := rep.Expect(want); err != nil {
		tb.Fatalf("replay %s: %v\n%s", path, err, rep.Summary())
	}
	return rep
}

// AssertVerified fails tb unless the capture at path holds a press that
// verifies a call (a # a live call would have accepted).
func AssertVerified(tb TB, path string) *Report {
	tb.Helper()
	rep := replayFile(tb, path)
	if rep == nil {
		return nil
	}
	if !rep.Verified() {
		tb.Fatalf("replay %s: no accepted press, expected a #\n%s", path, rep.Summary())
	}
	return rep
}

// replayFile replays the capture at path with default options; it fails
// tb and returns nil when it cannot.
func replayFile(tb TB, path string) *Report {
	tb.Helper()
	rep, err := File(path, Options{})
	if err != nil {
		tb.Fatalf("replay %s: %v", path, err)
		return nil
	}
	return rep
}

// Summary describes the report in a few lines: its streams and presses,
// for test failures and logs.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %d packets, %d calls, %d streams\n", r.Format, r.Frames, len(r.Calls), len(r.Streams))
	for _, c := range r.Calls {
		if c.Diverted {
			fmt.Fprintf(&b, "  call %s forwarded (%s): a live call refuses it\n", c.CallID, strings.Join(c.DiversionReasons, ", "))
		}
	}
	for _, s := range r.Streams {
		fmt.Fprintf(&b, "  %s: %s, %d packets, %d lost, %d dropped\n", s.Name, orNone(s.Codec), s.Packets, s.Lost, s.Dropped.Total())
		for _, p := range s.Presses {
			fmt.Fprintf(&b, "    %s (%s) at +%v for %v, %s\n", p.Key, p.Source, p.Offset.Round(1e6), p.Duration.Round(1e6), p.Verdict())
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", w)
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "no audio"
	}
	return s
}
