package eamtest

import (
	"testing"
	"time"
)

// CheckClaims asserts every claim of a verified sign-in's id_token, as
// Microsoft's external method provider reference asks: iss the provider's
// issuer, aud the client id, sub the hint's, the request's nonce, acr
// "possessionorinherence" (one value), amr ["tel"] (an array of one),
// exp ten minutes after iat, iat now, a jti.
func CheckClaims(t testing.TB, c map[string]any, issuer, clientID, sub, nonce string) {
	t.Helper()
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	amr, _ := c["amr"].([]any)
	for _, chk := range []struct {
		name string
		ok   bool
		want string
	}{
		{"iss", c["iss"] == issuer, issuer},
		{"aud", c["aud"] == clientID, clientID},
		{"sub", c["sub"] == sub, sub},
		{"nonce", c["nonce"] == nonce, nonce},
		{"acr", c["acr"] == "possessionorinherence", "possessionorinherence"},
		{"amr", len(amr) == 1 && amr[0] == "tel", `["tel"]`},
		{"exp", exp-iat == 600, "iat + 600"},
		{"jti", c["jti"] != nil && c["jti"] != "", "set"},
	} {
		if !chk.ok {
			t.Errorf("id_token %s = %v, want %s", chk.name, c[chk.name], chk.want)
		}
	}
	if d := time.Since(time.Unix(int64(iat), 0)); d < -time.Minute || d > time.Minute {
		t.Errorf("id_token iat %v is not now", iat)
	}
}
