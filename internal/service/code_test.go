package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/verify"
)

// codeCaller plays a callee in mode code: each call takes the entries the
// test sends on keys (one slice per call), checks them against the call's
// secret as the verifier does, and counts the wrong ones.
type codeCaller struct {
	keys chan []string
	mu   sync.Mutex
	reqs []*verify.CodeRequest
}

func (c *codeCaller) Run(ctx context.Context, req verify.Request) verify.Result {
	c.mu.Lock()
	c.reqs = append(c.reqs, req.Code)
	c.mu.Unlock()
	req.OnProgress(verify.Progress{Stage: verify.StageAnswered})
	var entries []string
	select {
	case entries = <-c.keys:
	case <-ctx.Done():
		return verify.Result{Outcome: verify.Cancelled}
	}
	if req.Code == nil {
		return verify.Result{Outcome: verify.Verified}
	}
	res := verify.Result{Outcome: verify.NoKey, SIPCode: 200}
	for _, e := range entries {
		if req.Code.Secret.Check([]byte(e), time.Now()) == 1 { // numbermatch.Match
			res.Outcome = verify.Verified
			return res
		}
		res.Outcome = verify.WrongCode
		res.WrongCodes++
		if !req.Code.Failed() {
			break
		}
	}
	return res
}

var codeRE = regexp.MustCompile(`^[0-9]{6}$`)

