package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/internal/store"
	"github.com/hashcall/hashcall/internal/testwait"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

const token = "test-token-0123456789abcdef"

// fakeCaller stands in for the verifier: it "answers" and returns its
// outcome when released, or cancelled when its context ends.
type fakeCaller struct {
	mu      sync.Mutex
	calls   []string
	outcome verify.Outcome
	hold    chan struct{} // closed to let calls finish
	placed  atomic.Int32
	// dialog, when set, is reported with the answer; answered then sees
	// each call answered.
	dialog   *sip.DialogState
	answered chan struct{}
}

func (f *fakeCaller) Run(ctx context.Context, req verify.Request) verify.Result {
	f.placed.Add(1)
	f.mu.Lock()
	f.calls = append(f.calls, req.To)
	f.mu.Unlock()
	req.OnProgress(verify.Progress{Stage: verify.StageDialling})
	req.OnProgress(verify.Progress{Stage: verify.StageAnswered, Dialog: f.dialog})
	if f.answered != nil {
		f.answered <- struct{}{}
	}
	select {
	case <-f.hold:
		return verify.Result{Outcome: f.outcome, SIPCode: 200, DTMFSource: "rfc4733", Codec: "PCMA", SetupMS: 120, HashToDecisionMS: 40}
	case <-ctx.Done():
		return verify.Result{Outcome: verify.Cancelled, SIPCode: 200}
	}
}

func newTestService(t *testing.T, caller Caller, mod func(*Options)) (*Service, *httptest.Server) {
	t.Helper()
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Tokens:        []string{token},
		Rules:         policy.Rules{Regions: []string{"GB"}, Types: []string{"mobile"}, PerNumber: policy.Rate{N: 3, Per: 15 * time.Minute}, Global: policy.Rate{N: 60, Per: time.Minute}},
		MaxConcurrent: 50,
		QueueWait:     50 * time.Millisecond,
		Prompts: func(l string) (*prompts.Set, error) {
			if l != "en-GB" && l != "en-US" {
				return nil, fmt.Errorf("unknown locale %q", l)
			}
			return set, nil
		},
	}
	if mod != nil {
		mod(&opts)
	}
	if opts.Store == nil {
		opts.Store = openStore(t, filepath.Join(t.TempDir(), "hashcall.db"), "node-a")
	}
	s, err := New(caller, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

// placedExactly waits for n calls of fc to be answered (fc.answered must
// be buffered for them), checks that n were placed, then lets every call
// end and drains s, and checks that still no other call was placed: a
// stray call would have run by the end of the drain.
func placedExactly(t *testing.T, s *Service, fc *fakeCaller, n int32) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for i := range n {
		select {
		case <-fc.answered:
		case <-timeout:
			t.Fatalf("%d of %d calls answered after 5 s", i, n)
		}
	}
	if p := fc.placed.Load(); p != n {
		t.Errorf("%d calls placed, want %d", p, n)
	}
	close(fc.hold)
	s.Drain(context.Background(), 5*time.Second)
	if p := fc.placed.Load(); p != n {
		t.Errorf("%d calls placed by the end, want %d", p, n)
	}
}

// logTo makes the service log (as text) to out.
func logTo(out *testwait.Output) func(*Options) {
	return func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(out, nil)) }
}

// waitLog waits up to 5 s for sub in out.
func waitLog(t *testing.T, out *testwait.Output, sub string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := out.WaitContains(ctx, sub); err != nil {
		t.Fatalf("no %q in the log: %v\n%s", sub, err, out)
	}
}

