package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/internal/store"
	"github.com/hashcall/hashcall/verify"
)

const otherToken = "other-token-0123456789abcdef"

// TestIdempotencyKeyBoundToRequest: a key replays its verification only for
// the same request (method, number in E.164, locale, reference, callback);
// another request under the key is refused with 422 and places no call.
func TestIdempotencyKeyBoundToRequest(t *testing.T) {
	const first = `{"to":"+447700900123","locale":"en-GB","reference":"r1"}`
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"same request", first, 202, ""},
		{"same number, national form", `{"to":"07700 900123","locale":"en-GB","reference":"r1"}`, 202, ""},
		{"locale in other case", `{"to":"+447700900123","locale":"en-gb","reference":"r1"}`, 202, ""},
		{"another number", `{"to":"+447700900124","locale":"en-GB","reference":"r1"}`, 422, "idempotency_key_reused"},
		{"another locale", `{"to":"+447700900123","locale":"en-US","reference":"r1"}`, 422, "idempotency_key_reused"},
		{"default locale omitted", `{"to":"+447700900123","reference":"r1"}`, 202, ""},
		{"another reference", `{"to":"+447700900123","locale":"en-GB","reference":"r2"}`, 422, "idempotency_key_reused"},
		{"no reference", `{"to":"+447700900123","locale":"en-GB"}`, 422, "idempotency_key_reused"},
		{"a callback added", `{"to":"+447700900123","locale":"en-GB","reference":"r1","callback_url":"http://127.0.0.1:9/cb"}`, 422, "idempotency_key_reused"},
	}
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	defer close(fc.hold)
	s, srv := newTestService(t, fc, func(o *Options) {
		o.CallbackHosts, o.CallbackSecret = []string{"127.0.0.1"}, strings.Repeat("s", MinCallbackSecret)
	})
	r := do(t, srv, "POST", "/v1/verifications", first, "Idempotency-Key", "k1")
	if r.status != 202 {
		t.Fatalf("first: %d %s", r.status, r.raw)
	}
	id := r.body["id"]
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, srv, "POST", "/v1/verifications", tc.body, "Idempotency-Key", "k1")
			if r.status != tc.status || errCode(r) != tc.code {
				t.Fatalf("%d %s, want %d %q", r.status, r.raw, tc.status, tc.code)
			}
			if tc.status == 202 && r.body["id"] != id {
				t.Errorf("id %v, want the first request's %v", r.body["id"], id)
			}
		})
	}
	if p := fc.placed.Load(); p != 1 {
		t.Errorf("%d calls placed, want 1", p)
	}
	// The same key under another token is another key.
	if r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900124"}`, "Idempotency-Key", "k1", "Authorization", "Bearer "+otherToken); r.status != 401 {
		t.Fatalf("other token not configured: %d", r.status)
	}
	s.Reload([]string{token, otherToken}, s.rules)
	if r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900124"}`, "Idempotency-Key", "k1", "Authorization", "Bearer "+otherToken); r.status != 202 || r.body["id"] == id {
		t.Errorf("the key under another token: %d %s, want a new verification", r.status, r.raw)
	}
}

// TestRequestDigest: fields are length-prefixed, so moving text between
// them changes the digest.
func TestRequestDigest(t *testing.T) {
	a := RequestDigest("POST", "+447700900123", "en-GB", "ab", "", "")
	if a != RequestDigest("POST", "+447700900123", "EN-gb", "ab", "", "") {
		t.Error("locale case changes the digest")
	}
	if a != RequestDigest("POST", "+447700900123", "en-GB", "ab", "", "hash") {
		t.Error("mode hash changes the digest")
	}
	for _, d := range [][32]byte{
		RequestDigest("POST", "+447700900123", "en-GB", "a", "b", ""),
		RequestDigest("POST", "+447700900123", "en-GBa", "b", "", ""),
		RequestDigest("GET", "+447700900123", "en-GB", "ab", "", ""),
		RequestDigest("POST", "+447700900123", "en-GB", "ab", "", "code"),
	} {
		if d == a {
			t.Error("two requests share a digest")
		}
	}
}

