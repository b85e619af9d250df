package interop

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Attacks on the HTTP hook of the built `hashcall serve`, through the lab's
// Kamailio to SIPp phones: each test performs one and checks that it fails,
// and that the genuine request still gets its answer.

// hookLab starts the lab, builds the binary and writes the short prompts.
func hookLab(t *testing.T) (l *lab, bin, promptsDir string) {
	t.Helper()
	l = startLab(t)
	return l, buildCLI(t, l.dir), writeShortPrompts(t)
}

// receiver is an HTTP endpoint on one loopback address that records the
// requests it gets; answer (nil: 204) makes its response.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []string // "METHOD PATH"
	hit chan struct{}
}

func newReceiver(t *testing.T, ip string, answer http.HandlerFunc) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	r := &receiver{hit: make(chan struct{}, 64)}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.got = append(r.got, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		select {
		case r.hit <- struct{}{}:
		default:
		}
		if answer != nil {
			answer(w, req)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// waitHits waits until r got n requests, or within passes.
func (r *receiver) waitHits(n int, within time.Duration) bool {
	deadline := time.After(within)
	for len(r.requests()) < n {
		select {
		case <-r.hit:
		case <-deadline:
			return false
		}
	}
	return true
}

// waitLog waits until the server's log contains sub.
func (s *server) waitLog(t *testing.T, sub string, within time.Duration) {
	t.Helper()
	s.proc.waitLog(t, within, fmt.Sprintf("%q in the log", sub), func(log string) bool { return strings.Contains(log, sub) })
}

// TestAttackIdempotencyReuse: a client replays an Idempotency-Key that was
// used for a verified call, with another number, hoping for the earlier
// "verified" without a call. It gets 422 idempotency_key_reused, Kamailio
// sees no INVITE for the other number, and the genuine retry still gets the
// verified verification.
func TestAttackIdempotencyReuse(t *testing.T) {
	l, bin, promptsDir := hookLab(t)
	sipp := l.startUAS(t, "rfc4733_pound")
	number := mobileNumber(sipp.scenario.number)
	other := mobileNumber("9006") // routed to the silent phone, which is not running
	s := l.startServe(t, bin, promptsDir, serveOptions{})
	mark := len(l.kamLog())
	const key = "login-8f3a-attempt-1"
	body := `{"to":"` + number + `","reference":"vpn-login alice"}`
	v := s.create(t, body, "Idempotency-Key", key)
	got := s.poll(t, v.ID)
	if got.Outcome != "verified" {
		t.Fatalf("the genuine call: %+v, want verified", got)
	}
	sippDone(t, sipp, 10*time.Second)
	attacks := []struct{ name, body string }{
		{"another number", `{"to":"` + other + `","reference":"vpn-login alice"}`},
		{"another number, national form", `{"to":"07700 900006","reference":"vpn-login alice"}`},
		{"another reference", `{"to":"` + number + `","reference":"vpn-login mallory"}`},
		{"a callback added", `{"to":"` + number + `","reference":"vpn-login alice","callback_url":"http://127.0.0.1:9/cb"}`},
	}
	for _, a := range attacks {
		r := s.must(t, "POST", "/v1/verifications", a.body, "Idempotency-Key", key)
		t.Logf("%-30s %d %s: %s", a.name, r.status, r.err.Code, r.err.Message)
		if r.status != 422 || r.err.Code != "idempotency_key_reused" || strings.Contains(string(r.body), `"verified"`) {
			t.Errorf("%s under the used key: %s, want 422 idempotency_key_reused", a.name, r)
		}
	}
	// The genuine retry still gets its verification.
	again := s.create(t, body, "Idempotency-Key", key)
	if again.ID != v.ID || again.Outcome != "verified" {
		t.Errorf("the genuine retry: %+v, want %s verified", again, v.ID)
	}
	s.stopAndWait(t) // no stray INVITE from it, up to its exit
	kam := l.kamLog()[mark:]
	if n := dialled(kam, other); n != 0 {
		t.Errorf("Kamailio saw %d INVITEs for %s, want none", n, other)
	}
	if n := routed(kam, number); n != 1 {
		t.Errorf("Kamailio routed %d INVITEs for %s, want 1", n, number)
	}
	if n := countLines(kam, "interop: request INVITE"); n != 2 {
		t.Errorf("Kamailio saw %d INVITEs in all, want 2 (one call, challenged once)", n)
	}
}

// TestAttackCallbackRedirect: the allowed callback host answers 302 to
// another host (127.0.0.2, not in http.callback_hosts) and then 307 to
// another port of itself. hashcall follows neither: the targets receive
// nothing (not the body, not the signature), the redirects are counted,
// and the verification itself is verified.
func TestAttackCallbackRedirect(t *testing.T) {
	l, bin, promptsDir := hookLab(t)
	sipp := l.startUAS(t, "rfc4733_pound")
	number := mobileNumber(sipp.scenario.number)
	foreign := newReceiver(t, "127.0.0.2", nil)
	samePort := newReceiver(t, "127.0.0.1", nil)
	var n int
	var mu sync.Mutex
	allowed := newReceiver(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first {
			http.Redirect(w, r, foreign.srv.URL+"/steal", http.StatusFound)
			return
		}
		http.Redirect(w, r, samePort.srv.URL+"/steal", http.StatusTemporaryRedirect)
	})
	s := l.startServe(t, bin, promptsDir, serveOptions{})
	v := s.create(t, `{"to":"`+number+`","callback_url":"`+allowed.srv.URL+`/hashcall/callback"}`)
	if got := s.poll(t, v.ID); got.Outcome != "verified" {
		t.Errorf("the call: %+v, want verified", got)
	}
	// Attempts at 0, 1 s and 3 s (back-off): wait for three.
	if !allowed.waitHits(3, 15*time.Second) {
		t.Fatalf("the callback host got %v, want three attempts", allowed.requests())
	}
	// Each refused redirect is counted before its attempt is logged failed.
	s.proc.waitLog(t, 10*time.Second, "three failed callbacks", func(log string) bool {
		return strings.Count(log, `"msg":"callback failed"`) >= 3
	})
	blocked := s.metric(t, `hashcall_callback_blocked_total{reason="redirect"}`)
	delivered := s.metric(t, `hashcall_callbacks_total{result="delivered"}`)
	s.stopAndWait(t) // no followed redirect, up to its exit
	t.Logf("callback host got %v; 127.0.0.2 got %v; the other port got %v", allowed.requests(), foreign.requests(), samePort.requests())
	if got := foreign.requests(); len(got) != 0 {
		t.Errorf("the foreign host received %v: a redirect was followed", got)
	}
	if got := samePort.requests(); len(got) != 0 {
		t.Errorf("the other port received %v: a redirect was followed", got)
	}
	if m := blocked; m < 3 {
		t.Errorf(`hashcall_callback_blocked_total{reason="redirect"} %v, want at least 3`, m)
	}
	if m := delivered; m > 0 {
		t.Errorf("a redirect counted as delivered")
	}
	sippDone(t, sipp, 10*time.Second)
}

// TestAttackCallbackRebinding: an allowed callback host name that resolves,
// when the callback connects, to another address than the one it is known
// by: http.callback_hosts [localhost] with its address pinned to 127.0.0.2
// (http.callback_addresses), while localhost resolves to 127.0.0.1 (and
// ::1), where another service listens. The callback connects to neither;
// the refusals are counted and logged, and the call is verified.
func TestAttackCallbackRebinding(t *testing.T) {
	l, bin, promptsDir := hookLab(t)
	sipp := l.startUAS(t, "rfc4733_pound")
	number := mobileNumber(sipp.scenario.number)
	other := newReceiver(t, "127.0.0.1", nil)
	_, port, _ := net.SplitHostPort(other.srv.Listener.Addr().String())
	pinned := newReceiver(t, "127.0.0.2", nil) // the host's own address, for contrast: not what localhost resolves to
	s := l.startServe(t, bin, promptsDir, serveOptions{
		callbackHosts: []string{"localhost"},
		callbackAddrs: []string{"localhost=127.0.0.2"},
	})
	// The string check passes: localhost is listed.
	v := s.create(t, `{"to":"`+number+`","callback_url":"http://localhost:`+port+`/hashcall/callback"}`)
	if got := s.poll(t, v.ID); got.Outcome != "verified" {
		t.Errorf("the call: %+v, want verified", got)
	}
	// Two attempts (0 and 1 s), each refused at connect.
	s.waitLog(t, "callback address not allowed", 10*time.Second)
	s.proc.waitLog(t, 10*time.Second, "two failed callbacks", func(log string) bool {
		return strings.Count(log, `"msg":"callback failed"`) >= 2
	})
	t.Logf("127.0.0.1:%s got %v; 127.0.0.2 got %v", port, other.requests(), pinned.requests())
	if got := other.requests(); len(got) != 0 {
		t.Errorf("the other address received %v: the connect-time check let a rebound name through", got)
	}
	if m := s.metric(t, `hashcall_callback_blocked_total{reason="address"}`); m < 2 {
		t.Errorf(`hashcall_callback_blocked_total{reason="address"} %v, want at least 2`, m)
	}
	if !strings.Contains(s.log(), "localhost is at 127.0.0.1") {
		t.Errorf("the log does not say where the name resolved:\n%s", s.tail(20))
	}
	// A host that is not listed is refused before any call.
	r := s.must(t, "POST", "/v1/verifications", `{"to":"`+number+`","callback_url":"http://127.0.0.1:`+port+`/cb"}`)
	if r.status != 400 || r.err.Code != "callback_not_allowed" {
		t.Errorf("a literal address that is not listed: %s, want 400 callback_not_allowed", r)
	}
	sippDone(t, sipp, 10*time.Second)
}

// TestAttackEmptyCallbackSecret: with callbacks possible (callback_hosts
// not empty), an empty or short callback_secret would sign callbacks with
// a key anyone can guess. The binary refuses to start: exit status 2, the
// message names http.callback_secret, and it never contacts the trunk.
func TestAttackEmptyCallbackSecret(t *testing.T) {
	l, bin, promptsDir := hookLab(t)
	empty, short := "", strings.Repeat("k", 31)
	tests := []struct {
		name   string
		secret *string
		want   string
	}{
		{"empty", &empty, "required when http.callback_hosts is not empty"},
		{"31 bytes", &short, "shorter than 32 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mark := len(l.kamLog())
			p, base := l.runServe(t, bin, promptsDir, serveOptions{callbackSecret: tc.secret})
			code, ok := p.wait(15 * time.Second)
			if !ok {
				t.Fatalf("hashcall serve still running with callback_secret of %d bytes:\n%s", len(*tc.secret), p.tail(20))
			}
			out := p.log()
			t.Logf("exit %d: %s", code, strings.TrimSpace(out))
			if code != 2 || !strings.Contains(out, "http.callback_secret") || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want 2 with http.callback_secret: %s:\n%s", code, tc.want, out)
			}
			if strings.Contains(out, short) {
				t.Error("the message shows the secret")
			}
			if _, err := http.Get(base + "/healthz"); err == nil {
				t.Error("the HTTP hook answers")
			}
			if n := countLines(l.kamLog()[mark:], "interop: request "); n != 0 {
				t.Errorf("the refused daemon sent %d requests to the trunk", n)
			}
		})
	}
	// With callbacks off, no secret is needed.
	none := ""
	s := l.startServe(t, bin, promptsDir, serveOptions{callbackHosts: []string{}, callbackSecret: &none})
	if r := s.must(t, "POST", "/v1/verifications", `{"to":"`+mobileNumber("9006")+`","callback_url":"http://127.0.0.1:9/cb"}`); r.status != 400 || r.err.Code != "callback_not_allowed" {
		t.Errorf("a callback with callbacks off: %s, want 400 callback_not_allowed", r)
	}
}

