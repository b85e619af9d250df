package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/pgtest"
	"github.com/hashcall/hashcall/verify"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// backend opens stores on one fresh database: each call is another node
// (another connection pool) on the same data.
type backend struct {
	name string
	// fresh returns a function opening nodes on a new, empty database.
	fresh func(t *testing.T) func(t *testing.T, node string, now func() time.Time) *Store
}

func sqliteBackend() backend {
	return backend{name: "sqlite", fresh: func(t *testing.T) func(*testing.T, string, func() time.Time) *Store {
		path := filepath.Join(t.TempDir(), "hashcall.db")
		return func(t *testing.T, node string, now func() time.Time) *Store {
			return mustOpen(t, Options{Driver: DriverSQLite, Path: path, Node: node, Now: now, AuditKey: []byte("k"), Lease: 10 * time.Second})
		}
	}}
}

func postgresBackend(pg *pgtest.Server) backend {
	return backend{name: "postgres", fresh: func(t *testing.T) func(*testing.T, string, func() time.Time) *Store {
		dsn := pg.NewDatabase(t)
		return func(t *testing.T, node string, now func() time.Time) *Store {
			return mustOpen(t, Options{Driver: DriverPostgres, DSN: dsn, Node: node, Now: now, AuditKey: []byte("k"), Lease: 10 * time.Second})
		}
	}}
}

func mustOpen(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func create(id string, limits ...Limit) Create {
	return Create{ID: id, Scope: "tok", Status: "queued", Request: Request{To: "+4477*****123", Locale: "en-GB"}, Limits: limits}
}

// TestStore runs the store's suite against SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	bs := []backend{sqliteBackend()}
	pg := pgtest.Start(t)
	bs = append(bs, postgresBackend(pg))
	for _, b := range bs {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range suite {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
			}
		})
	}
}

var suite = []struct {
	name string
	fn   func(t *testing.T, b backend)
}{
	{"create_get_persists_across_reopen", testCreateGet},
	{"idempotency", testIdempotency},
	{"limits", testLimits},
	{"limits_across_nodes", testLimitsAcrossNodes},
	{"complete", testComplete},
	{"callbacks_claimed_once", testCallbacksOnce},
	{"callback_retry_and_give_up", testCallbackRetry},
	{"orphans", testOrphans},
	{"enrolments", testEnrolments},
	{"audit_chain", testAuditChain},
	{"purge", testPurge},
	{"schema_too_new", testSchemaTooNew},
	{"watch_final", testWatchFinal},
	{"claims_and_enrol", testClaims},
	{"code_failures_across_nodes", testCodeFailures},
}

// testCodeFailures: failed codes count per number across nodes over a
// sliding window; a failure outside the window no longer counts.
func testCodeFailures(t *testing.T, be backend) {
	open := be.fresh(t)
	clk := newClock()
	a := Failures{S: open(t, "a", clk.Now), Window: 24 * time.Hour}
	b := Failures{S: open(t, "b", clk.Now), Window: 24 * time.Hour}
	const num, other = "+447700900123", "+447700900124"
	steps := []struct {
		name    string
		f       Failures
		number  string
		advance time.Duration
		want    int
	}{
		{"first", a, num, 0, 1},
		{"second on another node", b, num, time.Hour, 2},
		{"another number", a, other, 0, 1},
		{"third", a, num, time.Hour, 3},
		{"the first has left the window", b, num, 22*time.Hour + time.Minute, 3},
		{"a day after the rest", a, num, 25 * time.Hour, 1},
	}
	for _, st := range steps {
		clk.Add(st.advance)
		n, err := st.f.AddFailure(st.number)
		if err != nil || n != st.want {
			t.Fatalf("%s: AddFailure = %d, %v; want %d", st.name, n, err, st.want)
		}
		ts, err := st.f.Failures(st.number)
		if err != nil || len(ts) != st.want || !ts[len(ts)-1].Equal(clk.Now().Truncate(time.Millisecond)) {
			t.Fatalf("%s: Failures = %v, %v; want %d ending now", st.name, ts, err, st.want)
		}
	}
	if ts, err := b.Failures(other); err != nil || len(ts) != 0 {
		t.Errorf("the other number's failure from more than a day ago: %v, %v", ts, err)
	}
}

