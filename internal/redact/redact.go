// Package redact masks phone numbers and secrets before they reach logs.
package redact

import (
	"regexp"
	"strings"
)

// Number masks a phone number for logs, keeping enough to recognise it:
// the leading + and first four digits (country and network) and the last
// three. "+447700900123" → "+4477*****123". Numbers of fewer than nine
// digits keep only their last two. Characters other than digits are kept
// where they are, so callers pass the bare E.164 form (policy.Number.E164)
// to get the one masked form hashcall shows in logs, API answers and the
// audit chain; "+44 7700 900123" would give a second, spaced form.
func Number(n string) string {
	digits := 0
	for _, r := range n {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	keepHead, keepTail := 4, 3
	if digits < 9 {
		keepHead, keepTail = 0, 2
	}
	var b strings.Builder
	seen := 0
	for _, r := range n {
		if r < '0' || r > '9' {
			b.WriteRune(r)
			continue
		}
		seen++
		if seen <= keepHead || seen > digits-keepTail {
			b.WriteRune(r)
		} else {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// numberLike matches runs of seven or more digits, optionally with a
// leading +: what a phone number looks like inside a SIP message.
var numberLike = regexp.MustCompile(`\+?[0-9]{7,}`)

// Numbers masks every phone-number-like run of digits in s.
func Numbers(s string) string {
	return numberLike.ReplaceAllStringFunc(s, Number)
}

// Secret returns "********" for a non-empty secret and "" for an empty one.
func Secret(s string) string {
	if s == "" {
		return ""
	}
	return "********"
}