// TestAttackQuotaAt429: with policy.max_concurrent reached, requests for a
// number get 429 max_concurrent; those must not spend its per-number quota
// (3 per 15 min) nor the global one. After the busy slot frees, the number
// still gets its 3 calls, and only the 4th is refused by per_number_limit.
func TestAttackQuotaAt429(t *testing.T) {
	l, bin, promptsDir := hookLab(t)
	ringing := l.startUAS(t, "ring_forever")
	busy := l.startUASOn(t, "busy", l.uasPorts["busy"], 3)
	number := mobileNumber(busy.scenario.number)
	s := l.startServe(t, bin, promptsDir, serveOptions{maxConcurrent: 1, perNumber: "3/15m", ringTimeout: 25 * time.Second})
	mark := len(l.kamLog())
	// The one call slot is taken by a call that rings.
	hold := s.create(t, `{"to":"`+mobileNumber(ringing.scenario.number)+`"}`)
	s.waitStatus(t, hold.ID, "ringing", 10*time.Second)
	const attempts = 4
	for i := range attempts {
		r := s.must(t, "POST", "/v1/verifications", `{"to":"`+number+`"}`)
		if r.status != 429 || !strings.Contains(r.err.Message, "max_concurrent") || r.header.Get("Retry-After") == "" {
			t.Fatalf("request %d with the slot taken: %s, want 429 max_concurrent with Retry-After", i+1, r)
		}
	}
	// Free the slot.
	if r := s.must(t, "DELETE", "/v1/verifications/"+hold.ID, ""); r.v.Outcome != "cancelled" {
		t.Fatalf("DELETE: %s", r)
	}
	sippDone(t, ringing, 10*time.Second)
	for i := range 3 {
		v := s.create(t, fmt.Sprintf(`{"to":%q,"reference":"after-429-%d"}`, number, i))
		if got := s.poll(t, v.ID); got.Outcome != "busy" || got.SIPCode != 486 {
			t.Errorf("call %d after the 429s: %+v, want busy 486", i+1, got)
		}
	}
	r := s.must(t, "POST", "/v1/verifications", `{"to":"`+number+`"}`)
	if r.status != 429 || !strings.Contains(r.err.Message, "per_number_limit") {
		t.Errorf("the 4th call: %s, want 429 per_number_limit", r)
	}
	sippDone(t, busy, 10*time.Second)
	refusals := map[string]float64{}
	for _, rule := range []string{"max_concurrent", "per_number_limit"} {
		refusals[rule] = s.metric(t, `hashcall_policy_refusals_total{rule="`+rule+`"}`)
	}
	s.stopAndWait(t) // no other INVITE from it, up to its exit
	kam := l.kamLog()[mark:]
	if n := routed(kam, number); n != 3 {
		t.Errorf("Kamailio routed %d INVITEs for %s, want 3", n, number)
	}
	if st := busy.stats(t); st.incoming != 3 {
		t.Errorf("SIPp took %d calls, want 3", st.incoming)
	}
	for rule, want := range map[string]float64{"max_concurrent": attempts, "per_number_limit": 1} {
		if got := refusals[rule]; got != want {
			t.Errorf("hashcall_policy_refusals_total{rule=%q} %v, want %v", rule, got, want)
		}
	}
}

