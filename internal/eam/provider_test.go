package eam

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/hashcall/hashcall/internal/directory"
	"github.com/hashcall/hashcall/internal/eam/eamtest"
	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/internal/service"
	"github.com/hashcall/hashcall/internal/store"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/verify"
)

// Unit tests of the provider over real HTTP on 127.0.0.1, with the real
// verify service (policy, limits) in front of an in-process phone
// (fakeCaller). The real browser and real phones are in
// internal/interop/eam_test.go.

const (
	testTID      = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testClientID = "3f8c1a2e-0b7d-4e55-9a61-5a2d0c9e7f10"
)

var (
	alice = eamtest.User{OID: "00000000-0000-4000-8000-00000000a11c", Sub: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", UPN: "alice@contoso.example", Name: "Alice"}
	bob   = eamtest.User{OID: "00000000-0000-4000-8000-000000000b0b", Sub: "BBBBBBBBBBBBBBBBBBBBBIkzqFVrSaSaFHy782bbtaQ", UPN: "bob@contoso.example", Name: "Bob"}
	carol = eamtest.User{OID: "00000000-0000-4000-8000-0000000ca201", Sub: "CCCCCCCCCCCCCCCCCCCCCIkzqFVrSaSaFHy782bbtaQ", UPN: "carol@contoso.example", Name: "Carol"}
)

// Numbers of the directory, and what the in-process phone does on each.
const (
	aliceNumber = "+447700900001" // presses #
	bobNumber   = "+447700900005" // presses 5
)

// fakeCaller is the phone: the outcome for each number.
type fakeCaller struct {
	mu       sync.Mutex
	outcomes map[string][]verify.Outcome // consumed in order; the last repeats
	calls    []string
}

func (f *fakeCaller) Run(ctx context.Context, req verify.Request) verify.Result {
	f.mu.Lock()
	f.calls = append(f.calls, req.To)
	out := verify.NoAnswer
	if o := f.outcomes[req.To]; len(o) > 0 {
		out = o[0]
		if len(o) > 1 {
			f.outcomes[req.To] = o[1:]
		}
	}
	f.mu.Unlock()
	if req.OnProgress != nil {
		req.OnProgress(verify.Progress{Stage: verify.StageRinging})
	}
	if out == verify.Cancelled { // rings until cancelled
		<-ctx.Done()
		return verify.Result{Outcome: verify.Cancelled, StartedAt: time.Now(), EndedAt: time.Now()}
	}
	if out != verify.NoAnswer {
		req.OnProgress(verify.Progress{Stage: verify.StageAnswered})
	}
	return verify.Result{Outcome: out, StartedAt: time.Now(), EndedAt: time.Now()}
}

func (f *fakeCaller) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	t      testing.TB
	entra  *eamtest.Entra
	sink   *eamtest.RedirectSink
	srv    *httptest.Server
	p      *Provider
	caller *fakeCaller
	store  *MemoryStore
	logs   *syncBuffer
	ready  bool
	issuer string
}

