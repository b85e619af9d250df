package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/phone"
	"github.com/hashcall/hashcall/internal/testwait"
	"github.com/hashcall/hashcall/media"
)

const serveToken = "serve-test-token-0123456789"

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serveConfig writes a configuration for `hashcall serve` against a trunk.
func serveConfig(t *testing.T, trunk, httpAddr, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hashcall.yaml")
	y := fmt.Sprintf(`sip:
  listen: 127.0.0.1:0
  from: "+441234567890"
  trunk:
    address: %s
    options_interval: 1s
media:
  rtp_ports: "36000-36599"
verify:
  answer_timeout: 2s
  attempts: 1
http:
  listen: %s
  tokens: [%s]
  callback_hosts: [127.0.0.1]
  callback_secret: "callback-secret-0123456789abcdefghijkl"
policy:
  per_number_limit: 3/15m
  global_rate: 1000/1m
  max_concurrent: 100
shutdown:
  grace: 20s
store:
  path: %s
audit:
  hmac_key: "audit-key-0123456789"
%s`, trunk, httpAddr, serveToken, filepath.Join(filepath.Dir(p), "hashcall.db"), extra)
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type client struct {
	t     *testing.T
	base  string
	token string // default serveToken
}

func (c client) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	tok := c.token
	if tok == "" {
		tok = serveToken
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// waitReady waits for hashcall serve's log to say it serves HTTP and the
// trunk answered its OPTIONS, then checks that /readyz says ready.
func waitReady(t *testing.T, logs *testwait.Output, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := logs.Wait(ctx, func(s string) bool {
		return strings.Contains(s, "hashcall serving") && strings.Contains(s, "trunk up")
	}); err != nil {
		t.Fatalf("hashcall serve never became ready: %v\n%s", err, logs)
	}
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/readyz after the trunk came up: %d\n%s", res.StatusCode, logs)
	}
}

// serveLogs returns where a hashcall serve of t logs, shown if t fails.
func serveLogs(t *testing.T) *testwait.Output {
	logs := &testwait.Output{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hashcall serve's log:\n%s", logs)
		}
	})
	return logs
}

// TestServe runs `hashcall serve` in-process against the simulated phone:
// long-poll, signed callback, 100 parallel verifications with no lost or
// duplicated outcome, and a drain with a call in flight.
func TestServe(t *testing.T) {
	if testing.Short() {
		t.Skip("real calls")
	}
	ph, err := phone.Start(context.Background(), phone.Config{Method: phone.MethodRFC4733, After: pressAfter(t), Ports: media.PortRange{Low: 37000, High: 37599}})
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	var mu sync.Mutex
	callbacks := map[string]map[string]any{}
	delivered := &testwait.Output{} // a line per callback received
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts, sig, _ := strings.Cut(strings.TrimPrefix(r.Header.Get("X-Hashcall-Signature"), "t="), ",v1=")
		m := hmac.New(sha256.New, []byte("callback-secret-0123456789abcdefghijkl"))
		m.Write([]byte(ts + "." + string(body)))
		if hex.EncodeToString(m.Sum(nil)) != sig {
			t.Errorf("bad callback signature %q", r.Header.Get("X-Hashcall-Signature"))
		}
		var v map[string]any
		_ = json.Unmarshal(body, &v)
		mu.Lock()
		callbacks[v["id"].(string)] = v
		mu.Unlock()
		fmt.Fprintf(delivered, "%s\n", v["id"])
	}))
	defer cb.Close()

	httpAddr := freePort(t)
	cfg := serveConfig(t, ph.Addr(), httpAddr, "")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	logs := serveLogs(t)
	go func() { served <- serve(ctx, cfg, false, logs) }()
	base := "http://" + httpAddr
	waitReady(t, logs, base)
	c := client{t: t, base: base}

	// One verification, long-polled, with a callback.
	code, v := c.do("POST", "/v1/verifications", `{"to":"+447700900123","reference":"vpn-login","callback_url":"`+cb.URL+`/hook"}`)
	if code != 202 || v["status"] == nil {
		t.Fatalf("POST: %d %v", code, v)
	}
	id := v["id"].(string)
	_, v = c.do("GET", "/v1/verifications/"+id+"?wait=30s", "")
	if v["outcome"] != "verified" || v["dtmf_source"] != "rfc4733" || v["sip_code"] != float64(200) {
		t.Fatalf("long-poll: %v", v)
	}
	t.Logf("call set-up %v ms, # to decision %v ms", v["setup_ms"], v["hash_to_decision_ms"])

	// 100 in parallel, each to its own number.
	const n = 100
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, v := c.do("POST", "/v1/verifications", fmt.Sprintf(`{"to":"+447700900%03d","callback_url":"%s/hook"}`, 200+i, cb.URL))
			if code != 202 {
				t.Errorf("parallel %d: %d %v", i, code, v)
				return
			}
			ids[i] = v["id"].(string)
		}()
	}
	wg.Wait()
	outcomes := map[string]int{}
	for i, id := range ids {
		if id == "" {
			continue
		}
		_, v := c.do("GET", "/v1/verifications/"+id+"?wait=60s", "")
		if v["status"] != "completed" {
			t.Errorf("parallel %d not completed: %v", i, v)
		}
		outcomes[fmt.Sprint(v["outcome"])]++
	}
	t.Logf("100 parallel: %v", outcomes)
	if outcomes["verified"] != n {
		t.Errorf("outcomes %v, want %d verified", outcomes, n)
	}
	// Every call gets exactly one callback.
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(callbacks)
	}
	cbctx, cbcancel := context.WithTimeout(t.Context(), 10*time.Second)
	_ = delivered.Wait(cbctx, func(string) bool { return count() >= n+1 })
	cbcancel()
	if got := count(); got != n+1 {
		t.Errorf("%d callbacks, want %d", got, n+1)
	}

	// Drain with a call in flight: it completes, then serve returns nil.
	code, v = c.do("POST", "/v1/verifications", `{"to":"+447700900999"}`)
	if code != 202 {
		t.Fatalf("POST before drain: %d %v", code, v)
	}
	last := v["id"].(string)
	cancel() // as SIGTERM does
	dctx, dcancel := context.WithTimeout(t.Context(), 10*time.Second)
	// The service logs "draining" once it refuses new verifications.
	if err := logs.WaitContains(dctx, "msg=draining"); err != nil {
		t.Fatalf("no drain after the cancel: %v", err)
	}
	dcancel()
	if res, err := http.Get(base + "/readyz"); err == nil {
		if res.StatusCode != 503 {
			t.Errorf("readyz while draining: %d", res.StatusCode)
		}
		res.Body.Close()
	}
	if code, _ := c.do("POST", "/v1/verifications", `{"to":"+447700900998"}`); code != 503 {
		t.Errorf("POST while draining: %d", code)
	}
	_, v = c.do("GET", "/v1/verifications/"+last+"?wait=30s", "")
	if v["outcome"] != "verified" {
		t.Errorf("call in flight during drain: %v", v)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after the drain")
	}
}