// TestAttackCrossTokenRead: a second client (token B) reads and cancels a
// verification that token A created, by its id. Both get 404, exactly as
// for an unknown id, and A's call goes on to verified.
func TestAttackCrossTokenRead(t *testing.T) {
	l, bin, promptsDir := hookLab(t)
	sipp := l.startUAS(t, "rfc4733_pound")
	number := mobileNumber(sipp.scenario.number)
	const tokenB = "interop-serve-token-B-9876543210"
	s := l.startServe(t, bin, promptsDir, serveOptions{tokens: []string{serveToken, tokenB}})
	mark := len(l.kamLog())
	v := s.create(t, `{"to":"`+number+`","reference":"alice"}`)
	b := []string{"Authorization", "Bearer " + tokenB}
	unknown := "vrf_000000000000000000000000"
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/verifications/" + v.ID},
		{"DELETE", "/v1/verifications/" + v.ID},
		{"GET", "/v1/verifications/" + v.ID + "?wait=1s"},
		{"DELETE", "/v1/verifications/" + v.ID},
	} {
		r := s.must(t, tc.method, tc.path, "", b...)
		u := s.must(t, tc.method, strings.Replace(tc.path, v.ID, unknown, 1), "", b...)
		if r.status != 404 || r.err.Code != "not_found" || r.err.Message != u.err.Message {
			t.Errorf("token B %s %s: %s, want 404 not_found as for an unknown id (%s)", tc.method, tc.path, r, u)
		}
		if strings.Contains(string(r.body), "alice") || strings.Contains(string(r.body), "77**") {
			t.Errorf("token B %s %s: the body reveals A's verification: %s", tc.method, tc.path, r.body)
		}
	}
	got := s.poll(t, v.ID)
	if got.Outcome != "verified" || got.Reference != "alice" {
		t.Errorf("A's call after B's DELETEs: %+v, want verified", got)
	}
	sippDone(t, sipp, 10*time.Second)
	kam := l.kamLog()[mark:]
	if n := countLines(kam, "interop: relaying CANCEL") + countLines(kam, "interop: request BYE"); n > 1 {
		t.Errorf("Kamailio saw %d CANCELs and BYEs: B's DELETE reached the call", n)
	}
	if n := routed(kam, number); n != 1 {
		t.Errorf("Kamailio routed %d INVITEs, want 1", n)
	}
}
