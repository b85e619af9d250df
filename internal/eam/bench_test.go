package eam

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/verify"
)

// BenchmarkAuthorize is the provider's share of POST /authorize → INVITE:
// parse the form, check the hint (RS256 against Entra's key), claim
// (nonce, state), find the number and ask the service for the call, up to
// the 303 to the page. The phone is in-process (it answers busy at once).
func BenchmarkAuthorize(b *testing.B) {
	h := newHarness(b, harnessOptions{outcomes: map[string][]verify.Outcome{aliceNumber: {verify.Busy}}, perNumber: 1_000_000})
	client := h.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hint := h.entra.Hint(b, alice, time.Now(), nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f := h.authForm(alice, "n", "s")
		f.Set("id_token_hint", hint)
		f.Set("nonce", "bench-nonce-"+strconv.Itoa(i))
		res, err := client.Post(h.issuer+"/authorize", "application/x-www-form-urlencoded", strings.NewReader(f.Encode()))
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}
