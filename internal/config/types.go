package config

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Mask is what a set secret is replaced with by [Config.Redacted], and what
// a [Secret] prints as.
const Mask = "********"

// Secret is a configuration value that must not leak: a password, a token or
// a signing key. Its String, GoString, Format, LogValue and MarshalText
// methods all give [Mask] (or "" when it is empty), so printing, logging or
// JSON-encoding a Config does not reveal it. Use string(s) where the value
// itself is needed.
type Secret string

func (s Secret) masked() string {
	if s == "" {
		return ""
	}
	return Mask
}

// String returns [Mask] when s is set and "" when it is not.
func (s Secret) String() string { return s.masked() }

// GoString returns the masked value quoted, for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.masked()) }

// Format writes the masked value whatever the verb, so that neither %s nor
// %x nor %q can print the secret.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		_, _ = f.Write([]byte(strconv.Quote(s.masked())))
		return
	}
	_, _ = f.Write([]byte(s.masked()))
}

// LogValue masks the secret in log/slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.masked()) }

// MarshalText masks the secret in encoding/json, YAML and other encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.masked()), nil }

// Rate is a number of events per period, written "N/PERIOD" such as "3/15m"
// (three per fifteen minutes) or "60/1m". A bare unit is accepted for one of
// it: "60/m" is "60/1m".
type Rate struct {
	N   int
	Per time.Duration
}

const (
	rateWant = `want "N/PERIOD" such as 3/15m with 1 ≤ N ≤ 1000000 and a PERIOD of at least 1s`
	maxRateN = 1_000_000
)

// ParseRate parses "N/PERIOD", such as "3/15m".
func ParseRate(s string) (Rate, error) {
	if strings.TrimSpace(s) == "off" {
		return Rate{}, nil // no limit; only keys that allow it accept the zero Rate
	}
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("%s, got %s", rateWant, quote(s))
	}
	n, per = strings.TrimSpace(n), strings.TrimSpace(per)
	count, err := strconv.Atoi(n)
	if err != nil || strings.HasPrefix(n, "+") {
		return Rate{}, fmt.Errorf("%s, got %s", rateWant, quote(s))
	}
	switch per {
	case "s", "m", "h":
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil {
		return Rate{}, fmt.Errorf("%s, got %s", rateWant, quote(s))
	}
	r := Rate{N: count, Per: d}
	if err := r.check(); err != nil {
		return Rate{}, err
	}
	return r, nil
}

func (r Rate) check() error {
	if r.N < 1 || r.N > maxRateN || r.Per < time.Second {
		return fmt.Errorf("%s, got %s", rateWant, quote(r.String()))
	}
	return nil
}

// String returns "N/PERIOD" with the period in its shortest form ("3/15m").
func (r Rate) String() string {
	if r == (Rate{}) {
		return "off"
	}
	return strconv.Itoa(r.N) + "/" + formatDuration(r.Per)
}

// MarshalText returns "N/PERIOD".
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses "N/PERIOD" as [ParseRate] does.
func (r *Rate) UnmarshalText(b []byte) error { return parseText(r, b, ParseRate) }

// formatDuration is time.Duration.String without the trailing zero units:
// 15m rather than 15m0s, 1h rather than 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// quote quotes s for an error message, shortened to at most 64 bytes, with
// control characters escaped so a value cannot break the message's lines.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		cut := limit
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// ByteSize is a size in bytes, written as a plain number of bytes or with a
// binary unit: 4MiB, 512KiB, 4194304.
type ByteSize int64

const byteSizeWant = "want a size such as 4MiB, 512KiB or 4194304 (bytes)"

// ParseByteSize parses a size as [ByteSize] describes.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%s, got %s", byteSizeWant, quote(s))
	}
	return ByteSize(n * mult), nil
}

// String writes the size with the largest binary unit that divides it.
func (b ByteSize) String() string {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return strconv.FormatInt(int64(b>>30), 10) + "GiB"
	case b != 0 && b%(1<<20) == 0:
		return strconv.FormatInt(int64(b>>20), 10) + "MiB"
	case b != 0 && b%(1<<10) == 0:
		return strconv.FormatInt(int64(b>>10), 10) + "KiB"
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText returns the size as String writes it.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses the size as [ParseByteSize] does.
func (b *ByteSize) UnmarshalText(t []byte) error { return parseText(b, t, ParseByteSize) }

// parseText sets *dst to parse(text), for UnmarshalText; *dst is left as it
// was on an error.
func parseText[T any](dst *T, text []byte, parse func(string) (T, error)) error {
	v, err := parse(string(text))
	if err != nil {
		return err
	}
	*dst = v
	return nil
}
