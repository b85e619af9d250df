package redact

import (
	"regexp"
	"testing"
)

// TestNumber pins the one masked form of a number: what Number makes of
// the bare E.164 string that logs, API answers ("to") and the audit chain
// all show, and what it does with national, short and non-digit inputs.
func TestNumber(t *testing.T) {
	e164 := regexp.MustCompile(`^\+[0-9]{9,15}$`)
	maskedE164 := regexp.MustCompile(`^\+[0-9]{4}\*+[0-9]{3}$`)
	for _, tc := range []struct{ name, in, want string }{
		{"uk_mobile", "+447700900123", "+4477*****123"},
		{"uk_mobile_last_in_range", "+447700900999", "+4477*****999"},
		{"uk_fixed_line", "+442079460000", "+4420*****000"},
		{"us", "+12025550123", "+1202****123"},
		{"national", "07700900123", "0770****123"},
		{"us_other", "+12015550123", "+1201****123"},
		{"nine_digits_keeps_head", "+123456789", "+1234**789"},
		{"eight_digits_is_short", "+12345678", "+******78"},
		{"short_code", "999", "*99"},
		{"four_digit_short_code", "1234", "**34"},
		{"extension", "2001", "**01"},
		{"empty", "", ""},
		{"one_digit", "7", "7"},
		{"plus_only", "+", "+"},
		{"no_digits", "anonymous", "anonymous"},
		{"sip_user", "alice", "alice"},
		{"star_codes_kept", "*31#", "*31#"},
		{"spaced_input_keeps_spaces", "+44 7700 900123", "+44 77** ***123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Number(tc.in)
			if got != tc.want {
				t.Errorf("Number(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if len([]rune(got)) != len([]rune(tc.in)) {
				t.Errorf("Number(%q) = %q changes the length", tc.in, got)
			}
			if e164.MatchString(tc.in) && !maskedE164.MatchString(got) {
				t.Errorf("Number(%q) = %q, not the form +CCNN***NNN", tc.in, got)
			}
		})
	}
}

func TestNumbers(t *testing.T) {
	in := "INVITE sip:+447700900123@trunk.example:5060 SIP/2.0\r\nTo: <sip:+447700900123@trunk.example>\r\nCSeq: 1 INVITE\r\n"
	want := "INVITE sip:+4477*****123@trunk.example:5060 SIP/2.0\r\nTo: <sip:+4477*****123@trunk.example>\r\nCSeq: 1 INVITE\r\n"
	if got := Numbers(in); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestSecret(t *testing.T) {
	if Secret("hunter2") != "********" || Secret("") != "" {
		t.Fatal("secret not masked")
	}
}