// TestCrossTokenScope: a verification is visible only to the token that
// created it: another token gets 404 on GET and DELETE (the same answer as
// an unknown id), and the call goes on.
func TestCrossTokenScope(t *testing.T) {
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	_, srv := newTestService(t, fc, func(o *Options) { o.Tokens = []string{token, otherToken} })
	r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`)
	if r.status != 202 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	b := []string{"Authorization", "Bearer " + otherToken}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/verifications/" + id},
		{"GET", "/v1/verifications/" + id + "?wait=1s"},
		{"DELETE", "/v1/verifications/" + id},
	} {
		if r := do(t, srv, tc.method, tc.path, "", b...); r.status != 404 || errCode(r) != "not_found" {
			t.Errorf("token B %s %s: %d %s, want 404 not_found", tc.method, tc.path, r.status, r.raw)
		}
	}
	if r := do(t, srv, "GET", "/v1/verifications/"+id, ""); r.status != 200 || r.body["status"] != StatusAnswered {
		t.Errorf("token A after B's DELETE: %d %s, want the call still answered", r.status, r.raw)
	}
	close(fc.hold)
	if r := do(t, srv, "GET", "/v1/verifications/"+id+"?wait=5s", ""); r.body["outcome"] != "verified" {
		t.Errorf("token A: %s, want verified", r.raw)
	}
}

// TestQuotaSpentOnlyWhenPlaced: requests refused for any reason other than
// the limits themselves (max_concurrent, trunk down, draining, the number
// rules) spend none of the per-number or global quota.
func TestQuotaSpentOnlyWhenPlaced(t *testing.T) {
	const number = `{"to":"+447700900123"}`
	tests := []struct {
		name   string
		setup  func(t *testing.T, s *Service, srv *httptest.Server, fc *fakeCaller, up *atomic.Bool)
		body   string
		status int
		code   string
	}{
		{"max_concurrent 429", func(t *testing.T, _ *Service, srv *httptest.Server, _ *fakeCaller, _ *atomic.Bool) {
			// The one slot is taken by a call to another number.
			if r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900999"}`); r.status != 202 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		}, number, 429, "rate_limited"},
		{"trunk_down 503", func(_ *testing.T, _ *Service, _ *httptest.Server, _ *fakeCaller, up *atomic.Bool) { up.Store(false) }, number, 503, "trunk_down"},
		{"policy 422", nil, `{"to":"+442079460123"}`, 422, "policy_refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
			var up atomic.Bool
			up.Store(true)
			s, srv := newTestService(t, fc, func(o *Options) {
				o.MaxConcurrent = 1
				o.Ready = up.Load
				o.Rules.PerNumber = policy.Rate{N: 3, Per: 15 * time.Minute}
				o.Rules.Global = policy.Rate{N: 4, Per: time.Minute}
			})
			if tc.setup != nil {
				tc.setup(t, s, srv, fc, &up)
			}
			for i := range 5 {
				if r := do(t, srv, "POST", "/v1/verifications", tc.body); r.status != tc.status || errCode(r) != tc.code {
					t.Fatalf("refused request %d: %d %s, want %d %s", i, r.status, r.raw, tc.status, tc.code)
				}
			}
			up.Store(true)
			close(fc.hold) // the slot frees
			waitIdle(t, s)
			placedBefore := fc.placed.Load()
			// The number still has its 3 calls; each is placed.
			for i := range 3 {
				r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`)
				if r.status != 202 {
					t.Fatalf("call %d after the refusals: %d %s, want 202", i+1, r.status, r.raw)
				}
				waitIdle(t, s)
			}
			if r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`); r.status != 429 || !strings.Contains(r.raw, "per_number_limit") && !strings.Contains(r.raw, "global_rate") {
				t.Errorf("the 4th call: %d %s, want 429", r.status, r.raw)
			}
			if got := fc.placed.Load() - placedBefore; got != 3 {
				t.Errorf("%d calls placed, want 3", got)
			}
		})
	}
	t.Run("draining 503", func(t *testing.T) {
		fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
		close(fc.hold)
		s, srv := newTestService(t, fc, nil)
		s.Drain(context.Background(), time.Second)
		for range 5 {
			if r := do(t, srv, "POST", "/v1/verifications", number); r.status != 503 || errCode(r) != "draining" {
				t.Fatalf("%d %s, want 503 draining", r.status, r.raw)
			}
		}
		n, _ := policy.Parse("+447700900123", "GB")
		// The number's window in the store is untouched: 3 calls fit.
		for i := range 3 {
			_, _, err := s.store.Create(context.Background(), store.Create{ID: fmt.Sprintf("vrf_quota_%d", i), Scope: "t", Status: StatusQueued,
				Limits: []store.Limit{{Kind: "number", Key: s.store.NumberHMAC(n.E164), N: s.rules.PerNumber.N, Per: s.rules.PerNumber.Per}}})
			if err != nil {
				t.Fatalf("quota %d after the 503s: %v", i+1, err)
			}
		}
	})
}

