package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/pgtest"
	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/internal/store"
	"github.com/hashcall/hashcall/internal/testwait"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

// callbackSink records the callbacks it receives, by verification id.
type callbackSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  map[string][]map[string]any
	each chan string
}

func newSink(t *testing.T) *callbackSink {
	c := &callbackSink{got: map[string][]map[string]any{}, each: make(chan string, 100)}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		id, _ := v["id"].(string)
		c.mu.Lock()
		c.got[id] = append(c.got[id], v)
		c.mu.Unlock()
		c.each <- id
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *callbackSink) wait(t *testing.T, id string) map[string]any {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case got := <-c.each:
			if got == id {
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.got[id][0]
			}
		case <-timeout:
			t.Fatalf("no callback for %s", id)
		}
	}
}

func (c *callbackSink) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got[id])
}

func withStore(st *store.Store, more ...func(*Options)) func(*Options) {
	return func(o *Options) {
		o.Store = st
		o.CallbackHosts = []string{"127.0.0.1"}
		o.CallbackSecret = "callback-secret-0123456789abcdefghijkl"
		o.PollInterval = 50 * time.Millisecond
		for _, m := range more {
			m(o)
		}
	}
}

// TestCommittedBeforeAccepted: the 202 comes after the commit (the
// verification is in the store, on another connection, when the answer
// arrives), and with the store gone no call is placed and /readyz fails.
func TestCommittedBeforeAccepted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hashcall.db")
	st := openStore(t, path, "node-a")
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	defer close(fc.hold)
	_, srv := newTestService(t, fc, withStore(st))
	other := openStore(t, path, "reader")
	r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123","reference":"r1"}`)
	if r.status != 202 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	sv, err := other.Get(context.Background(), r.body["id"].(string))
	if err != nil || sv.Request.Reference != "r1" || sv.Request.To != "+4477*****123" || sv.Node != "node-a" {
		t.Fatalf("not committed at the 202: %+v %v", sv, err)
	}
	st.Close()
	before := fc.placed.Load()
	if r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900124"}`); r.status != 503 || errCode(r) != "store_unavailable" {
		t.Errorf("store down: %d %s", r.status, r.raw)
	}
	if fc.placed.Load() != before {
		t.Error("a call was placed without a committed verification")
	}
	if r := do(t, srv, "GET", "/readyz", ""); r.status != 503 || errCode(r) != "store_unavailable" {
		t.Errorf("readyz with the store down: %d %s", r.status, r.raw)
	}
}