type harnessOptions struct {
	enrolment string
	maxCalls  int
	trunkDown bool
	outcomes  map[string][]verify.Outcome
	perNumber int // calls per number per minute; default 10
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, logs: &syncBuffer{}, ready: !o.trunkDown}
	h.entra = eamtest.New(t, testTID, testClientID, eamtest.NewKey(t, 0), "entra-test-key-1")
	h.sink = eamtest.NewRedirectSink(t, false)
	if o.outcomes == nil {
		o.outcomes = map[string][]verify.Outcome{aliceNumber: {verify.Verified}, bobNumber: {verify.WrongKey}}
	}
	h.caller = &fakeCaller{outcomes: o.outcomes}
	if o.perNumber == 0 {
		o.perNumber = 10
	}
	logger := slog.New(slog.NewJSONHandler(h.logs, nil))
	st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "hashcall.db"), Node: "eam-test", AuditKey: []byte("audit-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := service.New(h.caller, service.Options{
		Store:         st,
		Rules:         policy.Rules{Regions: []string{"GB"}, Types: []string{"mobile"}, PerNumber: policy.Rate{N: o.perNumber, Per: time.Minute}, Global: policy.Rate{N: 1_000_000, Per: time.Minute}},
		DefaultLocale: "en-GB",
		Prompts:       func(l string) (*prompts.Set, error) { return prompts.Load("", l) },
		Ready:         func() bool { return h.ready },
		Logger:        logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Drain(context.Background(), time.Second) })
	csv := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(csv, []byte("user,oid,mobile\n"+alice.UPN+","+alice.OID+","+aliceNumber+"\n"+bob.UPN+",,07700 900005\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, err := directory.OpenCSV(csv)
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(h.srv.Close)
	h.issuer = h.srv.URL + "/eam"
	key := testSigningKey(t)
	h.store = NewMemoryStore(nil)
	h.p, err = New(Options{
		Issuer: h.issuer, ClientID: testClientID, RedirectURIs: []string{h.sink.URL},
		Hints: &HintVerifier{Keys: &FileKeys{Path: h.entra.WriteJWKS(t)}, Tenants: []string{testTID},
			Audiences: []string{testClientID}, MaxAge: 10 * time.Minute, Skew: time.Minute},
		SigningKeys: []*SigningKey{key}, Enrolment: o.enrolment, Directory: dir,
		Enrolments: h.store, Claims: h.store, Service: svc, Regions: []string{"GB"},
		MaxCalls: o.maxCalls, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = h.p.Handler()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", h.logs.String())
		}
	})
	return h
}

var (
	keyOnce sync.Once
	keyPEM  []byte
)

// testSigningKey is hashcall's signing key: GenerateKey's output, made
// once per test binary (RSA 3072 takes a while).
func testSigningKey(t testing.TB) *SigningKey {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		keyPEM, err = GenerateKey(nil, "hashcall test", time.Now(), 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
	})
	k, err := ParseSigningKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// authForm is an authorization request as Entra's browser POSTs it.
func (h *harness) authForm(u eamtest.User, nonce, state string) url.Values {
	return url.Values{
		"scope": {"openid"}, "response_type": {"id_token"}, "response_mode": {"form_post"},
		"client_id": {testClientID}, "redirect_uri": {h.sink.URL},
		"nonce": {nonce}, "state": {state},
		"id_token_hint":     {h.entra.Hint(h.t, u, time.Now().Add(-30*time.Second), nil)},
		"claims":            {`{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"amr":{"essential":true,"values":["face","fido","fpt","hwk","iris","otp","tel","pop","retina","sc","sms","swk","vbm"]}}}`},
		"client-request-id": {"1f1a3c4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"},
	}
}

type answer struct {
	status int
	url    *url.URL
	body   string
}

func (h *harness) post(path string, form url.Values, lang string) answer {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Request.URL, string(b)}
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// posted returns the fields of a response page's form and its action, or
// nil when the page is not one.
func posted(body string) (url.Values, string) {
	m := regexp.MustCompile(`<form method="post" action="([^"]*)" id="response">`).FindStringSubmatch(body)
	if m == nil {
		return nil, ""
	}
	v := url.Values{}
	for _, f := range hiddenRe.FindAllStringSubmatch(body, -1) {
		v.Set(f[1], html.UnescapeString(f[2]))
	}
	return v, html.UnescapeString(m[1])
}

// sessionPath is the page's path of an answer that landed on it.
func sessionPath(t *testing.T, a answer) string {
	t.Helper()
	if a.status != http.StatusOK || !strings.Contains(a.url.Path, "/s/") {
		t.Fatalf("not on the page: %d %s\n%s", a.status, a.url, a.body)
	}
	return a.url.Path
}

