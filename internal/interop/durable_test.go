package interop

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/pgtest"
	"github.com/hashcall/hashcall/internal/testwait"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", to read serve's store
)

// TestServeDurable runs the built `hashcall serve` on its store through
// the lab: limits that hold across SIGTERM and kill -9, a daemon killed
// mid-call whose next start marks the call interrupted, calls back once and
// hangs the callee's leg up, and two daemons on one PostgreSQL.
func TestServeDurable(t *testing.T) {
	l := startLab(t)
	bin := buildCLI(t, l.dir)
	promptsDir := writeShortPrompts(t)
	kamMark := func() int { return len(l.kamLog()) }
	kamSince := func(mark int) string { return l.kamLog()[mark:] }

	t.Run("limits_across_sigterm_and_kill", func(t *testing.T) {
		sipp := l.startUASOn(t, "decline", l.uasPorts["decline"], 3)
		number := mobileNumber(sipp.scenario.number)
		o := serveOptions{storePath: filepath.Join(t.TempDir(), "hashcall.db")}
		mark := kamMark()
		body := `{"to":"` + number + `"}`
		// Two calls, then SIGTERM; one more, then kill -9; the fourth is
		// refused after the second restart.
		s := l.startServe(t, bin, promptsDir, o)
		for range 2 {
			if v := s.poll(t, s.create(t, body).ID); v.Outcome != "declined" {
				t.Fatalf("%+v, want declined", v)
			}
		}
		s.stop(t)
		s = l.startServe(t, bin, promptsDir, o)
		if v := s.poll(t, s.create(t, body).ID); v.Outcome != "declined" {
			t.Fatalf("%+v, want declined", v)
		}
		if err := s.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		s.wait(10 * time.Second)
		s = l.startServe(t, bin, promptsDir, o)
		r := s.must(t, "POST", "/v1/verifications", body)
		if r.status != http.StatusTooManyRequests || r.err.Code != "rate_limited" {
			t.Errorf("the 4th call after SIGTERM and kill -9: %s, want 429 rate_limited", r)
		}
		sippDone(t, sipp, 10*time.Second)
		if n := routed(kamSince(mark), number); n != 3 {
			t.Errorf("Kamailio relayed %d INVITEs for %s to the phone, want 3", n, number)
		}
		// The store's latency and errors are on /metrics.
		if n := s.metric(t, `hashcall_store_seconds_count{op="create"}`); n != 1 {
			t.Errorf("hashcall_store_seconds_count{op=\"create\"} = %v, want 1 (the refused create)", n)
		}
		if n := s.metric(t, `hashcall_store_errors_total{op="create"}`); n != -1 && n != 0 {
			t.Errorf("store errors on create: %v", n)
		}
	})

	t.Run("kill9_mid_call", func(t *testing.T) {
		sipp := l.startUAS(t, "silent")
		number := mobileNumber(sipp.scenario.number)
		o := serveOptions{storePath: filepath.Join(t.TempDir(), "hashcall.db"), answerTimeout: 15 * time.Second}
		cb := newCallbackSink(t)
		mark := kamMark()
		s := l.startServe(t, bin, promptsDir, o)
		logMark := len(s.log())
		v := s.create(t, `{"to":"`+number+`","callback_url":"`+cb.url()+`"}`)
		s.waitStatus(t, v.ID, "answered", 10*time.Second)
		// SIPp's scenario takes a BYE only after its 1 s pause.
		s.waitPastPause(t, logMark)
		if err := s.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		s.wait(10 * time.Second)
		s = l.startServe(t, bin, promptsDir, o)
		got := s.must(t, "GET", "/v1/verifications/"+v.ID, "")
		if got.status != 200 || got.v.Status != "completed" || got.v.Outcome != "interrupted" {
			t.Errorf("after the restart: %s, want completed and interrupted", got)
		}
		sippDone(t, sipp, 10*time.Second) // our BYE came and was answered
		if n := countLines(kamSince(mark), "interop: request BYE"); n != 1 {
			t.Errorf("Kamailio saw %d BYEs, want 1", n)
		}
		cbs := cb.waitCallbacks(1, 10*time.Second)
		if len(cbs[v.ID]) != 1 || cbs[v.ID][0].Outcome != "interrupted" {
			t.Errorf("callbacks %+v, want one, interrupted", cbs[v.ID])
		}
		s.stop(t) // flushes nothing more: the callback went once
		if n := len(cb.waitCallbacks(2, 0)[v.ID]); n != 1 {
			t.Errorf("%d callbacks, want 1", n)
		}
	})

	t.Run("kill9_while_ringing", func(t *testing.T) {
		sipp := l.startUAS(t, "ring_forever")
		number := mobileNumber(sipp.scenario.number)
		o := serveOptions{storePath: filepath.Join(t.TempDir(), "hashcall.db")}
		cb := newCallbackSink(t)
		mark := kamMark()
		s := l.startServe(t, bin, promptsDir, o)
		v := s.create(t, `{"to":"`+number+`","callback_url":"`+cb.url()+`"}`)
		s.waitStatus(t, v.ID, "ringing", 10*time.Second)
		// The ringing call's dialog reaches the store off the call path:
		// kill -9 once its row is in the database file.
		waitStoredDialog(t, o.storePath, v.ID)
		if err := s.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		s.wait(10 * time.Second)
		s = l.startServe(t, bin, promptsDir, o)
		got := s.must(t, "GET", "/v1/verifications/"+v.ID, "")
		if got.v.Outcome != "interrupted" {
			t.Errorf("after the restart: %s, want interrupted", got)
		}
		sippDone(t, sipp, 10*time.Second) // our CANCEL came: SIPp answered 487
		if n := countLines(kamSince(mark), "interop: relaying CANCEL"); n != 1 {
			t.Errorf("Kamailio relayed %d CANCELs, want 1", n)
		}
		if cbs := cb.waitCallbacks(1, 10*time.Second); len(cbs[v.ID]) != 1 || cbs[v.ID][0].Outcome != "interrupted" {
			t.Errorf("callbacks %+v, want one, interrupted", cbs[v.ID])
		}
	})

	t.Run("two_nodes_on_postgres", func(t *testing.T) {
		pg := pgtest.Start(t)
		dsn := pg.NewDatabase(t)
		const lease = 5 * time.Second
		a := l.startServe(t, bin, promptsDir, serveOptions{storeDSN: dsn, node: "node-a", lease: lease, answerTimeout: 15 * time.Second})
		b := l.startServe(t, bin, promptsDir, serveOptions{storeDSN: dsn, node: "node-b", lease: lease, answerTimeout: 15 * time.Second})

		t.Run("burst_under_the_limit", func(t *testing.T) {
			sipp := l.startUASOn(t, "decline", l.uasPorts["decline"], 3)
			number := mobileNumber(sipp.scenario.number)
			mark := kamMark()
			var wg sync.WaitGroup
			var mu sync.Mutex
			codes := map[int]int{}
			var ids []string
			for i := range 10 {
				s := a
				if i%2 == 1 {
					s = b
				}
				wg.Go(func() {
					r, err := s.call("POST", "/v1/verifications", `{"to":"`+number+`"}`)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					codes[r.status]++
					if r.status == http.StatusAccepted {
						ids = append(ids, r.v.ID)
					}
				})
			}
			wg.Wait()
			if codes[202] != 3 || codes[429] != 7 {
				t.Errorf("codes %v, want 3×202 and 7×429", codes)
			}
			for _, id := range ids {
				// Either node answers for any verification.
				if v := b.poll(t, id); v.Outcome != "declined" {
					t.Errorf("%s: %+v", id, v)
				}
			}
			sippDone(t, sipp, 10*time.Second)
			if n := routed(kamSince(mark), number); n != 3 {
				t.Errorf("Kamailio relayed %d INVITEs to the phone, want 3", n)
			}
		})

		t.Run("long_poll_on_b_for_a", func(t *testing.T) {
			sipp := l.startUAS(t, "rfc4733_pound")
			v := a.create(t, `{"to":"`+mobileNumber(sipp.scenario.number)+`"}`)
			start := time.Now()
			got := b.poll(t, v.ID)
			t.Logf("B's long-poll returned %s after %v", got.Outcome, time.Since(start).Round(time.Millisecond))
			if got.Outcome != "verified" {
				t.Errorf("B's long-poll: %+v, want verified", got)
			}
			sippDone(t, sipp, 10*time.Second)
		})

		t.Run("kill_a_mid_call", func(t *testing.T) {
			sipp := l.startUAS(t, "silent")
			cb := newCallbackSink(t)
			mark := kamMark()
			logMark := len(a.log())
			v := a.create(t, `{"to":"`+mobileNumber(sipp.scenario.number)+`","callback_url":"`+cb.url()+`"}`)
			a.waitStatus(t, v.ID, "answered", 10*time.Second)
			a.waitPastPause(t, logMark) // SIPp takes a BYE after its 1 s pause
			if err := a.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed := time.Now()
			got := b.poll(t, v.ID)
			took := time.Since(killed)
			t.Logf("B marked A's call %s %v after the kill (lease %v)", got.Outcome, took.Round(time.Millisecond), lease)
			if got.Outcome != "interrupted" {
				t.Errorf("B's view: %+v, want interrupted", got)
			}
			if took > lease+5*time.Second {
				t.Errorf("interrupted %v after the kill, want within the lease + 5 s", took)
			}
			sippDone(t, sipp, 10*time.Second) // B's BYE came and was answered
			if n := countLines(kamSince(mark), "interop: request BYE"); n != 1 {
				t.Errorf("Kamailio saw %d BYEs, want 1", n)
			}
			cbs := cb.waitCallbacks(1, 10*time.Second)
			if len(cbs[v.ID]) != 1 || cbs[v.ID][0].Outcome != "interrupted" {
				t.Errorf("callbacks %+v, want one, interrupted", cbs[v.ID])
			}
			b.stop(t)
			if n := len(cb.waitCallbacks(2, 0)[v.ID]); n != 1 {
				t.Errorf("%d callbacks, want 1", n)
			}
		})
	})
}

// waitStoredDialog waits until serve's SQLite store at path holds the
// dialog of verification id, reading it after each write to its
// write-ahead log (inotify).
func waitStoredDialog(t *testing.T, path, id string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var qerr error
	err = testwait.WaitFile(ctx, path+"-wal", func(string) bool {
		var n int
		qerr = db.QueryRowContext(ctx, `SELECT count(*) FROM dialogs WHERE verification_id = ?`, id).Scan(&n)
		return qerr == nil && n == 1
	})
	if err != nil {
		t.Fatalf("the dialog of %s never reached the store: %v (last query: %v)", id, err, qerr)
	}
}