// openStore opens a SQLite store for a test, closed when it ends.
func openStore(t *testing.T, path, node string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Path: path, Node: node, AuditKey: []byte("audit-key-0123456789"), Lease: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) resp {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

func errCode(r resp) string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestErrors(t *testing.T) {
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	defer close(fc.hold)
	_, srv := newTestService(t, fc, nil)
	big := `{"to":"+447700900123","reference":"` + strings.Repeat("x", 20000) + `"}`
	tests := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code                     string
	}{
		{"no_token", "POST", "/v1/verifications", `{"to":"+447700900123"}`, []string{"Authorization", ""}, 401, "unauthorized"},
		{"wrong_token", "GET", "/v1/verifications/x", "", []string{"Authorization", "Bearer nope"}, 401, "unauthorized"},
		{"basic_auth_refused", "GET", "/v1/verifications/x", "", []string{"Authorization", "Basic " + token}, 401, "unauthorized"},
		{"malformed_json", "POST", "/v1/verifications", `{"to":`, nil, 400, "bad_request"},
		{"unknown_field", "POST", "/v1/verifications", `{"to":"+447700900123","pin":"1"}`, nil, 400, "bad_request"},
		{"missing_to", "POST", "/v1/verifications", `{}`, nil, 400, "bad_request"},
		{"bad_number", "POST", "/v1/verifications", `{"to":"+44abc"}`, nil, 400, "bad_number"},
		{"long_reference", "POST", "/v1/verifications", `{"to":"+447700900123","reference":"` + strings.Repeat("r", 129) + `"}`, nil, 400, "bad_request"},
		{"body_too_large", "POST", "/v1/verifications", big, nil, 413, "body_too_large"},
		{"landline_refused", "POST", "/v1/verifications", `{"to":"+442079460000"}`, nil, 422, "policy_refused"},
		{"premium_refused", "POST", "/v1/verifications", `{"to":"+449098790000"}`, nil, 422, "policy_refused"},
		{"foreign_refused", "POST", "/v1/verifications", `{"to":"+12015550123"}`, nil, 422, "policy_refused"},
		{"unknown_locale", "POST", "/v1/verifications", `{"to":"+447700900123","locale":"xx-XX"}`, nil, 400, "bad_locale"},
		{"callback_host_not_listed", "POST", "/v1/verifications", `{"to":"+447700900123","callback_url":"https://evil.example/cb"}`, nil, 400, "callback_not_allowed"},
		{"unknown_id", "GET", "/v1/verifications/vrf_nope", "", nil, 404, "not_found"},
		{"unknown_id_delete", "DELETE", "/v1/verifications/vrf_nope", "", nil, 404, "not_found"},
		{"bad_wait", "GET", "/v1/verifications/x?wait=soon", "", nil, 404, "not_found"},
		{"method_not_allowed", "PUT", "/v1/verifications", "", nil, 405, "method_not_allowed"},
		{"no_such_path", "GET", "/v2/x", "", nil, 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, srv, tc.method, tc.path, tc.body, tc.hdr...)
			if r.status != tc.status || errCode(r) != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", r.status, errCode(r), r.raw, tc.status, tc.code)
			}
			if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
			}
		})
	}
	if n := fc.placed.Load(); n != 0 {
		t.Errorf("%d calls placed by refused requests", n)
	}
	// The 422 names the rule.
	r := do(t, srv, "POST", "/v1/verifications", `{"to":"+442079460000"}`)
	if !strings.Contains(r.raw, "allowed_types") {
		t.Errorf("422 does not name the rule: %s", r.raw)
	}
}