// waitIdle waits until no call is in progress.
func waitIdle(t *testing.T, s *Service) {
	t.Helper()
	done := make(chan struct{})
	go func() { s.calls.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("calls still in progress after 10 s")
	}
}

// panicCaller panics for one number and verifies the others.
type panicCaller struct{ bad string }

func (p panicCaller) Run(_ context.Context, req verify.Request) verify.Result {
	if req.To == p.bad {
		keys := []byte(req.To)[:0]
		_ = keys[len(req.To)] // index out of range: a runtime panic
	}
	return verify.Result{Outcome: verify.Verified, SIPCode: 200}
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

// TestCallPanicIsContained: a panic in one call's goroutine makes that
// verification failed with error "internal", is logged with its stack and
// counted, and the service goes on serving other calls.
func TestCallPanicIsContained(t *testing.T) {
	var logs syncBuffer
	s, srv := newTestService(t, panicCaller{bad: "+447700900666"}, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	bad := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900666"}`)
	good := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`)
	if bad.status != 202 || good.status != 202 {
		t.Fatalf("%d %s; %d %s", bad.status, bad.raw, good.status, good.raw)
	}
	rb := do(t, srv, "GET", "/v1/verifications/"+bad.body["id"].(string)+"?wait=5s", "")
	rg := do(t, srv, "GET", "/v1/verifications/"+good.body["id"].(string)+"?wait=5s", "")
	if rb.body["outcome"] != "failed" || rb.body["error"] != "internal" || rb.body["status"] != StatusCompleted {
		t.Errorf("the panicking call: %s, want completed, failed, error internal", rb.raw)
	}
	if rg.body["outcome"] != "verified" {
		t.Errorf("the other call: %s, want verified", rg.raw)
	}
	// Later calls still go.
	again := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900124"}`)
	if r := do(t, srv, "GET", "/v1/verifications/"+again.body["id"].(string)+"?wait=5s", ""); r.body["outcome"] != "verified" {
		t.Errorf("a call after the panic: %s", r.raw)
	}
	waitIdle(t, s)
	m := do(t, srv, "GET", "/metrics", "").raw
	for _, line := range []string{"hashcall_call_panics_total 1\n", "hashcall_active_calls 0\n", `hashcall_verifications_total{outcome="failed"} 1` + "\n"} {
		if !strings.Contains(m, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	l := logs.String()
	if !strings.Contains(l, `"msg":"call panicked"`) || !strings.Contains(l, "index out of range") || !strings.Contains(l, "panicCaller.Run") {
		t.Errorf("the panic is not logged with its stack:\n%s", l)
	}
}

// TestMatchCallbackHost is the table of http.callback_hosts matching.
func TestMatchCallbackHost(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		host     string // a URL's host[:port]
		scheme   string
		want     bool
	}{
		{"exact", []string{"auth.example.org"}, "auth.example.org", "https", true},
		{"exact, any port", []string{"auth.example.org"}, "auth.example.org:8443", "https", true},
		{"case and trailing dot", []string{"Auth.Example.ORG"}, "AUTH.example.org.", "https", true},
		{"another host", []string{"auth.example.org"}, "evil.example.org", "https", false},
		{"suffix is not a match", []string{"example.org"}, "evilexample.org", "https", false},
		{"wildcard subdomain", []string{"*.example.org"}, "a.example.org", "https", true},
		{"wildcard deeper", []string{"*.example.org"}, "a.b.example.org", "https", true},
		{"wildcard not the apex", []string{"*.example.org"}, "example.org", "https", false},
		{"wildcard on a dot boundary", []string{"*.example.org"}, "evilexample.org", "https", false},
		{"wildcard, empty label", []string{"*.example.org"}, ".example.org", "https", false},
		{"wildcard, empty label inside", []string{"*.example.org"}, "a..example.org", "https", false},
		{"wildcard elsewhere", []string{"*.example.org"}, "example.org.evil.net", "https", false},
		{"port given, matches", []string{"auth.example.org:8443"}, "auth.example.org:8443", "https", true},
		{"port given, other port", []string{"auth.example.org:8443"}, "auth.example.org:9443", "https", false},
		{"port given, scheme default", []string{"auth.example.org:443"}, "auth.example.org", "https", true},
		{"port given, http default", []string{"auth.example.org:443"}, "auth.example.org", "http", false},
		{"wildcard with port", []string{"*.example.net:8443"}, "x.example.net:8443", "https", true},
		{"wildcard with port, other", []string{"*.example.net:8443"}, "x.example.net", "https", false},
		{"ip literal", []string{"127.0.0.1"}, "127.0.0.1:8080", "http", true},
		{"ip literal, other", []string{"127.0.0.1"}, "127.0.0.2:8080", "http", false},
		{"ipv6 literal", []string{"[::1]:8080"}, "[::1]:8080", "http", true},
		{"ip is not a name", []string{"localhost"}, "127.0.0.1", "http", false},
		{"wildcard never an ip", []string{"*.0.0.1"}, "127.0.0.1", "http", false},
		{"none listed", nil, "auth.example.org", "https", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def := map[string]string{"http": "80", "https": "443"}[tc.scheme]
			if got := MatchCallbackHost(tc.patterns, tc.host, def); got != tc.want {
				t.Errorf("MatchCallbackHost(%q, %q) = %v, want %v", tc.patterns, tc.host, got, tc.want)
			}
			g, err := NewCallbackGuard(context.Background(), tc.patterns, nil, nil)
			if err != nil {
				return // an entry config validation refuses
			}
			if got := g.AllowURL(tc.scheme+"://"+tc.host+"/cb") == nil; got != tc.want {
				t.Errorf("AllowURL(%s://%s) = %v, want %v", tc.scheme, tc.host, got, tc.want)
			}
		})
	}
}

// counter is an HTTP endpoint that counts the requests it gets.
type counter struct {
	srv *httptest.Server
	n   atomic.Int32
}

func newCounter(t *testing.T, addr string, h http.HandlerFunc) *counter {
	t.Helper()
	c := &counter{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	c.srv.Listener.Close()
	c.srv.Listener = ln
	c.srv.Start()
	t.Cleanup(c.srv.Close)
	return c
}

// TestCallbackGuardConnect: the callback client connects only to an
// allowed host's addresses and never follows a redirect.
func TestCallbackGuardConnect(t *testing.T) {
	other := newCounter(t, "127.0.0.1:0", nil)
	redirector := newCounter(t, "127.0.0.1:0", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.srv.URL+"/stolen", http.StatusFound)
	})
	// localhost resolves to 127.0.0.1 (and ::1); its allowed address is
	// 127.0.0.2: what a rebound name looks like.
	_, port, _ := net.SplitHostPort(other.srv.Listener.Addr().String())
	tests := []struct {
		name      string
		hosts     []string
		addresses []string
		url       string
		wantErr   error
		status    int
	}{
		{"pinned address, name resolves elsewhere", []string{"localhost"}, []string{"localhost=127.0.0.2"}, "http://localhost:" + port + "/cb", ErrCallbackAddress, 0},
		{"ip literal not listed", []string{"localhost"}, nil, other.srv.URL + "/cb", ErrCallbackAddress, 0},
		{"resolved at start, allowed", []string{"localhost"}, nil, "http://localhost:" + port + "/cb", nil, 204},
		{"redirect not followed", []string{"127.0.0.1"}, nil, redirector.srv.URL + "/cb", nil, http.StatusFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := other.n.Load()
			g, err := NewCallbackGuard(context.Background(), tc.hosts, tc.addresses, nil)
			if err != nil {
				t.Fatal(err)
			}
			var blocked []string
			g.onBlocked = func(r string) { blocked = append(blocked, r) }
			res, err := g.Client(5*time.Second).Post(tc.url, "application/json", strings.NewReader("{}"))
			if res != nil {
				res.Body.Close()
			}
			if !errors.Is(err, tc.wantErr) || (err == nil && res.StatusCode != tc.status) {
				t.Fatalf("POST %s: %v %v, want %v status %d", tc.url, res, err, tc.wantErr, tc.status)
			}
			wantOther := int32(0)
			if tc.status == 204 {
				wantOther = 1
			}
			if got := other.n.Load() - before; got != wantOther {
				t.Errorf("the other host got %d requests, want %d", got, wantOther)
			}
			if tc.wantErr != nil && (len(blocked) == 0 || blocked[0] != "address") || tc.status == 302 && (len(blocked) != 1 || blocked[0] != "redirect") {
				t.Errorf("blocked %v", blocked)
			}
		})
	}
}