// testClaims: a (kind, key) is claimed once across nodes until it expires;
// Enrol records a confirmed number.
func testClaims(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	clk := newClock()
	a, b := open(t, "a", clk.Now), open(t, "b", clk.Now)
	exp := clk.Now().Add(10 * time.Minute)
	steps := []struct {
		name    string
		s       *Store
		kind    string
		key     string
		advance time.Duration
		want    bool
	}{
		{"first claim", a, "eam", "n1/s1", 0, true},
		{"replay on another node", b, "eam", "n1/s1", 0, false},
		{"another key", b, "eam", "n2/s1", 0, true},
		{"the same key of another kind", b, "other", "n1/s1", 0, true},
		{"after it expired", a, "eam", "n1/s1", 11 * time.Minute, true},
	}
	for _, st := range steps {
		clk.Add(st.advance)
		e := exp
		if st.advance > 0 {
			e = clk.Now().Add(10 * time.Minute)
		}
		got, err := st.s.Claim(ctx, st.kind, st.key, e)
		if err != nil || got != st.want {
			t.Errorf("%s: %v %v, want %v", st.name, got, err, st.want)
		}
	}
	if err := a.Enrol(ctx, "eam:t/o", "+447700900123", "vrf_1"); err != nil {
		t.Fatal(err)
	}
	if e, err := b.Enrolment(ctx, "eam:t/o"); err != nil || e.E164 != "+447700900123" || e.ConfirmedAt == nil || e.VerificationID != "vrf_1" {
		t.Errorf("enrolment %+v %v", e, err)
	}
}