func TestDiscovery(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	res, err := h.srv.Client().Get(h.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Length") == "" || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Length %q, Content-Type %q", res.StatusCode, res.Header.Get("Content-Length"), res.Header.Get("Content-Type"))
	}
	var d map[string]any
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field string
		want  any
	}{
		{"issuer", h.issuer},
		{"authorization_endpoint", h.issuer + "/authorize"},
		{"jwks_uri", h.issuer + "/keys"},
		{"scopes_supported", []any{"openid"}},
		{"response_types_supported", []any{"id_token"}},
		{"response_modes_supported", []any{"form_post"}},
		{"subject_types_supported", []any{"public"}},
		{"id_token_signing_alg_values_supported", []any{"RS256"}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			got, _ := json.Marshal(d[tc.field])
			want, _ := json.Marshal(tc.want)
			if !bytes.Equal(got, want) {
				t.Errorf("%s = %s, want %s", tc.field, got, want)
			}
		})
	}
	cs, _ := d["claims_supported"].([]any)
	for _, c := range []string{"iss", "aud", "sub", "nonce", "iat", "exp", "acr", "amr"} {
		if !slices.Contains(cs, any(c)) {
			t.Errorf("claims_supported %v lacks %s", cs, c)
		}
	}
}

func TestJWKS(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	res, err := h.srv.Client().Get(h.issuer + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	want := h.p.o.SigningKeys[0]
	if k["kid"] != want.KeyID || k["use"] != "sig" || k["alg"] != "RS256" || k["kty"] != "RSA" {
		t.Errorf("key %v: want kid %s, use sig, alg RS256, kty RSA", k, want.KeyID)
	}
	x5c, _ := k["x5c"].([]any)
	if len(x5c) != 1 || k["x5t"] == nil {
		t.Errorf("x5c %v, x5t %v: want the certificate and its thumbprint", x5c, k["x5t"])
	}
}

func TestGenerateKey(t *testing.T) {
	k := testSigningKey(t)
	if k.Key.N.BitLen() != KeyBits {
		t.Errorf("%d bits, want %d", k.Key.N.BitLen(), KeyBits)
	}
	if k.Certs[0].Subject.CommonName != "hashcall test" || k.Certs[0].CheckSignature(k.Certs[0].SignatureAlgorithm, k.Certs[0].RawTBSCertificate, k.Certs[0].Signature) != nil {
		t.Errorf("certificate %v: want a self-signed one for CN hashcall test", k.Certs[0].Subject)
	}
	again, err := ParseSigningKey(keyPEM)
	if err != nil || again.KeyID != k.KeyID {
		t.Errorf("kid not stable: %v %v", again, err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"key_only", keyPEM[:bytes.Index(keyPEM, []byte("-----BEGIN CERTIFICATE"))]},
		{"cert_only", keyPEM[bytes.Index(keyPEM, []byte("-----BEGIN CERTIFICATE")):]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseSigningKey(tc.data); !errors.Is(err, ErrKeyFile) {
				t.Errorf("ParseSigningKey: %v, want ErrKeyFile", err)
			}
		})
	}
}

// verifyToken checks raw with go-oidc against the provider's own
// discovery document and JWKS, and returns its claims.
func (h *harness) verifyToken(raw, nonce string) map[string]any {
	h.t.Helper()
	ctx := oidc.ClientContext(context.Background(), h.srv.Client())
	op, err := oidc.NewProvider(ctx, h.issuer)
	if err != nil {
		h.t.Fatalf("go-oidc discovery: %v", err)
	}
	idt, err := op.Verifier(&oidc.Config{ClientID: testClientID}).Verify(ctx, raw)
	if err != nil {
		h.t.Fatalf("go-oidc: %v", err)
	}
	if idt.Nonce != nonce {
		h.t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
	}
	var c map[string]any
	if err := idt.Claims(&c); err != nil {
		h.t.Fatal(err)
	}
	return c
}