// TestNewRefusesWeakCallbackSecret: callback hosts without a secret of at
// least 32 bytes are a start-up error naming http.callback_secret.
func TestNewRefusesWeakCallbackSecret(t *testing.T) {
	for _, secret := range []string{"", "short", strings.Repeat("x", MinCallbackSecret-1)} {
		_, err := New(&fakeCaller{}, Options{CallbackHosts: []string{"127.0.0.1"}, CallbackSecret: secret, Prompts: nil})
		if !errors.Is(err, ErrCallbackSecret) || !strings.Contains(err.Error(), "http.callback_secret") {
			t.Errorf("secret of %d bytes: %v, want ErrCallbackSecret", len(secret), err)
		}
	}
}

func FuzzParseWait(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseWait(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("parseWait(%q) = %v with error %v", s, d, err)
			}
			return
		}
		if d < 0 || d > maxWait {
			t.Fatalf("parseWait(%q) = %v, outside 0 to %v", s, d, maxWait)
		}
	})
}

func FuzzMatchCallbackHost(f *testing.F) {
	f.Fuzz(func(t *testing.T, pattern, host string) {
		got := MatchCallbackHost([]string{pattern}, host, "443")
		if !got {
			return
		}
		p, err := parseHostPattern(pattern)
		if err != nil {
			t.Fatalf("an unparsable pattern %q matched %q", pattern, host)
		}
		h := host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = hh
		}
		h = normalHost(h)
		switch {
		case p.wildcard:
			// On a dot boundary, with a label before it.
			if !strings.HasSuffix(h, "."+p.host) || len(h) <= len(p.host)+1 || strings.HasPrefix(h, ".") {
				t.Fatalf("wildcard %q matched %q", pattern, host)
			}
		case p.ip.IsValid():
		default:
			if h != p.host {
				t.Fatalf("%q matched %q", pattern, host)
			}
		}
	})
}