// TestServeSIGTERM builds the binary and checks the exit status of a
// drain started by SIGTERM with a call in flight.
func TestServeSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and places a real call")
	}
	bin := filepath.Join(t.TempDir(), "hashcall")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	phoneLog := &testwait.Output{}
	ph, err := phone.Start(context.Background(), phone.Config{Method: phone.MethodInband, After: pressAfter(t), Ports: media.PortRange{Low: 38000, High: 38099},
		Logger: slog.New(slog.NewTextHandler(phoneLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	httpAddr := freePort(t)
	cfg := serveConfig(t, ph.Addr(), httpAddr, "")
	cmd := exec.Command(bin, "serve", "--config", cfg)
	logs := serveLogs(t)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://" + httpAddr
	waitReady(t, logs, base)
	c := client{t: t, base: base}

	// SIGHUP reloads the tokens: the old one stops working, the new one works.
	newToken := "reloaded-token-0123456789"
	y, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(y), serveToken, newToken, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	hctx, hcancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer hcancel()
	if err := logs.WaitContains(hctx, "reloaded tokens and policy"); err != nil {
		t.Fatalf("no reload after SIGHUP: %v", err)
	}
	if code, _ := c.do("GET", "/v1/verifications/none", ""); code != 401 {
		t.Fatalf("the old token still works after SIGHUP: %d", code)
	}
	c.token = newToken
	if code, _ := c.do("GET", "/v1/verifications/none", ""); code != 404 {
		t.Fatalf("new token after SIGHUP: %d", code)
	}

	code, v := c.do("POST", "/v1/verifications", `{"to":"+447700900123"}`)
	if code != 202 {
		t.Fatalf("POST: %d %v", code, v)
	}
	id := v["id"].(string)
	// SIGTERM once the phone has answered (and the ACK came): the prompt
	// plays, the key comes pressAfter later.
	actx, acancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer acancel()
	if err := phoneLog.WaitContains(actx, "msg=answered"); err != nil {
		t.Fatalf("the phone did not answer: %v\n%s", err, phoneLog)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, v = c.do("GET", "/v1/verifications/"+id+"?wait=30s", "")
	if v["outcome"] != "verified" {
		t.Errorf("call in flight at SIGTERM: %v", v)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "+447700900123") {
		t.Error("the number appears unmasked in the logs")
	}
	if !strings.Contains(logs.String(), "audit") {
		t.Error("no audit record in the logs")
	}
}