func TestVerifiedSignIn(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	page := h.post("/eam/authorize", h.authForm(alice, "nonce-1", "state-1"), "en-GB,en;q=0.8")
	path := sessionPath(t, page)
	if !strings.Contains(page.body, "ending 001") || !strings.Contains(page.body, "hash key (#)") {
		t.Errorf("page does not say which phone or which key:\n%s", page.body)
	}
	got := h.post(path+"/done", nil, "")
	form, action := posted(got.body)
	if form == nil || action != h.sink.URL {
		t.Fatalf("done: want the response form to %s, got %d\n%s", h.sink.URL, got.status, got.body)
	}
	if form.Get("state") != "state-1" || form.Get("error") != "" {
		t.Fatalf("form %v: want state-1 and no error", form)
	}
	eamtest.CheckClaims(t, h.verifyToken(form.Get("id_token"), "nonce-1"), h.issuer, testClientID, alice.Sub, "nonce-1")
	// The directory's number is enrolled by the verified call.
	if n, err := h.store.Enrolled(context.Background(), testTID, alice.OID); err != nil || n != aliceNumber {
		t.Errorf("enrolled %q, %v; want %s", n, err, aliceNumber)
	}
	// Once answered, the session answers no more.
	if again := h.post(path+"/done", nil, ""); again.status != http.StatusGone {
		t.Errorf("second done: %d, want 410", again.status)
	}
	if logs := h.logs.String(); !strings.Contains(logs, `"client_request_id":"1f1a3c4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"`) ||
		!strings.Contains(logs, `"jti":"`) || strings.Contains(logs, aliceNumber) {
		t.Errorf("audit must carry client_request_id and jti and no unmasked number:\n%s", logs)
	}
}