// A bearer token places at most policy.per_token_rate calls: a leaked token
// is bounded on its own, another token is not held back by it, and the
// doors (Create, as RADIUS and the Entra page call it) don't count against
// any token.
func TestPerTokenRate(t *testing.T) {
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	defer close(fc.hold)
	s, srv := newTestService(t, fc, func(o *Options) {
		o.Tokens = []string{token, otherToken}
		o.Rules.PerToken = policy.Rate{N: 2, Per: time.Minute}
	})
	steps := []struct {
		name, tok, to string
		want          int
	}{
		{"first", token, "+447700900131", 202},
		{"second", token, "+447700900132", 202},
		{"third is over the token's rate", token, "+447700900133", 429},
		{"another token", otherToken, "+447700900134", 202},
	}
	for _, st := range steps {
		r := do(t, srv, "POST", "/v1/verifications", `{"to":"`+st.to+`"}`, "Authorization", "Bearer "+st.tok)
		if r.status != st.want {
			t.Fatalf("%s: %d %s, want %d", st.name, r.status, r.raw, st.want)
		}
		if st.want == 429 && (!strings.Contains(r.raw, "per_token_rate") || r.header.Get("Retry-After") == "") {
			t.Errorf("%s: the 429 does not name the rule or lacks Retry-After: %s", st.name, r.raw)
		}
	}
	if _, err := s.Create(context.Background(), "radius", "", CreateRequest{To: "+447700900135"}); err != nil {
		t.Errorf("a door's request counted against a token: %v", err)
	}
}