// testWatchFinal: a waiter hears a verification become final, through the
// same store at once and, on PostgreSQL, from another node (NOTIFY).
func testWatchFinal(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	a, b := open(t, "a", nil), open(t, "b", nil)
	for _, id := range []string{"vrf_1", "vrf_2"} {
		if _, _, err := a.Create(ctx, create(id)); err != nil {
			t.Fatal(err)
		}
	}
	local, stop := a.WatchFinal("vrf_1")
	defer stop()
	other, stopOther := a.WatchFinal("vrf_2")
	defer stopOther()
	if err := a.Complete(ctx, Complete{ID: "vrf_1", Status: "completed", Result: result(verify.Verified), Audit: AuditEvent{Event: EventOutcome}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-local:
	default:
		t.Fatal("no notice through the same store")
	}
	select {
	case <-other:
		t.Fatal("a notice for another verification")
	default:
	}
	if be.name != "postgres" {
		return
	}
	select {
	case <-b.Listening():
	case <-time.After(10 * time.Second):
		t.Fatal("LISTEN not up after 10 s")
	}
	remote, stopRemote := b.WatchFinal("vrf_2")
	defer stopRemote()
	if err := a.Complete(ctx, Complete{ID: "vrf_2", Status: "completed", Result: result(verify.Verified), Audit: AuditEvent{Event: EventOutcome}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-remote:
	case <-time.After(10 * time.Second):
		t.Fatal("node b heard nothing of node a's outcome")
	}
	if !b.Notifying() {
		t.Error("Notifying false with LISTEN up")
	}
}

func testCreateGet(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	clk := newClock()
	s := open(t, "a", clk.Now)
	v, created, err := s.Create(ctx, create("vrf_1"))
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if v.Node != "a" || !v.LeaseUntil.Equal(clk.Now().Add(10*time.Second)) {
		t.Errorf("node %q lease %v", v.Node, v.LeaseUntil)
	}
	if err := s.SetStatus(ctx, "vrf_1", "ringing"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, "a", clk.Now)
	got, err := s.Get(ctx, "vrf_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "ringing" || got.Final || got.Request.Locale != "en-GB" || got.Scope != "tok" || !got.CreatedAt.Equal(clk.Now()) {
		t.Errorf("after reopen: %+v", got)
	}
	if _, err := s.Get(ctx, "vrf_none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, _, err := s.Create(ctx, create("vrf_1")); err == nil {
		t.Error("a second verification with the same id was accepted")
	}
}

func testIdempotency(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	clk := newClock()
	s := open(t, "a", clk.Now)
	lim := Limit{Kind: "number", Key: "n1", N: 1, Per: time.Hour}
	c := create("vrf_1", lim)
	c.IdemKey, c.Digest, c.IdemTTL = "k1", "d1", 24*time.Hour
	if _, created, err := s.Create(ctx, c); err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	cases := []struct {
		name    string
		id      string
		scope   string
		digest  string
		advance time.Duration
		want    error
		created bool
		wantID  string
	}{
		{"same key and request returns the first, not counted", "vrf_2", "tok", "d1", 0, nil, false, "vrf_1"},
		{"same key, another request", "vrf_3", "tok", "d2", 0, ErrIdempotencyReused, false, ""},
		{"same key in another scope is another key", "vrf_4", "other", "d9", 0, nil, true, "vrf_4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := create(tc.id)
			c.Scope, c.IdemKey, c.Digest, c.IdemTTL = tc.scope, "k1", tc.digest, 24*time.Hour
			if tc.scope == "tok" {
				c.Limits = []Limit{lim}
			}
			v, created, err := s.Create(ctx, c)
			if !errors.Is(err, tc.want) || created != tc.created || v.ID != tc.wantID {
				t.Errorf("got %q created %v err %v; want %q %v %v", v.ID, created, err, tc.wantID, tc.created, tc.want)
			}
		})
	}
	if v, err := s.LookupKey(ctx, "tok", "k1", "d1"); err != nil || v.ID != "vrf_1" {
		t.Errorf("lookup: %v %v", v.ID, err)
	}
	if _, err := s.LookupKey(ctx, "tok", "k1", "dx"); !errors.Is(err, ErrIdempotencyReused) {
		t.Errorf("lookup with another digest: %v", err)
	}
	// After the key's TTL it binds anew (and the limit window has passed).
	clk.Add(25 * time.Hour)
	if _, err := s.LookupKey(ctx, "tok", "k1", "d1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired lookup: %v", err)
	}
	c = create("vrf_5", lim)
	c.IdemKey, c.Digest, c.IdemTTL = "k1", "d2", 24*time.Hour
	if v, created, err := s.Create(ctx, c); err != nil || !created || v.ID != "vrf_5" {
		t.Errorf("after expiry: %v %v %v", v.ID, created, err)
	}
}

func testLimits(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	clk := newClock()
	s := open(t, "a", clk.Now)
	per := Limit{Kind: "number", Key: "n1", N: 3, Per: 15 * time.Minute}
	global := Limit{Kind: "global", N: 4, Per: time.Minute}
	steps := []struct {
		name    string
		advance time.Duration
		key     string
		rule    string // "" allowed
		retry   time.Duration
	}{
		{"1st to n1", 0, "n1", "", 0},
		{"2nd to n1", time.Second, "n1", "", 0},
		{"3rd to n1", time.Second, "n1", "", 0},
		{"4th to n1 refused", time.Second, "n1", "number", 15*time.Minute - 3*time.Second},
		{"n2 allowed (global 4th)", 0, "n2", "", 0},
		{"n3 refused by global", 0, "n3", "global", time.Minute - 3*time.Second},
		{"global window passes", time.Minute, "n3", "", 0},
		{"n1 still limited", 0, "n1", "number", 15*time.Minute - time.Minute - 3*time.Second},
		{"n1 window slides past the first", 15*time.Minute - time.Minute - 3*time.Second, "n1", "", 0},
	}
	for i, st := range steps {
		clk.Add(st.advance)
		p := per
		p.Key = st.key
		_, _, err := s.Create(ctx, create(fmt.Sprintf("vrf_%d", i), p, global))
		var le *LimitError
		switch {
		case st.rule == "" && err != nil:
			t.Fatalf("%s: %v", st.name, err)
		case st.rule != "" && !errors.As(err, &le):
			t.Fatalf("%s: want a %s limit, got %v", st.name, st.rule, err)
		case st.rule != "" && (le.Kind != st.rule || le.RetryAfter != st.retry):
			t.Fatalf("%s: got %s retry %v, want %s retry %v", st.name, le.Kind, le.RetryAfter, st.rule, st.retry)
		}
		if st.rule != "" {
			if _, err := s.Get(ctx, fmt.Sprintf("vrf_%d", i)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: a refused verification was stored (%v)", st.name, err)
			}
		}
	}
}