func TestPageHeaders(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	req, _ := http.NewRequest(http.MethodPost, h.issuer+"/authorize", strings.NewReader(h.authForm(alice, "n-h", "s-h").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
}

func TestLocalePound(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	page := h.post("/eam/authorize", h.authForm(alice, "n-us", "s-us"), "en-US,en;q=0.9")
	if !strings.Contains(page.body, "pound key (#)") || !strings.Contains(page.body, `lang="en-US"`) {
		t.Errorf("en-US page should say pound key:\n%s", page.body)
	}
}

// refused asserts an answer is the error page, that nothing was posted
// back and no call placed.
func (h *harness) refused(a answer, reason string) {
	h.t.Helper()
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, `id="error"`) {
		h.t.Errorf("want the 400 error page, got %d\n%s", a.status, a.body)
	}
	if f, _ := posted(a.body); f != nil {
		h.t.Errorf("the error page posts %v", f)
	}
	if len(h.sink.Seen()) != 0 || len(h.caller.called()) != 0 {
		h.t.Errorf("posted %v, called %v: want nothing", h.sink.Seen(), h.caller.called())
	}
	if !strings.Contains(h.logs.String(), `"reason":"`+reason+`"`) {
		h.t.Errorf("log does not name reason %s:\n%s", reason, h.logs.String())
	}
}

func TestRefuseForeignClientID(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	f := h.authForm(alice, "n", "s")
	f.Set("client_id", "00000000-1111-2222-3333-444444444444")
	h.refused(h.post("/eam/authorize", f, ""), "client_id")
}

func TestRefuseForeignRedirectURI(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	f := h.authForm(alice, "n", "s")
	f.Set("redirect_uri", "https://attacker.example/common/federation/externalauthprovider")
	h.refused(h.post("/eam/authorize", f, ""), "redirect_uri")
}

func TestRefuseBadHintSignature(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	forger := eamtest.New(t, testTID, testClientID, eamtest.NewKey(t, 1), h.entra.KeyID) // same kid, other key
	f := h.authForm(alice, "n", "s")
	f.Set("id_token_hint", forger.Hint(t, alice, time.Now(), nil))
	h.refused(h.post("/eam/authorize", f, ""), "hint_signature")
}

func TestRefuseUnknownTenant(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	other := "11111111-2222-4333-8444-555555555555"
	f := h.authForm(alice, "n", "s")
	f.Set("id_token_hint", h.entra.Hint(t, alice, time.Now(), map[string]any{"tid": other, "iss": EntraIssuer(other)}))
	h.refused(h.post("/eam/authorize", f, ""), "hint_tenant")
}

func TestRefuseHintTooOld(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	f := h.authForm(alice, "n", "s")
	f.Set("id_token_hint", h.entra.Hint(t, alice, time.Now().Add(-12*time.Minute), nil))
	h.refused(h.post("/eam/authorize", f, ""), "hint_age")
}

func TestRefuseReplayedNonceState(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	f := h.authForm(alice, "n-replay", "s-replay")
	sessionPath(t, h.post("/eam/authorize", f, ""))
	calls := len(h.caller.called())
	a := h.post("/eam/authorize", f, "")
	if a.status != http.StatusBadRequest || len(h.caller.called()) != calls {
		t.Errorf("replay: %d, calls %d → %d; want 400 and no new call", a.status, calls, len(h.caller.called()))
	}
	if !strings.Contains(h.logs.String(), `"reason":"replay"`) {
		t.Errorf("replay not logged")
	}
}

func TestWrongKeyDenied(t *testing.T) {
	h := newHarness(t, harnessOptions{maxCalls: 1})
	path := sessionPath(t, h.post("/eam/authorize", h.authForm(bob, "n-5", "s-5"), ""))
	form, _ := posted(h.post(path+"/done", nil, "").body)
	if form.Get("error") != "access_denied" || form.Get("state") != "s-5" || form.Get("id_token") != "" {
		t.Errorf("form %v: want access_denied with state and no id_token", form)
	}
}

func TestNoAnswerThenCallMeAgain(t *testing.T) {
	h := newHarness(t, harnessOptions{maxCalls: 2, outcomes: map[string][]verify.Outcome{aliceNumber: {verify.NoAnswer, verify.Verified}}})
	path := sessionPath(t, h.post("/eam/authorize", h.authForm(alice, "n-again", "s-again"), ""))
	// The first call is not answered: done stays on the page, which offers
	// Call me again.
	back := h.post(path+"/done", nil, "")
	if f, _ := posted(back.body); f != nil || !strings.Contains(back.body, "There was no answer.") ||
		strings.Contains(back.body, `id="retry" hidden`) {
		t.Fatalf("after no answer: want the page with Call me again, got\n%s", back.body)
	}
	sessionPath(t, h.post(path+"/call", nil, ""))
	form, _ := posted(h.post(path+"/done", nil, "").body)
	if form.Get("id_token") == "" {
		t.Fatalf("second call verified: form %v", form)
	}
	if c := h.caller.called(); len(c) != 2 {
		t.Errorf("calls %v, want 2", c)
	}
	// No third call: the limit is two.
	h.post(path+"/call", nil, "")
	if c := h.caller.called(); len(c) != 2 {
		t.Errorf("calls %v after the answer, want 2", c)
	}
}

func TestNoAnswerDenied(t *testing.T) {
	h := newHarness(t, harnessOptions{maxCalls: 1, outcomes: map[string][]verify.Outcome{aliceNumber: {verify.NoAnswer}}})
	path := sessionPath(t, h.post("/eam/authorize", h.authForm(alice, "n-na", "s-na"), ""))
	form, _ := posted(h.post(path+"/done", nil, "").body)
	if form.Get("error") != "access_denied" || !strings.Contains(form.Get("error_description"), "no_answer") {
		t.Errorf("form %v: want access_denied (no_answer)", form)
	}
}

func TestCancelDenied(t *testing.T) {
	h := newHarness(t, harnessOptions{outcomes: map[string][]verify.Outcome{aliceNumber: {verify.Cancelled}}})
	path := sessionPath(t, h.post("/eam/authorize", h.authForm(alice, "n-c", "s-c"), ""))
	form, _ := posted(h.post(path+"/cancel", nil, "").body)
	if form.Get("error") != "access_denied" || form.Get("state") != "s-c" {
		t.Errorf("form %v: want access_denied", form)
	}
}

func TestTrunkDownTemporarilyUnavailable(t *testing.T) {
	h := newHarness(t, harnessOptions{trunkDown: true})
	a := h.post("/eam/authorize", h.authForm(alice, "n-td", "s-td"), "")
	form, _ := posted(a.body)
	if form.Get("error") != "temporarily_unavailable" || form.Get("state") != "s-td" {
		t.Errorf("form %v: want temporarily_unavailable", form)
	}
}

func TestUnknownUserEnrolmentOff(t *testing.T) {
	h := newHarness(t, harnessOptions{enrolment: EnrolOff})
	// With enrolment off even the directory is not asked: only enrolled
	// numbers are called.
	for _, u := range []eamtest.User{carol, alice} {
		form, _ := posted(h.post("/eam/authorize", h.authForm(u, "n-"+u.Name, "s-"+u.Name), "").body)
		if form.Get("error") != "access_denied" {
			t.Errorf("%s: form %v, want access_denied", u.Name, form)
		}
	}
	if c := h.caller.called(); len(c) != 0 {
		t.Errorf("called %v", c)
	}
}

func TestUnknownUserEnrolmentDirectory(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	form, _ := posted(h.post("/eam/authorize", h.authForm(carol, "n-carol", "s-carol"), "").body)
	if form.Get("error") != "access_denied" {
		t.Errorf("form %v, want access_denied", form)
	}
}

func TestSelfEnrolPremiumRateRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{enrolment: EnrolSelf})
	page := h.post("/eam/authorize", h.authForm(carol, "n-self", "s-self"), "")
	path := sessionPath(t, page)
	if !strings.Contains(page.body, `name="number"`) {
		t.Fatalf("self-enrolment page has no number field:\n%s", page.body)
	}
	// 09xx is UK premium rate: refused by policy, nothing called or
	// enrolled, the page asks again.
	again := h.post(path+"/call", url.Values{"region": {"GB"}, "number": {"0909 8790000"}}, "")
	if !strings.Contains(again.body, "That number can") || !strings.Contains(again.body, `name="number"`) {
		t.Errorf("want the refusal and the form again:\n%s", again.body)
	}
	if c := h.caller.called(); len(c) != 0 {
		t.Errorf("called %v", c)
	}
	if _, err := h.store.Enrolled(context.Background(), testTID, carol.OID); !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("enrolled: %v", err)
	}
	// A mobile is called, and enrolled once verified.
	h.caller.outcomes["+447700900009"] = []verify.Outcome{verify.Verified}
	sessionPath(t, h.post(path+"/call", url.Values{"region": {"GB"}, "number": {"07700 900009"}}, ""))
	form, _ := posted(h.post(path+"/done", nil, "").body)
	if form.Get("id_token") == "" {
		t.Fatalf("form %v", form)
	}
	if n, err := h.store.Enrolled(context.Background(), testTID, carol.OID); err != nil || n != "+447700900009" {
		t.Errorf("enrolled %q, %v", n, err)
	}
	if !strings.Contains(h.logs.String(), "audit: eam enrolment recorded") {
		t.Errorf("enrolment not audited")
	}
}

func TestStatusJSON(t *testing.T) {
	h := newHarness(t, harnessOptions{outcomes: map[string][]verify.Outcome{aliceNumber: {verify.Cancelled}}})
	path := sessionPath(t, h.post("/eam/authorize", h.authForm(alice, "n-st", "s-st"), ""))
	res, err := h.srv.Client().Get(h.srv.URL + path + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v view
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.Final || (v.Stage != "ringing" && v.Stage != "calling") {
		t.Errorf("status %+v: want ringing or calling, not final", v)
	}
	h.post(path+"/cancel", nil, "")
}
