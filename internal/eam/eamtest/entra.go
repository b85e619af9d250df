// Package eamtest is a test Entra ID for the eam package's tests and the
// browser test: a local issuer with its own RSA keys that signs
// id_token_hints shaped like Microsoft's examples (already expired when
// issued, as Entra's are), serves its JWKS over HTTPS, and records what the
// provider posts to a local redirect_uri.
package eamtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Entra is the test tenant's identity provider.
type Entra struct {
	TID      string
	ClientID string // the EAM app's client id: the hint's aud
	Key      *rsa.PrivateKey
	KeyID    string
	signer   jose.Signer
}

// keyPool holds RSA keys made once per test binary: 2048-bit generation is
// the slow part of a test Entra.
var keyPool = struct {
	sync.Mutex
	keys []*rsa.PrivateKey
}{}

// NewKey returns a fresh 2048-bit RSA key (from a small pool reused across
// the tests of one binary, index i).
func NewKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	keyPool.Lock()
	defer keyPool.Unlock()
	for len(keyPool.keys) <= i {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keyPool.keys = append(keyPool.keys, k)
	}
	return keyPool.keys[i]
}

// New returns a test Entra for tenant tid with key.
func New(t testing.TB, tid, clientID string, key *rsa.PrivateKey, kid string) *Entra {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return &Entra{TID: tid, ClientID: clientID, Key: key, KeyID: kid, signer: s}
}

// User is who signed in.
type User struct {
	OID, Sub, UPN, Name string
}

// Hint signs an id_token_hint for u issued at iat, shaped like the example
// in Microsoft's external method provider reference: v2.0 issuer of the
// tenant, aud the EAM app, exp = iat (already expired), and the usual
// claims. Extra claims replace or add to them (nil values delete).
func (e *Entra) Hint(t testing.TB, u User, iat time.Time, extra map[string]any) string {
	t.Helper()
	c := map[string]any{
		"ver":                "2.0",
		"iss":                "https://login.microsoftonline.com/" + e.TID + "/v2.0",
		"sub":                u.Sub,
		"aud":                e.ClientID,
		"exp":                iat.Unix(),
		"iat":                iat.Unix(),
		"nbf":                iat.Unix(),
		"name":               u.Name,
		"preferred_username": u.UPN,
		"oid":                u.OID,
		"tid":                e.TID,
		"nonce":              "",
		"aio":                "AWQAm/8YAAAA" + base64.RawURLEncoding.EncodeToString([]byte(u.OID))[:16],
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	raw, err := jwt.Signed(e.signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// JWKS returns the tenant's public key set, as Entra publishes it.
func (e *Entra) JWKS(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &e.Key.PublicKey, KeyID: e.KeyID, Use: "sig", Algorithm: "RS256"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// WriteJWKS writes JWKS to a file in a temporary folder and returns its path.
func (e *Entra) WriteJWKS(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "entra-keys.json")
	if err := os.WriteFile(p, e.JWKS(t), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ServeJWKS serves JWKS over HTTPS on 127.0.0.1 until t ends; the server's
// Client trusts its certificate. Fetches counts the requests.
func (e *Entra) ServeJWKS(t testing.TB) (srv *httptest.Server, fetches func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	body := e.JWKS(t)
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// Posted is one form the provider posted to the redirect_uri.
type Posted struct {
	Form   url.Values
	Origin string
	At     time.Time
}

// RedirectSink is a local redirect_uri that records every form posted to
// it and answers with a small page naming the result.
type RedirectSink struct {
	Srv  *httptest.Server
	URL  string // the redirect_uri to configure
	C    chan Posted
	mu   sync.Mutex
	seen []Posted
}

// NewRedirectSink starts a sink on 127.0.0.1 (plain HTTP, or HTTPS with
// tls) until t ends.
func NewRedirectSink(t testing.TB, tls bool) *RedirectSink {
	t.Helper()
	s := &RedirectSink{C: make(chan Posted, 16)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		_ = r.ParseForm()
		p := Posted{Form: r.PostForm, Origin: r.Header.Get("Origin"), At: time.Now()}
		s.mu.Lock()
		s.seen = append(s.seen, p)
		s.mu.Unlock()
		select {
		case s.C <- p:
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		res := "id_token received"
		if e := r.PostForm.Get("error"); e != "" {
			res = "error " + e
		}
		_, _ = w.Write([]byte("<!doctype html><title>Entra</title><p id=\"result\">" + res + "</p>"))
	})
	if tls {
		s.Srv = httptest.NewTLSServer(h)
	} else {
		s.Srv = httptest.NewServer(h)
	}
	s.URL = s.Srv.URL + "/common/federation/externalauthprovider"
	t.Cleanup(s.Srv.Close)
	return s
}

// Seen returns every form posted so far.
func (s *RedirectSink) Seen() []Posted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Posted(nil), s.seen...)
}