func TestCreateLongPollAndMetrics(t *testing.T) {
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	s, srv := newTestService(t, fc, nil)
	r := do(t, srv, "POST", "/v1/verifications", `{"to":"07700 900123","reference":"login-42"}`)
	if r.status != 202 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	id, _ := r.body["id"].(string)
	if r.body["to"] != "+4477*****123" || r.body["reference"] != "login-42" || id == "" {
		t.Errorf("body %v", r.body)
	}
	if strings.Contains(r.raw, "900123\"") && !strings.Contains(r.raw, "***123") {
		t.Error("number not masked")
	}
	// Not complete yet: a short wait returns the current status.
	r = do(t, srv, "GET", "/v1/verifications/"+id+"?wait=50ms", "")
	if r.status != 200 || r.body["status"] == "completed" {
		t.Fatalf("%d %v", r.status, r.body)
	}
	// The call ends once the long-poll is in: it returns on the completion.
	polling := make(chan struct{})
	lp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") == "30s" {
			close(polling)
		}
		s.Handler().ServeHTTP(w, r)
	}))
	defer lp.Close()
	go func() { <-polling; close(fc.hold) }()
	start := time.Now()
	r = do(t, lp, "GET", "/v1/verifications/"+id+"?wait=30s", "")
	if r.body["status"] != "completed" || r.body["outcome"] != "verified" || r.body["dtmf_source"] != "rfc4733" {
		t.Fatalf("after long-poll: %v", r.body)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("long-poll did not return on completion")
	}
	if fc.calls[0] != "+447700900123" {
		t.Errorf("dialled %q, want E.164", fc.calls[0])
	}
	_ = s
	m := do(t, srv, "GET", "/metrics", "")
	for _, want := range []string{`hashcall_verifications_total{outcome="verified"} 1`, `hashcall_dtmf_source_total{source="rfc4733"} 1`,
		`hashcall_sip_final_responses_total{code="200"} 1`, "hashcall_call_setup_seconds_count 1", "hashcall_hash_to_decision_seconds_count 1", "hashcall_active_calls 0"} {
		if !strings.Contains(m.raw, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestIdempotency(t *testing.T) {
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified, answered: make(chan struct{}, 8)}
	s, srv := newTestService(t, fc, nil)
	a := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`, "Idempotency-Key", "k1")
	b := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`, "Idempotency-Key", "k1")
	c := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`, "Idempotency-Key", "k2")
	if a.status != 202 || b.status != 202 || a.body["id"] != b.body["id"] || c.body["id"] == a.body["id"] {
		t.Fatalf("a %v b %v c %v", a.body, b.body, c.body)
	}
	placedExactly(t, s, fc, 2)
}

func TestRateLimits(t *testing.T) {
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified, answered: make(chan struct{}, 8)}
	s, srv := newTestService(t, fc, func(o *Options) { o.MaxConcurrent = 5 })
	var codes []int
	for range 5 {
		r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`)
		codes = append(codes, r.status)
		if r.status == 429 {
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra <= 0 {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
			if !strings.Contains(r.raw, "per_number_limit") {
				t.Errorf("429 does not name the rule: %s", r.raw)
			}
		}
	}
	if fmt.Sprint(codes) != "[202 202 202 429 429]" {
		t.Errorf("codes %v", codes)
	}
	// max_concurrent: 3 calls are up; 2 more numbers fill the 5 slots, the next waits briefly then 429.
	for _, n := range []string{"+447700900124", "+447700900125"} {
		if r := do(t, srv, "POST", "/v1/verifications", `{"to":"`+n+`"}`); r.status != 202 {
			t.Fatalf("%s: %d", n, r.status)
		}
	}
	r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900126"}`)
	if r.status != 429 || !strings.Contains(r.raw, "max_concurrent") {
		t.Fatalf("beyond max_concurrent: %d %s", r.status, r.raw)
	}
	for i := range 5 {
		select {
		case <-fc.answered:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of 5 calls answered after 5 s", i)
		}
	}
	if n := fc.placed.Load(); n != 5 {
		t.Errorf("%d calls placed, want 5", n)
	}
	m := do(t, srv, "GET", "/metrics", "")
	for _, want := range []string{`hashcall_policy_refusals_total{rule="per_number_limit"} 2`, `hashcall_policy_refusals_total{rule="max_concurrent"} 1`, "hashcall_active_calls 5"} {
		if !strings.Contains(m.raw, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	close(fc.hold)
	s.Drain(context.Background(), 5*time.Second)
	if n := fc.placed.Load(); n != 5 {
		t.Errorf("%d calls placed by the end, want 5", n)
	}
}

func TestCancel(t *testing.T) {
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	defer close(fc.hold)
	_, srv := newTestService(t, fc, nil)
	id := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`).body["id"].(string)
	r := do(t, srv, "DELETE", "/v1/verifications/"+id, "")
	if r.status != 200 || r.body["outcome"] != "cancelled" || r.body["status"] != "completed" {
		t.Fatalf("%d %v", r.status, r.body)
	}
	// Again: nothing to cancel, same answer.
	if r := do(t, srv, "DELETE", "/v1/verifications/"+id, ""); r.status != 200 || r.body["outcome"] != "cancelled" {
		t.Fatalf("second delete: %d %v", r.status, r.body)
	}
}

func TestCallbackSigned(t *testing.T) {
	secret := "callback-secret-0123456789abcdefghijkl"
	got := make(chan *http.Request, 1)
	var body []byte
	var fails atomic.Int32
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fails.Add(1) == 1 {
			w.WriteHeader(500) // the first attempt fails: it is retried
			return
		}
		body, _ = io.ReadAll(r.Body)
		got <- r
	}))
	defer cb.Close()
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	close(fc.hold)
	_, srv := newTestService(t, fc, func(o *Options) {
		o.CallbackHosts, o.CallbackSecret = []string{"127.0.0.1"}, secret
	})
	r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123","callback_url":"`+cb.URL+`/done"}`)
	if r.status != 202 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	var req *http.Request
	select {
	case req = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no callback")
	}
	sig := req.Header.Get("X-Hashcall-Signature")
	var ts, v1 string
	for _, part := range strings.Split(sig, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body)))
	if want := hex.EncodeToString(m.Sum(nil)); v1 != want || ts == "" {
		t.Fatalf("signature %q does not verify", sig)
	}
	var v map[string]any
	_ = json.Unmarshal(body, &v)
	if v["outcome"] != "verified" || v["status"] != "completed" || v["id"] != r.body["id"] {
		t.Errorf("callback body %v", v)
	}
}