// TestCodeMode: a request with "mode": "code" gets a 6-digit code in its
// 202 and its status while in progress, the call gets the code as a keyed
// hash only, the completed verification (and its JSON) has no code, and
// the code is in no log line; mode hash requests carry no code.
func TestCodeMode(t *testing.T) {
	var logs bytes.Buffer
	var logMu sync.Mutex
	cc := &codeCaller{keys: make(chan []string, 1)}
	s, _ := newTestService(t, cc, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := t.Context()
	v, err := s.Create(ctx, "scope", "idem-1", CreateRequest{To: "+447700900123", Mode: ModeCode, Reference: "login-1"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Mode != ModeCode || !codeRE.MatchString(v.Code) || v.CodeExpiresAt == nil {
		t.Fatalf("202: mode %q code %q expires %v, want mode code, 6 digits and an expiry", v.Mode, v.Code, v.CodeExpiresAt)
	}
	if d := v.CodeExpiresAt.Sub(v.CreatedAt); d != 5*time.Minute {
		t.Errorf("the code is valid for %v, want 5m (verify.code_ttl)", d)
	}
	// A retry of the request gets the same verification and code; the same
	// key in mode hash is another request.
	again, err := s.Create(ctx, "scope", "idem-1", CreateRequest{To: "+447700900123", Mode: ModeCode, Reference: "login-1"})
	if err != nil || again.ID != v.ID || again.Code != v.Code {
		t.Errorf("retry: %v %v, want the same verification and code", again.ID, err)
	}
	var ae *Error
	if _, err := s.Create(ctx, "scope", "idem-1", CreateRequest{To: "+447700900123", Reference: "login-1"}); !errors.As(err, &ae) || ae.Code != "idempotency_key_reused" {
		t.Errorf("same key in mode hash: %v, want idempotency_key_reused", err)
	}
	st, err := s.Wait(ctx, "scope", v.ID, 0)
	if err != nil || st.Code != v.Code {
		t.Errorf("status in progress: code %q (%v), want %q", st.Code, err, v.Code)
	}
	cc.keys <- []string{v.Code}
	done, err := s.Wait(ctx, "scope", v.ID, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != StatusCompleted || done.Outcome != verify.Verified {
		t.Fatalf("status %s outcome %v, want completed verified", done.Status, done.Result)
	}
	if done.Code != "" {
		t.Error("the completed verification shows the code")
	}
	b, _ := json.Marshal(done)
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["code"]; ok || holds(string(b), v.Code) {
		t.Errorf("the completed verification's JSON holds the code: %s", b)
	}
	cc.mu.Lock()
	secret := cc.reqs[0].Secret
	cc.mu.Unlock()
	if secret.Length() != 6 {
		t.Errorf("the call's code has %d digits", secret.Length())
	}
	// Hash mode: no code.
	h, err := s.Create(ctx, "scope", "", CreateRequest{To: "+447700900124"})
	if err != nil {
		t.Fatal(err)
	}
	cc.keys <- nil
	if _, err := s.Wait(ctx, "scope", h.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cc.mu.Lock()
	hashReq := cc.reqs[1]
	cc.mu.Unlock()
	if h.Mode != ModeHash || h.Code != "" || h.CodeExpiresAt != nil || hashReq != nil {
		t.Errorf("mode hash: mode %q code %q, code request %v", h.Mode, h.Code, hashReq)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if holds(logs.String(), v.Code) {
		t.Errorf("the code %s is in the log:\n%s", v.Code, logs.String())
	}
	if !strings.Contains(logs.String(), "verification requested") {
		t.Errorf("nothing logged? %s", logs.String())
	}
}

// holds reports whether s has code as a number of its own (not inside a
// longer run of digits, such as a timestamp's nanoseconds).
func holds(s, code string) bool {
	return regexp.MustCompile(`(^|[^0-9])` + code + `([^0-9]|$)`).MatchString(s)
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestTooManyFailures: wrong codes count per number across calls and codes
// (a new code does not reset the count); at policy.max_failed_codes the
// call in progress ends and new requests for the number, in any mode, get
// 422 too_many_failures with Retry-After until the failures are 24 h old;
// other numbers are not affected.
func TestTooManyFailures(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	failures := policy.NewMemoryFailures(policy.FailureWindow, clock)
	cc := &codeCaller{keys: make(chan []string, 1)}
	s, _ := newTestService(t, cc, func(o *Options) {
		o.Failures, o.Clock = failures, clock
		o.Rules.PerNumber = policy.Rate{N: 100, Per: time.Minute}
	})
	ctx := t.Context()
	const num = "+447700900123"
	call := func(entries ...string) (verify.Result, error) {
		v, err := s.Create(ctx, "scope", "", CreateRequest{To: num, Mode: ModeCode})
		if err != nil {
			return verify.Result{}, err
		}
		cc.keys <- entries
		done, err := s.Wait(ctx, "scope", v.ID, 10*time.Second)
		if err != nil || done.Result == nil {
			t.Fatalf("wait: %v", err)
		}
		return *done.Result, nil
	}
	// Three wrong codes in one call, then two in another with a new code:
	// the fifth ends that call although the entries go on.
	if res, err := call("000000", "111111", "222222"); err != nil || res.Outcome != verify.WrongCode || res.WrongCodes != 3 {
		t.Fatalf("first call: %+v, %v", res, err)
	}
	advance(time.Hour)
	if res, err := call("333333", "444444", "555555"); err != nil || res.WrongCodes != 2 {
		t.Fatalf("second call: %d wrong codes (%v), want 2: the limit ends it", res.WrongCodes, err)
	}
	if ts, _ := failures.Failures(num); len(ts) != 5 {
		t.Fatalf("%d failures counted, want 5", len(ts))
	}
	if n := testutil.ToFloat64(s.metrics.wrongCodes); n != 5 {
		t.Errorf("hashcall_wrong_codes_total %v, want 5", n)
	}
	if n := testutil.ToFloat64(s.metrics.verifications.WithLabelValues("wrong_code")); n != 2 {
		t.Errorf("hashcall_verifications_total{outcome=\"wrong_code\"} %v, want 2", n)
	}
	for _, mode := range []string{ModeCode, ModeHash} {
		_, err := s.Create(ctx, "scope", "", CreateRequest{To: num, Mode: mode})
		var ae *Error
		if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity || ae.Code != "too_many_failures" || ae.Rule != policy.RuleFailedCodes {
			t.Fatalf("mode %s after 5 failures: %v, want 422 too_many_failures", mode, err)
		}
		// Below the limit when the first call's failures are 24 h old.
		if want := 23 * time.Hour; ae.RetryAfter != want {
			t.Errorf("Retry-After %v, want %v", ae.RetryAfter, want)
		}
	}
	if _, err := s.Create(ctx, "scope", "", CreateRequest{To: "+447700900124", Mode: ModeCode}); err != nil {
		t.Errorf("another number: %v", err)
	}
	cc.keys <- nil
	advance(23*time.Hour - time.Second)
	if _, err := s.Create(ctx, "scope", "", CreateRequest{To: num, Mode: ModeCode}); err == nil {
		t.Fatal("allowed a second before the failures expire")
	}
	advance(time.Second)
	if res, err := call(); err != nil || res.Outcome != verify.NoKey {
		t.Fatalf("24 h on: %+v %v, want a call", res, err)
	}
}

// TestDecodeCreateMode: "mode" is hash, code or absent; anything else is
// the client's error naming the field.
func TestDecodeCreateMode(t *testing.T) {
	tests := []struct {
		name, body, want, err string
	}{
		{"absent", `{"to":"+447700900123"}`, "", ""},
		{"hash", `{"to":"+447700900123","mode":"hash"}`, ModeHash, ""},
		{"code", `{"to":"+447700900123","mode":"code"}`, ModeCode, ""},
		{"unknown", `{"to":"+447700900123","mode":"pin"}`, "", "mode: want hash or code"},
		{"upper", `{"to":"+447700900123","mode":"CODE"}`, "", "mode: want hash or code"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeCreate([]byte(tc.body))
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Errorf("err %v", err)
			case req.Mode != tc.want:
				t.Errorf("mode %q, want %q", req.Mode, tc.want)
			}
		})
	}
}

// TestCodeModeDefault: with verify.mode code, a request that gives no mode
// is mode code; one that asks for hash is hash.
func TestCodeModeDefault(t *testing.T) {
	cc := &codeCaller{keys: make(chan []string, 2)}
	s, _ := newTestService(t, cc, func(o *Options) { o.Mode = ModeCode; o.CodeLength = 8 })
	v, err := s.Create(t.Context(), "scope", "", CreateRequest{To: "+447700900123"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Mode != ModeCode || !regexp.MustCompile(`^[0-9]{8}$`).MatchString(v.Code) {
		t.Errorf("no mode given: mode %q code %q, want code with 8 digits (verify.code_length)", v.Mode, v.Code)
	}
	h, err := s.Create(t.Context(), "scope", "", CreateRequest{To: "+447700900124", Mode: ModeHash})
	if err != nil {
		t.Fatal(err)
	}
	if h.Mode != ModeHash || h.Code != "" {
		t.Errorf("mode hash asked: mode %q code %q", h.Mode, h.Code)
	}
	cc.keys <- nil
	cc.keys <- nil
	for _, id := range []string{v.ID, h.ID} {
		if _, err := s.Wait(t.Context(), "scope", id, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(cc, Options{Mode: "pin", Prompts: s.opts.Prompts}); err == nil {
		t.Error("mode pin accepted")
	}
	if _, err := New(cc, Options{CodeTTL: 11 * time.Minute, Prompts: s.opts.Prompts}); err == nil {
		t.Error("a code TTL over 10 minutes accepted")
	}
}
