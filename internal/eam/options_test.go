package eam

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/hashcall/hashcall/internal/eam/eamtest"
	"github.com/hashcall/hashcall/internal/service"
)

func TestPageDirOverrides(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "en-GB.json"), []byte(`{"title":"Contoso sign-in check","calling":"Ringing %s now: press hash (#)."}`), 0o600); err != nil {
		t.Fatal(err)
	}
	txt, err := loadTexts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if txt["en-GB"].T("title") != "Contoso sign-in check" || txt["en-GB"].T("calling", "123") != "Ringing 123 now: press hash (#)." {
		t.Errorf("overrides not applied: %q, %q", txt["en-GB"].T("title"), txt["en-GB"].T("calling", "123"))
	}
	if txt["en-US"].T("title") != "Verify it's you" || txt["en-GB"].T("cancel") != "Cancel" {
		t.Errorf("texts not overridden changed")
	}
	for _, tc := range []struct{ name, body, want string }{
		{"unknown_key", `{"titel":"x"}`, "unknown text"},
		{"verbs", `{"calling":"We're calling you."}`, "keep the 1 %s"},
		{"not_json", `title: x`, "want a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, "en-US.json"), []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := loadTexts(d); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	p := &Provider{o: Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}}}
	for _, tc := range []struct{ name, remote, xff, want string }{
		{"direct", "192.0.2.7:5555", "", "192.0.2.7"},
		{"untrusted_peer_xff_ignored", "192.0.2.7:5555", "198.51.100.1", "192.0.2.7"},
		{"trusted_proxy", "127.0.0.1:5555", "198.51.100.1", "198.51.100.1"},
		{"chain_of_proxies", "127.0.0.1:5555", "203.0.113.9, 198.51.100.1, 10.1.2.3", "198.51.100.1"},
		{"spoofed_left_ignored", "10.0.0.1:5555", "1.2.3.4, 203.0.113.9", "203.0.113.9"},
		{"only_proxies", "127.0.0.1:5555", "10.0.0.2", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/authorize", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := p.clientIP(r); got != tc.want {
				t.Errorf("clientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

// selfSigned makes a signing key file's contents from an RSA key.
func selfSigned(t *testing.T, i int) *SigningKey {
	t.Helper()
	key := eamtest.NewKey(t, i)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: "rollover"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	k, err := ParseSigningKey(append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Rollover: both keys are published, the first signs.
func TestKeyRollover(t *testing.T) {
	newKey, oldKey := selfSigned(t, 2), selfSigned(t, 3)
	set := JWKS([]*SigningKey{newKey, oldKey})
	raw, _ := json.Marshal(set)
	var pub jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &pub); err != nil {
		t.Fatal(err)
	}
	if len(pub.Keys) != 2 || len(pub.Key(newKey.KeyID)) != 1 || len(pub.Key(oldKey.KeyID)) != 1 {
		t.Fatalf("published %d keys: want both", len(pub.Keys))
	}
	p, err := New(Options{Issuer: "https://mfa.example.org", ClientID: testClientID, RedirectURIs: []string{"https://login.example/cb"},
		Hints: &HintVerifier{}, SigningKeys: []*SigningKey{newKey, oldKey}, Service: nopService{}, Claims: NewMemoryStore(nil), Enrolments: NewMemoryStore(nil)})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := p.token(&session{req: authRequest{ClientID: testClientID, Nonce: "n"}, hint: Hint{Sub: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if kid := jws.Signatures[0].Header.KeyID; kid != newKey.KeyID {
		t.Errorf("signed with kid %s, want the first key's %s", kid, newKey.KeyID)
	}
	if _, err := jws.Verify(pub.Key(newKey.KeyID)[0].Key); err != nil {
		t.Errorf("does not verify with the published key: %v", err)
	}
}

type nopService struct{ service.Verifications }
