package redact

import "testing"

func TestNumber(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"uk_mobile_e164", "+447700900123", "+4477*****123"},
		{"us_e164", "+12025550123", "+1202****123"},
		{"national", "07700900123", "0770****123"},
		{"short_code", "1234", "**34"},
		{"extension", "2001", "**01"},
		{"empty", "", ""},
		{"non_digits_kept", "+44 7700 900123", "+44 77** ***123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Number(tc.in); got != tc.want {
				t.Errorf("Number(%q) = %q, want %q", tc.in, got, tc.want)
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