// testLimitsAcrossNodes: two nodes creating for one number at once never
// count past the limit, and a restart keeps the counts.
func testLimitsAcrossNodes(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	a, b := open(t, "a", nil), open(t, "b", nil)
	lim := Limit{Kind: "number", Key: "n1", N: 3, Per: 15 * time.Minute}
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed, refused := 0, 0
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			_, _, err := s.Create(ctx, create(fmt.Sprintf("vrf_%d", i), lim))
			var le *LimitError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				allowed++
			case errors.As(err, &le):
				refused++
			default:
				t.Errorf("create %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if allowed != 3 || refused != 9 {
		t.Fatalf("allowed %d refused %d; want 3 and 9", allowed, refused)
	}
	a.Close()
	a = open(t, "a", nil)
	var le *LimitError
	if _, _, err := a.Create(ctx, create("vrf_after", lim)); !errors.As(err, &le) {
		t.Fatalf("after a restart: %v, want the limit", err)
	}
}

func result(o verify.Outcome) verify.Result {
	return verify.Result{Outcome: o, To: "+4477*****123", SIPCode: 200, StartedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
}

func testComplete(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	clk := newClock()
	s := open(t, "a", clk.Now)
	if _, _, err := s.Create(ctx, create("vrf_1")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveDialog(ctx, "vrf_1", Dialog{CallID: "c1", LocalTag: "l", RemoteTag: "r", RemoteTarget: "sip:x@127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	err := s.Complete(ctx, Complete{ID: "vrf_1", Status: "completed", Result: result(verify.Verified),
		Callback: &Callback{URL: "http://127.0.0.1/cb", Body: []byte(`{"id":"vrf_1"}`), Deadline: clk.Now().Add(time.Minute)},
		Audit:    AuditEvent{Event: EventOutcome, Scope: "tok", E164: "+447700900123", Masked: "+4477*****123", Outcome: "verified"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Get(ctx, "vrf_1")
	if err != nil || !v.Final || v.Result == nil || v.Result.Outcome != verify.Verified || v.CompletedAt == nil {
		t.Fatalf("after complete: %+v %v", v, err)
	}
	err = s.Complete(ctx, Complete{ID: "vrf_1", Status: "completed", Result: result(verify.Interrupted), Audit: AuditEvent{Event: EventOutcome}})
	if !errors.Is(err, ErrFinal) {
		t.Errorf("second complete: %v, want ErrFinal", err)
	}
	if err := s.Complete(ctx, Complete{ID: "vrf_none", Result: result(verify.Failed)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("complete unknown: %v", err)
	}
	if st, n, err := s.CallbackState(ctx, "vrf_1"); err != nil || st != "pending" || n != 0 {
		t.Errorf("callback %q %d %v", st, n, err)
	}
	var got []AuditRecord
	if err := s.ExportAudit(ctx, time.Time{}, func(r AuditRecord) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Outcome != "verified" || got[0].NumberHMAC != s.NumberHMAC("+447700900123") || got[0].VerificationID != "vrf_1" {
		t.Errorf("audit %+v", got)
	}
	// The dialog went with the final outcome: no orphan with a BYE.
	if o, err := s.ClaimOrphans(ctx, true); err != nil || len(o) != 0 {
		t.Errorf("orphans after complete: %v %v", o, err)
	}
}

func testCallbacksOnce(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	a, b := open(t, "a", nil), open(t, "b", nil)
	const n = 40
	for i := range n {
		id := fmt.Sprintf("vrf_%d", i)
		if _, _, err := a.Create(ctx, create(id)); err != nil {
			t.Fatal(err)
		}
		if err := a.Complete(ctx, Complete{ID: id, Status: "completed", Result: result(verify.NoKey),
			Callback: &Callback{URL: "http://127.0.0.1/cb", Body: []byte("{}"), Deadline: time.Now().Add(time.Hour)}, Audit: AuditEvent{Event: EventOutcome}}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[string]string{}
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				cs, err := s.ClaimCallbacks(ctx, 3, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(cs) == 0 {
					return
				}
				for _, c := range cs {
					mu.Lock()
					if prev, ok := claimed[c.VerificationID]; ok {
						t.Errorf("%s claimed by %s and %s", c.VerificationID, prev, s.Node())
					}
					claimed[c.VerificationID] = s.Node()
					mu.Unlock()
					if err := s.CallbackDelivered(ctx, c.VerificationID); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(claimed) != n {
		t.Fatalf("%d of %d callbacks claimed", len(claimed), n)
	}
	for id := range claimed {
		if st, attempts, _ := a.CallbackState(ctx, id); st != "delivered" || attempts != 1 {
			t.Errorf("%s: %s after %d attempts", id, st, attempts)
		}
	}
}

func testCallbackRetry(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	clk := newClock()
	a, b := open(t, "a", clk.Now), open(t, "b", clk.Now)
	if _, _, err := a.Create(ctx, create("vrf_1")); err != nil {
		t.Fatal(err)
	}
	if err := a.Complete(ctx, Complete{ID: "vrf_1", Status: "completed", Result: result(verify.NoKey),
		Callback: &Callback{URL: "http://127.0.0.1/cb", Body: []byte("{}"), Deadline: clk.Now().Add(time.Hour)}, Audit: AuditEvent{Event: EventOutcome}}); err != nil {
		t.Fatal(err)
	}
	claim := func(s *Store) int {
		cs, err := s.ClaimCallbacks(ctx, 10, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	if claim(a) != 1 || claim(b) != 0 {
		t.Fatal("a claim did not exclude the other node")
	}
	if err := a.CallbackRetry(ctx, "vrf_1", clk.Now().Add(2*time.Second), "503", false); err != nil {
		t.Fatal(err)
	}
	if claim(b) != 0 {
		t.Fatal("claimed before its next time")
	}
	clk.Add(2 * time.Second)
	if claim(a) != 1 {
		t.Fatal("not due again")
	}
	// a dies holding the claim: after it lapses b takes over; a's late
	// report is refused.
	clk.Add(31 * time.Second)
	if claim(b) != 1 {
		t.Fatal("lapsed claim not taken over")
	}
	if err := a.CallbackDelivered(ctx, "vrf_1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("lapsed claim reported: %v", err)
	}
	if err := b.CallbackRetry(ctx, "vrf_1", time.Time{}, "timeout", true); err != nil {
		t.Fatal(err)
	}
	if st, n, _ := b.CallbackState(ctx, "vrf_1"); st != "failed" || n != 3 {
		t.Errorf("state %s after %d attempts", st, n)
	}
	clk.Add(time.Hour)
	if claim(a)+claim(b) != 0 {
		t.Error("a given-up callback was claimed")
	}
}

func testOrphans(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	clk := newClock()
	a, b := open(t, "a", clk.Now), open(t, "b", clk.Now)
	for _, id := range []string{"vrf_a1", "vrf_a2"} {
		if _, _, err := a.Create(ctx, create(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := b.Create(ctx, create("vrf_b1")); err != nil {
		t.Fatal(err)
	}
	d := Dialog{CallID: "c1", LocalTag: "l", RemoteTag: "r", RemoteURI: "sip:+447700900123@127.0.0.1", RemoteTarget: "sip:phone@127.0.0.1:5070",
		RouteSet: []string{"<sip:127.0.0.1:5060;lr>"}, CSeq: 2, Transport: "udp"}
	if err := a.SaveDialog(ctx, "vrf_a2", d); err != nil {
		t.Fatal(err)
	}
	// b's leases are fresh: b takes nothing of a's yet.
	if o, err := b.ClaimOrphans(ctx, false); err != nil || len(o) != 0 {
		t.Fatalf("before expiry: %v %v", o, err)
	}
	// b renews its lease; a does not (it died).
	clk.Add(6 * time.Second)
	if err := b.RenewLeases(ctx, []string{"vrf_b1"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(5 * time.Second)
	o, err := b.ClaimOrphans(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(o) != 2 {
		t.Fatalf("orphans %+v", o)
	}
	for _, x := range o {
		if x.Node != "b" {
			t.Errorf("%s owned by %s after the claim", x.ID, x.Node)
		}
		if want := x.ID == "vrf_a2"; (x.Dialog != nil) != want {
			t.Errorf("%s: dialog %+v", x.ID, x.Dialog)
		}
		if x.Dialog != nil && (x.Dialog.CallID != "c1" || x.Dialog.CSeq != 2 || x.Dialog.RouteSet[0] != d.RouteSet[0]) {
			t.Errorf("dialog %+v", x.Dialog)
		}
	}
	// Claimed: nobody else takes them while b holds the lease.
	if o, err := a.ClaimOrphans(ctx, false); err != nil || len(o) != 0 {
		t.Fatalf("claimed twice: %v %v", o, err)
	}
	// At its start a node takes its own, lease or not.
	o, err = b.ClaimOrphans(ctx, true)
	if err != nil || len(o) != 3 {
		t.Fatalf("own at start: %d %v", len(o), err)
	}
}

func testEnrolments(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	s := open(t, "a", nil)
	if _, err := s.Enrolment(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("none yet: %v", err)
	}
	if err := s.PutEnrolment(ctx, "alice", "+447700900123"); err != nil {
		t.Fatal(err)
	}
	if err := s.ConfirmEnrolment(ctx, "alice", "vrf_1"); err != nil {
		t.Fatal(err)
	}
	e, err := s.Enrolment(ctx, "alice")
	if err != nil || e.E164 != "+447700900123" || e.ConfirmedAt == nil || e.VerificationID != "vrf_1" {
		t.Fatalf("%+v %v", e, err)
	}
	// A new number is unconfirmed until verified.
	if err := s.PutEnrolment(ctx, "alice", "+447700900124"); err != nil {
		t.Fatal(err)
	}
	if e, _ = s.Enrolment(ctx, "alice"); e.ConfirmedAt != nil || e.E164 != "+447700900124" {
		t.Errorf("replaced: %+v", e)
	}
	if err := s.ConfirmEnrolment(ctx, "bob", "vrf_2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("confirm unknown: %v", err)
	}
	if err := s.DeleteEnrolment(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enrolment(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

func appendRefusals(t *testing.T, s *Store, n int) {
	t.Helper()
	for i := range n {
		if err := s.Audit(context.Background(), AuditEvent{Event: EventRefusal, Scope: "tok", E164: fmt.Sprintf("+44770090%04d", i),
			Masked: "+4477*****000", Rule: "per_number_limit", Detail: map[string]any{"status": 429}}); err != nil {
			t.Fatal(err)
		}
	}
}

func testAuditChain(t *testing.T, be backend) {
	ctx := context.Background()
	cases := []struct {
		name    string
		tamper  string // SQL run on the database
		wantSeq int64
	}{
		{"intact", "", 0},
		{"a changed outcome", `UPDATE audit SET rule = 'allowed_regions' WHERE seq = 3`, 3},
		{"a changed row with its hash recomputed by hand", `UPDATE audit SET hash = 'ab' WHERE seq = 2`, 2},
		{"a deleted row", `DELETE FROM audit WHERE seq = 4`, 4},
		{"the newest rows deleted", `DELETE FROM audit WHERE seq >= 5`, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := be.fresh(t)(t, "a", nil)
			appendRefusals(t, s, 6)
			if tc.tamper != "" {
				if _, err := s.db.ExecContext(ctx, tc.tamper); err != nil {
					t.Fatal(err)
				}
			}
			n, err := s.VerifyAudit(ctx)
			var be *BrokenError
			if tc.wantSeq == 0 {
				if err != nil || n != 6 {
					t.Fatalf("intact chain: %d rows, %v", n, err)
				}
				return
			}
			if !errors.As(err, &be) || !errors.Is(err, ErrAuditBroken) || be.Seq != tc.wantSeq {
				t.Fatalf("got %v, want broken at %d", err, tc.wantSeq)
			}
		})
	}
}

func testPurge(t *testing.T, be backend) {
	open := be.fresh(t)
	ctx := context.Background()
	clk := newClock()
	s := open(t, "a", clk.Now)
	if _, _, err := s.Create(ctx, create("vrf_old")); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, Complete{ID: "vrf_old", Status: "completed", Result: result(verify.Verified), Audit: AuditEvent{Event: EventOutcome}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(ctx, create("vrf_open")); err != nil {
		t.Fatal(err)
	}
	appendRefusals(t, s, 2)
	clk.Add(31 * 24 * time.Hour)
	if _, _, err := s.Create(ctx, create("vrf_new")); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, Complete{ID: "vrf_new", Status: "completed", Result: result(verify.Verified), Audit: AuditEvent{Event: EventOutcome}}); err != nil {
		t.Fatal(err)
	}
	p, err := s.Purge(ctx, Retention{Verifications: 30 * 24 * time.Hour, Audit: 400 * 24 * time.Hour, RateWindow: time.Hour})
	if err != nil || p.Verifications != 1 || p.Audit != 0 {
		t.Fatalf("purge: %+v %v", p, err)
	}
	for id, want := range map[string]error{"vrf_old": ErrNotFound, "vrf_open": nil, "vrf_new": nil} {
		if _, err := s.Get(ctx, id); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", id, err, want)
		}
	}
	// The audit rows outlive the verifications; then they go too, and the
	// chain still verifies from its new anchor.
	clk.Add(370 * 24 * time.Hour)
	appendRefusals(t, s, 1)
	if p, err = s.Purge(ctx, Retention{Audit: 400 * 24 * time.Hour}); err != nil || p.Audit != 3 {
		t.Fatalf("audit purge: %+v %v", p, err)
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != 2 {
		t.Fatalf("after purge: %d rows, %v", n, err)
	}
}

func testSchemaTooNew(t *testing.T, be backend) {
	open := be.fresh(t)
	s := open(t, "a", nil)
	if _, err := s.db.Exec(s.q(`INSERT INTO hashcall_schema (version, name, applied_at) VALUES (?, 'future', 0)`), SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	err := reopenErr(t, s)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("got %v, want ErrSchemaTooNew", err)
	}
}

// reopenErr opens the database s is on again and returns Open's error.
func reopenErr(t *testing.T, s *Store) error {
	t.Helper()
	var o Options
	switch s.driver {
	case DriverSQLite:
		var file string
		if err := s.db.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
			t.Fatal(err)
		}
		o = Options{Driver: DriverSQLite, Path: file}
	default:
		o = Options{Driver: DriverPostgres, DSN: s.dsn}
	}
	s2, err := Open(context.Background(), o)
	if err == nil {
		s2.Close()
	}
	return err
}