func TestDrain(t *testing.T) {
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	logs := &testwait.Output{}
	s, srv := newTestService(t, fc, logTo(logs))
	id := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`).body["id"].(string)
	done := make(chan struct{})
	go func() { s.Drain(context.Background(), 5*time.Second); close(done) }()
	waitLog(t, logs, "msg=draining") // logged once new requests are refused
	if r := do(t, srv, "GET", "/readyz", ""); r.status != 503 {
		t.Errorf("readyz while draining: %d", r.status)
	}
	if r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900124"}`); r.status != 503 {
		t.Errorf("new request while draining: %d", r.status)
	}
	close(fc.hold) // the call in flight finishes normally
	<-done
	if r := do(t, srv, "GET", "/v1/verifications/"+id, ""); r.body["outcome"] != "verified" {
		t.Errorf("in-flight call: %v", r.body)
	}
	// After the grace period, calls are cancelled.
	fc2 := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	defer close(fc2.hold)
	s2, srv2 := newTestService(t, fc2, nil)
	id2 := do(t, srv2, "POST", "/v1/verifications", `{"to":"+447700900123"}`).body["id"].(string)
	s2.Drain(context.Background(), 100*time.Millisecond)
	if r := do(t, srv2, "GET", "/v1/verifications/"+id2, ""); r.body["outcome"] != "cancelled" {
		t.Errorf("after grace: %v", r.body)
	}
}

// TestDrainCallbackInFlight: a callback being posted when the service
// stops is not cut off: Close waits for it, and it is delivered once.
func TestDrainCallbackInFlight(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	var posts atomic.Int32
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if posts.Add(1) == 1 {
			close(arrived)
		}
		select {
		case <-release:
			w.WriteHeader(http.StatusNoContent)
		case <-r.Context().Done():
		}
	}))
	defer cb.Close()
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	close(fc.hold)
	logs := &testwait.Output{}
	s, srv := newTestService(t, fc, func(o *Options) {
		o.CallbackHosts, o.CallbackSecret = []string{"127.0.0.1"}, "callback-secret-0123456789abcdefghijkl"
		logTo(logs)(o)
	})
	if r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123","callback_url":"`+cb.URL+`/done"}`); r.status != 202 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	<-arrived
	done := make(chan struct{})
	go func() { s.Drain(context.Background(), 5*time.Second); close(done) }()
	// Logged after the background work was told to stop, before waiting
	// for it: a post cut off by the stop has been cut off by now.
	waitLog(t, logs, "msg=\"background work stopping")
	close(release)
	<-done
	waitLog(t, logs, "msg=\"callback delivered\"")
	if strings.Contains(logs.String(), "callback failed") || posts.Load() != 1 {
		t.Errorf("%d posts; log:\n%s", posts.Load(), logs.String())
	}
}

func TestReload(t *testing.T) {
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	defer close(fc.hold)
	s, srv := newTestService(t, fc, nil)
	s.Reload([]string{"new-token-0123456789abcdef"}, policy.Rules{Regions: []string{"GB"}, Types: []string{"fixed_line"}})
	if r := do(t, srv, "GET", "/v1/verifications/x", ""); r.status != 401 {
		t.Errorf("old token after reload: %d", r.status)
	}
	r := do(t, srv, "POST", "/v1/verifications", `{"to":"+442079460000"}`, "Authorization", "Bearer new-token-0123456789abcdef")
	if r.status != 202 {
		t.Errorf("landline after reload allowing fixed_line: %d %s", r.status, r.raw)
	}
}

