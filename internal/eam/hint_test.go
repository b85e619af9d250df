package eam

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/eam/eamtest"
)

func TestHintVerifier(t *testing.T) {
	entra := eamtest.New(t, testTID, testClientID, eamtest.NewKey(t, 0), "kid-1")
	forger := eamtest.New(t, testTID, testClientID, eamtest.NewKey(t, 1), "kid-1")
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	v := &HintVerifier{Keys: &FileKeys{Path: entra.WriteJWKS(t)}, Tenants: []string{testTID},
		Audiences: []string{testClientID, "api://hashcall-eam"}, MaxAge: 10 * time.Minute, Skew: time.Minute,
		Now: func() time.Time { return now }}
	other := "11111111-2222-4333-8444-555555555555"
	for _, tc := range []struct {
		name  string
		hint  string
		want  error
		check func(Hint) bool
	}{
		{"good_expired_on_issue", entra.Hint(t, alice, now.Add(-time.Minute), nil), nil,
			func(h Hint) bool { return h.TID == testTID && h.OID == alice.OID && h.Sub == alice.Sub }},
		{"app_id_audience", entra.Hint(t, alice, now, map[string]any{"aud": "api://hashcall-eam"}), nil, nil},
		{"upper_case_tid", entra.Hint(t, alice, now, map[string]any{"tid": "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
			"iss": EntraIssuer("72F988BF-86F1-41AF-91AB-2D7CD011DB47")}), nil, nil},
		{"within_skew_future", entra.Hint(t, alice, now.Add(50*time.Second), nil), nil, nil},
		{"bad_signature", forger.Hint(t, alice, now, nil), ErrHintSignature, nil},
		{"unknown_kid", eamtest.New(t, testTID, testClientID, eamtest.NewKey(t, 0), "kid-2").Hint(t, alice, now, nil), ErrHintSignature, nil},
		{"unknown_tenant", entra.Hint(t, alice, now, map[string]any{"tid": other, "iss": EntraIssuer(other)}), ErrHintIssuer, nil},
		{"issuer_of_other_tenant", entra.Hint(t, alice, now, map[string]any{"iss": EntraIssuer(other)}), ErrHintIssuer, nil},
		{"v1_issuer", entra.Hint(t, alice, now, map[string]any{"iss": "https://sts.windows.net/" + testTID + "/"}), ErrHintIssuer, nil},
		{"foreign_audience", entra.Hint(t, alice, now, map[string]any{"aud": "someone-else"}), ErrHintAudience, nil},
		{"too_old", entra.Hint(t, alice, now.Add(-12*time.Minute), nil), ErrHintAge, nil},
		{"future", entra.Hint(t, alice, now.Add(5*time.Minute), nil), ErrHintAge, nil},
		{"no_iat", entra.Hint(t, alice, now, map[string]any{"iat": nil}), ErrHintClaims, nil},
		{"no_oid", entra.Hint(t, alice, now, map[string]any{"oid": nil}), ErrHintClaims, nil},
		{"garbage", "not.a.jwt", ErrHintMalformed, nil},
		{"alg_none", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.", ErrHintMalformed, nil},
		{"hs256", "eyJhbGciOiJIUzI1NiIsImtpZCI6ImtpZC0xIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", ErrHintMalformed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := v.Verify(context.Background(), tc.hint)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tc.check != nil && !tc.check(h) {
					t.Errorf("hint %+v", h)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

// Entra's keys over HTTPS: cached, fetched again at once for an unknown
// kid (Entra rolled its keys), but not more than once per MinRefresh.
func TestURLKeys(t *testing.T) {
	old := eamtest.New(t, testTID, testClientID, eamtest.NewKey(t, 0), "old")
	srv, fetches := old.ServeJWKS(t)
	now := time.Now()
	u := &URLKeys{URL: srv.URL, Client: srv.Client(), MinRefresh: time.Minute, Now: func() time.Time { return now }}
	ctx := context.Background()
	if _, err := u.Key(ctx, "old"); err != nil || fetches() != 1 {
		t.Fatalf("first: %v, %d fetches", err, fetches())
	}
	if _, err := u.Key(ctx, "old"); err != nil || fetches() != 1 {
		t.Fatalf("cached: %v, %d fetches", err, fetches())
	}
	if _, err := u.Key(ctx, "forged"); !errors.Is(err, ErrUnknownKey) || fetches() != 1 {
		t.Fatalf("unknown kid within MinRefresh: %v, %d fetches (want no fetch)", err, fetches())
	}
	now = now.Add(2 * time.Minute)
	if _, err := u.Key(ctx, "forged"); !errors.Is(err, ErrUnknownKey) || fetches() != 2 {
		t.Fatalf("unknown kid after MinRefresh: %v, %d fetches (want a fetch)", err, fetches())
	}
	now = now.Add(25 * time.Hour)
	if _, err := u.Key(ctx, "old"); err != nil || fetches() != 3 {
		t.Fatalf("after the TTL: %v, %d fetches", err, fetches())
	}
	// A server that is down: the last good set still answers.
	srv.Close()
	now = now.Add(25 * time.Hour)
	if _, err := u.Key(ctx, "old"); err != nil {
		t.Fatalf("server down: %v", err)
	}
}

func TestFileKeysReload(t *testing.T) {
	a := eamtest.New(t, testTID, testClientID, eamtest.NewKey(t, 0), "a")
	b := eamtest.New(t, testTID, testClientID, eamtest.NewKey(t, 1), "b")
	p := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(p, a.JWKS(t), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &FileKeys{Path: p}
	if _, err := f.Key(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b.JWKS(t), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Key(context.Background(), "b"); err != nil {
		t.Fatalf("after replacing the file: %v", err)
	}
}

// FuzzHintVerify: whatever arrives as id_token_hint, Verify returns an
// error or a hint of the configured tenant, and never panics.
func FuzzHintVerify(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiIsImtpZCI6ImtpZC0xIn0.eyJ0aWQiOiJ4In0.AAAA")
	f.Add("a.b.c")
	f.Add("")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	entra := eamtest.New(f, testTID, testClientID, eamtest.NewKey(f, 0), "kid-1")
	f.Add(entra.Hint(f, alice, time.Now(), nil))
	v := &HintVerifier{Keys: &FileKeys{Path: entra.WriteJWKS(f)}, Tenants: []string{testTID},
		Audiences: []string{testClientID}, MaxAge: 10 * time.Minute, Skew: time.Minute}
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := v.Verify(context.Background(), raw)
		if err == nil && h.TID != testTID {
			t.Fatalf("accepted a hint of tenant %q", h.TID)
		}
	})
}

func TestPickLocale(t *testing.T) {
	for _, tc := range []struct{ name, header, want string }{
		{"empty", "", "en-GB"},
		{"us", "en-US,en;q=0.9", "en-US"},
		{"gb", "en-GB", "en-GB"},
		{"ie", "en-IE", "en-GB"},
		{"weighted", "en-GB;q=0.5, en-US;q=0.8", "en-US"},
		{"french_then_us", "fr-FR, en-US;q=0.5", "en-US"},
		{"bare_en", "en", "en-GB"},
		{"bad_q", "en-US;q=x", "en-GB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pickLocale(tc.header, "en-GB"); got != tc.want {
				t.Errorf("pickLocale(%q) = %s, want %s", tc.header, got, tc.want)
			}
		})
	}
}

// FuzzParseJWKS: Entra's key set comes from the network (or a file); any
// input parses to a set or an error, and a key found in it is a public one.
func FuzzParseJWKS(f *testing.F) {
	entra := eamtest.New(f, testTID, testClientID, eamtest.NewKey(f, 0), "kid-1")
	f.Add(entra.JWKS(f))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"kid-1"}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := parseJWKS(data)
		if err != nil {
			return
		}
		if k, err := keySet(set, "kid-1"); err == nil && !k.IsPublic() {
			t.Fatalf("keySet returned a non-public key")
		}
	})
}

// FuzzPickLocale: Accept-Language is the browser's; any value gives one of
// the shipped locales.
func FuzzPickLocale(f *testing.F) {
	for _, s := range []string{"", "en-US,en;q=0.9", "fr;q=0.1, en-GB;q=0.5", "en-us;q=", ";;,,", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if got := pickLocale(h, "en-GB"); got != "en-GB" && got != "en-US" {
			t.Fatalf("pickLocale(%q) = %q", h, got)
		}
	})
}

func TestParseJWKSSkipsOddKeys(t *testing.T) {
	entra := eamtest.New(t, testTID, testClientID, eamtest.NewKey(t, 0), "good")
	good := string(entra.JWKS(t))
	mixed := strings.Replace(good, `{"keys":[`, `{"keys":[{"kty":"XYZ","kid":"odd"},{"kty":"RSA","kid":"broken","n":"!!"},`, 1)
	set, err := parseJWKS([]byte(mixed))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keySet(set, "good"); err != nil {
		t.Errorf("the good key is lost among odd ones: %v", err)
	}
	if _, err := parseJWKS([]byte(`{"keys":[{"kty":"XYZ"}]}`)); err == nil {
		t.Error("a set of no usable keys parsed")
	}
}