// TestLimitsAndKeysAcrossRestart: a restarted service (a new process on
// the same file) keeps the per-number counts and the idempotency keys.
func TestLimitsAndKeysAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hashcall.db")
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	close(fc.hold)
	s1, srv1 := newTestService(t, fc, withStore(openStore(t, path, "node-a")))
	first := do(t, srv1, "POST", "/v1/verifications", `{"to":"+447700900123"}`, "Idempotency-Key", "login-1")
	for range 2 {
		if r := do(t, srv1, "POST", "/v1/verifications", `{"to":"+447700900123"}`); r.status != 202 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	}
	s1.Drain(context.Background(), 5*time.Second)
	srv1.Close()

	st2 := openStore(t, path, "node-a")
	s2, srv2 := newTestService(t, fc, withStore(st2))
	cases := []struct {
		name, body, key string
		status          int
		code, id        string
	}{
		{"the limit holds", `{"to":"+447700900123"}`, "", 429, "rate_limited", ""},
		{"the key returns the first verification", `{"to":"+447700900123"}`, "login-1", 202, "", first.body["id"].(string)},
		{"the key with another request", `{"to":"+447700900124"}`, "login-1", 422, "idempotency_key_reused", ""},
		{"another number is allowed", `{"to":"+447700900124"}`, "", 202, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, srv2, "POST", "/v1/verifications", tc.body, "Idempotency-Key", tc.key)
			if r.status != tc.status || errCode(r) != tc.code || (tc.id != "" && r.body["id"] != tc.id) {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
	if got := do(t, srv2, "GET", "/v1/verifications/"+first.body["id"].(string), ""); got.body["outcome"] != "verified" {
		t.Errorf("a verification from before the restart: %v", got.body)
	}
	// The audit log: 3 outcomes before the restart, 1 after, and the
	// refusal, each number as its HMAC only.
	s2.Drain(context.Background(), 5*time.Second)
	rows := map[string]int{}
	if err := st2.ExportAudit(context.Background(), time.Time{}, func(r store.AuditRecord) error {
		if r.NumberHMAC == st2.NumberHMAC("+447700900123") || r.NumberHMAC == st2.NumberHMAC("+447700900124") {
			rows[r.Event+" "+r.Outcome+r.Rule]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rows["refusal per_number_limit"] != 1 || rows["refusal idempotency_key_reused"] != 1 || rows["outcome verified"] != 4 || len(rows) != 3 {
		t.Errorf("audit rows %v, want 4 verified outcomes, 1 per_number_limit and 1 idempotency_key_reused refusal", rows)
	}
	if _, err := st2.VerifyAudit(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestRestartInterrupts: a node that dies mid-call (its process gone: no
// drain, no outcome) finds the call at its next start, marks it
// interrupted, delivers its callback once and audits it.
func TestRestartInterrupts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hashcall.db")
	sink := newSink(t)
	dialog := &sip.DialogState{CallID: "call-1@127.0.0.1", From: "<sip:+441234567890@127.0.0.1>;tag=ours", To: "<sip:+447700900123@127.0.0.1>;tag=theirs",
		LocalTag: "ours", RemoteTag: "theirs", RemoteTarget: "sip:phone@127.0.0.1:5090", RouteSet: []string{"<sip:127.0.0.1:5060;lr>"}, CSeq: 7, Transport: "UDP"}
	fc := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified, dialog: dialog, answered: make(chan struct{}, 1)}
	s1, srv1 := newTestService(t, fc, withStore(openStore(t, path, "node-a")))
	r := do(t, srv1, "POST", "/v1/verifications", `{"to":"+447700900123","callback_url":"`+sink.srv.URL+`/cb"}`)
	if r.status != 202 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	<-fc.answered
	s1.Close() // "kill -9": no more leases, callbacks or outcomes from it
	srv1.Close()

	st2 := openStore(t, path, "node-a")
	byes := make(chan store.Dialog, 2)
	_, srv2 := newTestService(t, fc, withStore(st2, func(o *Options) {
		o.Hangup = func(_ context.Context, d store.Dialog) error { byes <- d; return nil }
	}))
	select {
	case d := <-byes:
		if got := DialogState(d); fmt.Sprint(got) != fmt.Sprint(*dialog) {
			t.Errorf("BYE from %+v, want %+v", got, *dialog)
		}
	case <-time.After(10 * time.Second):
		t.Error("no BYE for the interrupted call's stored dialog")
	}
	got := sink.wait(t, id)
	if got["outcome"] != "interrupted" || got["status"] != "completed" {
		t.Errorf("callback %v", got)
	}
	if v := do(t, srv2, "GET", "/v1/verifications/"+id, ""); v.body["outcome"] != "interrupted" {
		t.Errorf("after restart: %v", v.body)
	}
	// The dead process's call ends late: the interrupted outcome stands.
	close(fc.hold)
	s1.calls.Wait()
	if v := do(t, srv2, "GET", "/v1/verifications/"+id, ""); v.body["outcome"] != "interrupted" {
		t.Errorf("after the late end: %v", v.body)
	}
	if n := sink.count(id); n != 1 {
		t.Errorf("%d callbacks, want 1", n)
	}
	waitDelivered(t, st2, id)
	var outcomes []string
	if err := st2.ExportAudit(context.Background(), time.Time{}, func(r store.AuditRecord) error {
		if r.VerificationID == id {
			outcomes = append(outcomes, r.Outcome)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(outcomes) != "[interrupted]" {
		t.Errorf("audit rows %v", outcomes)
	}
	if n, err := st2.VerifyAudit(context.Background()); err != nil || n != 1 {
		t.Errorf("audit chain: %d %v", n, err)
	}
}

// TestTwoNodes: two services on one PostgreSQL. A burst for one number
// over both dials nothing past the limit; a long-poll on B returns when A's
// call ends; when A dies mid-call, B marks it interrupted once the lease
// has expired and delivers the callback once.
func TestTwoNodes(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	open := func(node string) *store.Store {
		st, err := store.Open(context.Background(), store.Options{Driver: store.DriverPostgres, DSN: dsn, Node: node,
			AuditKey: []byte("audit-key-0123456789"), Lease: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	sink := newSink(t)
	fa := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	fb := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
	defer close(fb.hold)
	limit := func(o *Options) { o.Rules.PerNumber = policy.Rate{N: 3, Per: 15 * time.Minute} }
	_, srvA := newTestService(t, fa, withStore(open("a"), limit))
	stB := open("b")
	// B polls rarely: its long-poll for A's call returns on A's NOTIFY.
	_, srvB := newTestService(t, fb, withStore(stB, limit, func(o *Options) { o.PollInterval = 20 * time.Second }))

	t.Run("burst over both nodes", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for i := range 12 {
			srv := srvA
			if i%2 == 1 {
				srv = srvB
			}
			wg.Go(func() {
				r := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`)
				mu.Lock()
				codes[r.status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codes[202] != 3 || codes[429] != 9 {
			t.Fatalf("codes %v, want 3×202 and 9×429", codes)
		}
		if placed := fa.placed.Load() + fb.placed.Load(); placed != 3 {
			t.Errorf("%d calls dialled, want 3", placed)
		}
	})

	var idA string
	t.Run("long-poll on B for A's call", func(t *testing.T) {
		r := do(t, srvA, "POST", "/v1/verifications", `{"to":"+447700900124","callback_url":"`+sink.srv.URL+`/cb"}`)
		if r.status != 202 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		idA = r.body["id"].(string)
		if v := do(t, srvB, "GET", "/v1/verifications/"+idA+"?wait=100ms", ""); v.status != 200 || v.body["status"] == "completed" {
			t.Fatalf("B before the end: %d %v", v.status, v.body)
		}
		select {
		case <-stB.Listening():
		case <-time.After(10 * time.Second):
			t.Fatal("B's LISTEN not up")
		}
		polled := make(chan resp, 1)
		go func() { polled <- do(t, srvB, "GET", "/v1/verifications/"+idA+"?wait=20s", "") }()
		close(fa.hold) // A's calls end
		start := time.Now()
		v := <-polled
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("B's long-poll returned %v after A's end (its polling is every 20 s): no notice", took)
		}
		if v.body["outcome"] != "verified" {
			t.Fatalf("B's long-poll: %v", v.body)
		}
		if got := sink.wait(t, idA); got["outcome"] != "verified" {
			t.Errorf("callback %v", got)
		}
	})

	t.Run("A dies mid-call, B takes over", func(t *testing.T) {
		fa2 := &fakeCaller{hold: make(chan struct{}), outcome: verify.Verified}
		stA2 := open("a2")
		sa2, srvA2 := newTestService(t, fa2, withStore(stA2, limit))
		r := do(t, srvA2, "POST", "/v1/verifications", `{"to":"+447700900125","callback_url":"`+sink.srv.URL+`/cb"}`)
		if r.status != 202 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		id := r.body["id"].(string)
		died := time.Now()
		sa2.Close() // no more lease renewals
		v := do(t, srvB, "GET", "/v1/verifications/"+id+"?wait=20s", "")
		if v.body["outcome"] != "interrupted" {
			t.Fatalf("B's view: %v", v.body)
		}
		if took := time.Since(died); took > 2*time.Second+5*time.Second {
			t.Errorf("interrupted after %v, want within lease + 5 s", took)
		}
		if got := sink.wait(t, id); got["outcome"] != "interrupted" {
			t.Errorf("callback %v", got)
		}
		// A's call ends after all: B's outcome stands, no second callback.
		close(fa2.hold)
		sa2.calls.Wait()
		if v := do(t, srvB, "GET", "/v1/verifications/"+id, ""); v.body["outcome"] != "interrupted" {
			t.Errorf("after A's late end: %v", v.body)
		}
		waitDelivered(t, stA2, id)
		if n := sink.count(id); n != 1 {
			t.Errorf("%d callbacks, want 1", n)
		}
	})
}

// waitDelivered waits until the store marks id's callback delivered after
// one attempt (just after the POST was answered).
func waitDelivered(t *testing.T, st *store.Store, id string) {
	t.Helper()
	// The row changes in the store, which announces nothing: polled.
	var (
		state    string
		attempts int
		err      error
	)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if testwait.Until(ctx, func() bool {
		state, attempts, err = st.CallbackState(context.Background(), id)
		return state == "delivered" && attempts == 1 && err == nil
	}) != nil {
		t.Fatalf("callback %s after %d attempts (%v), want delivered after 1", state, attempts, err)
	}
}
