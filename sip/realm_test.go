package sip

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestCheckRealm: with sip.trunk.realm set, a digest challenge for any other
// realm is refused before credentials are sent (the interop tests check the
// same against Kamailio, for INVITE and REGISTER).
func TestCheckRealm(t *testing.T) {
	challenge := func(code int, header, realm string) *sip.Response {
		r := sip.NewResponse(code, "Challenge")
		r.AppendHeader(sip.NewHeader(header, `Digest realm="`+realm+`", nonce="abc", qop="auth", algorithm=MD5`))
		return r
	}
	tests := []struct {
		name, want string
		res        *sip.Response
		ok         bool
	}{
		{"any_realm_when_unset", "", challenge(407, "Proxy-Authenticate", "pbx.example.org"), true},
		{"same_realm_407", "pbx.example.org", challenge(407, "Proxy-Authenticate", "pbx.example.org"), true},
		{"same_realm_401", "pbx.example.org", challenge(401, "WWW-Authenticate", "pbx.example.org"), true},
		{"other_realm_407", "pbx.example.org", challenge(407, "Proxy-Authenticate", "evil.example.net"), false},
		{"other_realm_401", "pbx.example.org", challenge(401, "WWW-Authenticate", "evil.example.net"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := &UA{cfg: Config{Trunk: Trunk{Realm: tc.want}}}
			err := u.checkRealm(tc.res)
			if (err == nil) != tc.ok {
				t.Fatalf("checkRealm = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "evil.example.net") {
				t.Errorf("error %q does not name the challenging realm", err)
			}
		})
	}
}