func TestReadyz(t *testing.T) {
	var up atomic.Bool
	_, srv := newTestService(t, &fakeCaller{}, func(o *Options) { o.Ready = up.Load })
	if r := do(t, srv, "GET", "/readyz", ""); r.status != 503 || errCode(r) != "trunk_down" {
		t.Errorf("trunk down: %d %s", r.status, r.raw)
	}
	if r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`); r.status != 503 {
		t.Errorf("create with trunk down: %d", r.status)
	}
	up.Store(true)
	if r := do(t, srv, "GET", "/readyz", ""); r.status != 200 {
		t.Errorf("trunk up: %d", r.status)
	}
	if r := do(t, srv, "GET", "/healthz", "", "Authorization", ""); r.status != 200 {
		t.Errorf("healthz: %d", r.status)
	}
}

func FuzzDecodeCreate(f *testing.F) {
	f.Add([]byte(`{"to":"+447700900123","locale":"en-GB","reference":"r","callback_url":"https://a.example/x"}`))
	f.Add([]byte(`{"to":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeCreate(b)
		if err == nil && (req.To == "" || len(req.Reference) > 128) {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// TestIdempotencyConcurrent: retries with one Idempotency-Key that arrive
// while the first request is still being handled get the same
// verification, and do not count against the per-number limit.
func TestIdempotencyConcurrent(t *testing.T) {
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified, answered: make(chan struct{}, 8)}
	s, srv := newTestService(t, fc, func(o *Options) { o.Rules.PerNumber = policy.Rate{N: 1, Per: 15 * time.Minute} })
	const n = 8
	var wg sync.WaitGroup
	got := make([]resp, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`, "Idempotency-Key", "same")
		}()
	}
	wg.Wait()
	for i, r := range got {
		if r.status != 202 || r.body["id"] != got[0].body["id"] {
			t.Errorf("request %d: %d %s, want 202 with the id %v", i, r.status, r.raw, got[0].body["id"])
		}
	}
	placedExactly(t, s, fc, 1)
}

// gatedCaller holds its first call until first is closed and every later
// one until its context ends.
type gatedCaller struct {
	first  chan struct{}
	placed atomic.Int32
}

func (g *gatedCaller) Run(ctx context.Context, req verify.Request) verify.Result {
	if g.placed.Add(1) == 1 {
		<-g.first
		return verify.Result{Outcome: verify.Verified, SIPCode: 200}
	}
	<-ctx.Done()
	return verify.Result{Outcome: verify.Cancelled, SIPCode: 200}
}

// TestDrainQueuedRequest: a request waiting for a free call slot
// (policy.max_concurrent) when the drain begins either gets 503 or its
// verification, which the drain then waits for (and cancels after the
// grace period): Drain never returns with an accepted verification left
// without a final outcome.
func TestDrainQueuedRequest(t *testing.T) {
	for i := range 20 {
		g := &gatedCaller{first: make(chan struct{})}
		logs := &testwait.Output{}
		s, srv := newTestService(t, g, func(o *Options) { o.MaxConcurrent = 1; o.QueueWait = 5 * time.Second; logTo(logs)(o) })
		if r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`); r.status != 202 {
			t.Fatalf("first: %d %s", r.status, r.raw)
		}
		waiting := make(chan struct{})
		s.slots.mu.Lock()
		s.slots.onWait = func() { close(waiting) }
		s.slots.mu.Unlock()
		queued := make(chan resp, 1)
		go func() { queued <- do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900124"}`) }()
		select { // the second waits for the slot
		case <-waiting:
		case <-time.After(5 * time.Second):
			t.Fatal("the second request does not wait for the slot")
		}
		drained := make(chan struct{})
		go func() { s.Drain(context.Background(), 200*time.Millisecond); close(drained) }()
		waitLog(t, logs, "msg=draining")
		close(g.first) // the first call ends, freeing its slot
		<-drained
		r := <-queued
		switch r.status {
		case 503:
		case 202:
			v := do(t, srv, "GET", "/v1/verifications/"+r.body["id"].(string), "")
			if v.body["status"] != "completed" {
				t.Fatalf("run %d: Drain returned while a verification it accepted is %v", i, v.body["status"])
			}
		default:
			t.Fatalf("run %d: queued request: %d %s", i, r.status, r.raw)
		}
	}
}

func TestReadyzChecks(t *testing.T) {
	var radiusUp atomic.Bool
	_, srv := newTestService(t, &fakeCaller{}, func(o *Options) {
		o.Checks = []Check{{Name: "radius_upstream", Ready: radiusUp.Load}}
	})
	if r := do(t, srv, "GET", "/readyz", ""); r.status != 503 || errCode(r) != "radius_upstream_down" {
		t.Errorf("upstream down: %d %s", r.status, r.raw)
	}
	// A check is for /readyz only: the HTTP hook still places calls.
	if r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`); r.status != 202 {
		t.Errorf("create with the RADIUS upstream down: %d %s", r.status, r.raw)
	}
	radiusUp.Store(true)
	if r := do(t, srv, "GET", "/readyz", ""); r.status != 200 {
		t.Errorf("upstream up: %d %s", r.status, r.raw)
	}
}
