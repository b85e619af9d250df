package media

import (
	"fmt"
	"strconv"
	"strings"
)

// PortRange is the UDP ports RTP may bind, both ends included, written
// "LOW-HIGH". RTP takes the even port of each pair and RTCP the odd one
// above it (RFC 3550 §11), so LOW is even; 1024 ≤ LOW < HIGH ≤ 65535.
type PortRange struct{ Low, High uint16 }

// portRangeWant is the error text for a bad range. It names no package: it
// is shown after the name of the config key or flag that held the range.
const portRangeWant = `want "LOW-HIGH" with an even LOW, 1024 ≤ LOW < HIGH ≤ 65535`

// ParsePortRange parses "LOW-HIGH", such as "20000-20999".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	l, errL := parsePort(lo)
	h, errH := parsePort(hi)
	if !ok || errL != nil || errH != nil {
		return PortRange{}, fmt.Errorf("%s, got %s", portRangeWant, quoteShort(s))
	}
	r := PortRange{Low: l, High: h}
	if err := r.Check(); err != nil {
		return PortRange{}, err
	}
	return r, nil
}

// parsePort reads decimal digits only: no sign, no base prefix.
func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

// Check reports whether r is a range [ParsePortRange] would return.
func (r PortRange) Check() error {
	if r.Low < 1024 || r.Low >= r.High || r.Low%2 != 0 {
		return fmt.Errorf("%s, got %q", portRangeWant, r.String())
	}
	return nil
}

// String returns "LOW-HIGH".
func (r PortRange) String() string {
	return strconv.Itoa(int(r.Low)) + "-" + strconv.Itoa(int(r.High))
}

// Pairs returns how many RTP/RTCP port pairs (an even port and the odd one
// above it) r holds: the number of calls it carries at once with a port per
// call. A range that fails [PortRange.Check] may hold none.
func (r PortRange) Pairs() int {
	first := r.Low + r.Low%2
	if first < r.Low || first >= r.High {
		return 0
	}
	return (int(r.High) - int(first) + 1) / 2
}

// MarshalText returns "LOW-HIGH".
func (r PortRange) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses "LOW-HIGH" as [ParsePortRange] does; on an error r
// is left as it was.
func (r *PortRange) UnmarshalText(b []byte) error {
	v, err := ParsePortRange(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// quoteShort quotes s for an error message, cut to its first 64 bytes.
func quoteShort(s string) string {
	if len(s) > 64 {
		return strconv.Quote(strings.ToValidUTF8(s[:64], "")) + "…"
	}
	return strconv.Quote(s)
}
