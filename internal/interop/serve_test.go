package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/testwait"
	"github.com/hashcall/hashcall/media/wav"
	"github.com/hashcall/hashcall/prompts"
)

// End-to-end tests of the built `hashcall serve` binary: Go HTTP clients
// ask it for verifications, it calls through the lab's Kamailio (digest
// auth) to SIPp UAS phones on the UK mobile aliases of the test numbers
// (+447700900xxx, see mobileNumber), and the tests check the answers, the
// callbacks, Kamailio's log and SIPp's exit status.
//
// Each subtest runs its own `hashcall serve` (HTTP on 127.0.0.1 from
// serveHTTPBase, RTP from serveRTPBase), with 0.5 s prompts from a
// prompts.dir written at test time, so that a verified call takes about two
// seconds.

const (
	serveHTTPBase  = 25800 // hashcall serve's HTTP port (TCP), first free from here
	serveRTPBase   = 29000 // hashcall serve's media.rtp_ports, first free range from here (internal/testpeers uses 27060–28999)
	deadTrunkBase  = 25700 // a trunk address where nothing listens (UDP), first free from here
	serveToken     = "interop-serve-token-0123456789"
	callbackSecret = "interop-callback-secret-0123456789"
	// Long-polls never take longer than this.
	pollTimeout = 70 * time.Second
)

// serveOptions are the settings of one `hashcall serve` that differ
// between subtests; the zero value is the usual.
type serveOptions struct {
	trunk           string        // sip.trunk.address; "" is the lab's Kamailio
	answerTimeout   time.Duration // verify.answer_timeout; 0 is 2 s
	ringTimeout     time.Duration // sip.ring_timeout; 0 is 20 s
	perNumber       string        // policy.per_number_limit; "" is 3/15m (the default)
	maxConcurrent   int           // policy.max_concurrent; 0 is 10
	optionsInterval time.Duration // sip.trunk.options_interval; 0 is 1 s
	tokens          []string      // http.tokens; nil is [serveToken]
	callbackHosts   []string      // http.callback_hosts; nil is [127.0.0.1]
	callbackAddrs   []string      // http.callback_addresses; nil is none
	callbackSecret  *string       // http.callback_secret; nil is callbackSecret
	extraYAML       string        // more top-level sections (eam:, radius:, directory:)
	env             []string      // more environment variables
	readyPath       string        // what to wait for; "" is /readyz (/healthz with a dead trunk)
	// The store: storePath is the SQLite file ("" is one in the run's
	// folder, new each run; give one to keep the state across restarts);
	// storeDSN, when set, selects PostgreSQL (passed in the environment).
	storePath string
	storeDSN  string
	node      string // store.node; "" is the host name
	// rtpMux turns media.rtp_mux on; muxPort, when set, receives the
	// shared port.
	rtpMux  bool
	muxPort *int
	lease   time.Duration // store.lease; 0 is 30 s
}

// server is a running `hashcall serve`.
type server struct {
	*proc
	base string // http://127.0.0.1:PORT
}

// writeShortPrompts writes 0.5 s en-GB and en-US prompts (the start of the embedded
// ones) into a new folder for prompts.dir and returns it.
func writeShortPrompts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// Both shipped locales: the Entra page picks en-US from a browser's
	// Accept-Language, and a locale missing here would fall back to the
	// embedded prompts, whose "press" phrase comes 4 s in.
	for _, locale := range []string{"en-GB", "en-US"} {
		set, err := prompts.Load("", locale)
		if err != nil {
			t.Fatal(err)
		}
		loc := filepath.Join(dir, locale)
		if err := os.Mkdir(loc, 0o755); err != nil {
			t.Fatal(err)
		}
		const n = prompts.SampleRate / 2 // 0.5 s
		for _, name := range prompts.Names() {
			s := set.Get(name)
			if len(s) > n {
				s = s[:n]
			}
			var b bytes.Buffer
			if err := wav.WritePCM16(&b, s); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(loc, string(name)+".wav"), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// tcpPort returns the first port from base up that is free for TCP on
// 127.0.0.1.
func tcpPort(t testing.TB, base int) int {
	t.Helper()
	for p := base; p < base+400; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatalf("no free TCP port from %d", base)
	return 0
}

// rtpRange returns the first range of n free UDP ports from base up
// (starting at an even port).
func rtpRange(t testing.TB, base, n int) (low, high int) {
	t.Helper()
next:
	for low = base + base%2; low < base+2000; low += 2 {
		for p := low; p < low+n; p++ {
			if !udpFree(p) {
				continue next
			}
		}
		return low, low + n - 1
	}
	t.Fatalf("no %d free UDP ports from %d", n, base)
	return 0, 0
}

// startServe writes a configuration and starts the built binary, `hashcall
// serve --config FILE`, with the trunk password in its environment only. It
// waits for /readyz (or, with a trunk that is down, /healthz) to answer 200.
// The process gets SIGTERM, then SIGKILL, when t ends.
func (l *lab) startServe(t *testing.T, bin, promptsDir string, o serveOptions) *server {
	t.Helper()
	p, base := l.runServe(t, bin, promptsDir, o)
	s := &server{proc: p, base: base}
	start := time.Now()
	path := "/readyz"
	if o.trunk != "" && o.trunk != l.kamAddr {
		path = "/healthz"
	}
	if o.readyPath != "" {
		path = o.readyPath
	}
	// It logs when it serves HTTP; readiness (the trunk's OPTIONS, a
	// registration, a RADIUS upstream) is then only told by the probe,
	// polled.
	p.waitLog(t, 15*time.Second, "hashcall serving", func(log string) bool { return strings.Contains(log, `"msg":"hashcall serving"`) })
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	err := testwait.Until(ctx, func() bool {
		if p.exited() {
			return true
		}
		res, err := http.Get(s.base + path)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	switch {
	case p.exited():
		t.Fatalf("hashcall serve exited with status %d:\n%s", p.code, p.tail(40))
	case err != nil:
		t.Fatalf("hashcall serve: %s not 200 after 15 s:\n%s", path, p.tail(40))
	}
	t.Logf("hashcall serve on %s ready (%s) in %v", s.base, path, time.Since(start).Round(time.Millisecond))
	return s
}

// runServe writes the configuration of o and starts `hashcall serve` on
// it, without waiting for it; base is its HTTP address.
func (l *lab) runServe(t *testing.T, bin, promptsDir string, o serveOptions) (p *proc, base string) {
	t.Helper()
	if o.trunk == "" {
		o.trunk = l.kamAddr
	}
	if o.answerTimeout == 0 {
		o.answerTimeout = 2 * time.Second
	}
	if o.ringTimeout == 0 {
		o.ringTimeout = 20 * time.Second
	}
	if o.perNumber == "" {
		o.perNumber = "3/15m"
	}
	if o.maxConcurrent == 0 {
		o.maxConcurrent = 10
	}
	if o.optionsInterval == 0 {
		o.optionsInterval = time.Second
	}
	if o.tokens == nil {
		o.tokens = []string{serveToken}
	}
	if o.callbackHosts == nil {
		o.callbackHosts = []string{"127.0.0.1"}
	}
	secret := callbackSecret
	if o.callbackSecret != nil {
		secret = *o.callbackSecret
	}
	if o.storePath == "" {
		o.storePath = filepath.Join(t.TempDir(), "hashcall.db")
	}
	if o.lease == 0 {
		o.lease = 30 * time.Second
	}
	driver, env := "sqlite", cliEnv("HASHCALL_SIP_TRUNK_PASSWORD="+trunkPassword)
	if o.storeDSN != "" {
		driver, env = "postgres", append(env, "HASHCALL_STORE_DSN="+o.storeDSN)
	}
	quoted := func(list []string) string {
		b, _ := json.Marshal(list) // a JSON array is a YAML flow sequence
		return string(b)
	}
	httpPort := tcpPort(t, serveHTTPBase)
	low, high := rtpRange(t, serveRTPBase, 2*o.maxConcurrent+20)
	if o.muxPort != nil {
		*o.muxPort = low
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hashcall.yaml")
	yaml := fmt.Sprintf(`# hashcall serve in the interop lab; the trunk password comes from
# HASHCALL_SIP_TRUNK_PASSWORD.
sip:
  listen: 127.0.0.1:0
  from: %q
  ring_timeout: %s
  max_call_duration: 30s
  trunk:
    address: %s
    username: %s
    realm: %q
    options_interval: %s
media:
  rtp_ports: "%d-%d"
  rtp_mux: %t
verify:
  answer_timeout: %s
  attempts: 1
  locale: en-GB
prompts:
  dir: %s
log:
  format: json
http:
  listen: 127.0.0.1:%d
  tokens: %s
  callback_hosts: %s
  callback_addresses: %s
  callback_secret: %q
policy:
  per_number_limit: %s
  global_rate: 1000/1m
  max_concurrent: %d
shutdown:
  grace: 20s
store:
  driver: %s
  path: %s
  node: %q
  lease: %s
audit:
  hmac_key: "interop-audit-key-0123456789"
`, callerID, o.ringTimeout, o.trunk, trunkUser, trunkRealm, o.optionsInterval, low, high, o.rtpMux, o.answerTimeout,
		promptsDir, httpPort, quoted(o.tokens), quoted(o.callbackHosts), quoted(o.callbackAddrs), secret, o.perNumber, o.maxConcurrent, driver, o.storePath, o.node, o.lease)
	yaml += o.extraYAML
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p = startProcEnv(t, "hashcall serve", dir, filepath.Join(dir, "serve.log"), append(env, o.env...), bin, "serve", "--config", cfg)
	return p, "http://127.0.0.1:" + strconv.Itoa(httpPort)
}

// verification is what the API answers for a verification (and posts to
// callbacks).
type verification struct {
	ID               string     `json:"id"`
	Status           string     `json:"status"`
	To               string     `json:"to"`
	Reference        string     `json:"reference"`
	CreatedAt        time.Time  `json:"created_at"`
	CompletedAt      *time.Time `json:"completed_at"`
	Outcome          string     `json:"outcome"`
	SIPCode          int        `json:"sip_code"`
	DTMFSource       string     `json:"dtmf_source"`
	Codec            string     `json:"codec"`
	Keys             string     `json:"keys"`
	SetupMS          float64    `json:"setup_ms"`
	HashToDecisionMS float64    `json:"hash_to_decision_ms"`
	Error            string     `json:"error"`
}

// apiResponse is one HTTP answer, decoded.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
	v      verification
	err    struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
}

func (r apiResponse) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

var apiClient = &http.Client{Timeout: pollTimeout}

// call sends one request with the bearer token (unless auth is given:
// "" sends none) and decodes the answer. It does not fail t, so that
// goroutines may use it.
func (s *server) call(method, path, body string, hdr ...string) (apiResponse, error) {
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		return apiResponse{}, err
	}
	req.Header.Set("Authorization", "Bearer "+serveToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := apiClient.Do(req)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: reading the body: %w", method, path, err)
	}
	r := apiResponse{status: res.StatusCode, header: res.Header, body: b}
	if res.StatusCode < 300 && strings.HasPrefix(path, "/v1/") {
		if err := json.Unmarshal(b, &r.v); err != nil {
			return r, fmt.Errorf("%s %s: %d with a body that is not a verification: %v: %s", method, path, res.StatusCode, err, b)
		}
	} else if strings.HasPrefix(path, "/v1/") {
		var e struct {
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
			return r, fmt.Errorf("%s %s: %d with a body that is not {\"error\":{\"code\",\"message\"}}: %s", method, path, res.StatusCode, b)
		}
		r.err.Code, r.err.Message = e.Error.Code, e.Error.Message
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			return r, fmt.Errorf("%s %s: error with Content-Type %q", method, path, ct)
		}
	}
	return r, nil
}

// must is call, failing t on a transport error.
func (s *server) must(t *testing.T, method, path, body string, hdr ...string) apiResponse {
	t.Helper()
	r, err := s.call(method, path, body, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// create POSTs a verification and requires 202.
func (s *server) create(t *testing.T, body string, hdr ...string) verification {
	t.Helper()
	r := s.must(t, "POST", "/v1/verifications", body, hdr...)
	if r.status != http.StatusAccepted || r.v.ID == "" {
		t.Fatalf("POST %s: %s, want 202 with an id", body, r)
	}
	return r.v
}

// poll long-polls a verification until it is completed.
func (s *server) poll(t *testing.T, id string) verification {
	t.Helper()
	r := s.must(t, "GET", "/v1/verifications/"+id+"?wait=30s", "")
	if r.status != http.StatusOK || r.v.Status != "completed" {
		t.Fatalf("GET %s?wait=30s: %s, want 200 and completed", id, r)
	}
	return r.v
}

// stopAndWait ends hashcall serve as systemd does (SIGTERM) and waits for
// it to exit 0: its calls are over and its callbacks flushed, so whatever
// it would have sent (a stray INVITE, a second callback) has been sent, and
// answered by Kamailio, which logs a request before it answers.
func (s *server) stopAndWait(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, ok := s.wait(30 * time.Second)
	if !ok {
		t.Fatalf("hashcall serve still running 30 s after SIGTERM:\n%s", s.tail(40))
	}
	if code != 0 {
		t.Errorf("hashcall serve exited with status %d after SIGTERM:\n%s", code, s.tail(40))
	}
}

// waitPastPause waits until the silent SIPp scenario is past its 1 s pause
// and takes a BYE: its silence then starts, and hashcall logs the RTP stream
// it locks on, after mark in its log.
func (s *server) waitPastPause(t *testing.T, mark int) {
	t.Helper()
	s.proc.waitLog(t, 10*time.Second, "the phone's RTP", func(log string) bool {
		return len(log) > mark && strings.Contains(log[mark:], `"msg":"rtp locked"`)
	})
}

// waitStatus polls a verification (without wait) until its status is want:
// the API long-polls only for the final status, and the log does not say
// when the store has the others.
func (s *server) waitStatus(t *testing.T, id, want string, within time.Duration) {
	t.Helper()
	var r apiResponse
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	err := testwait.Until(ctx, func() bool {
		r = s.must(t, "GET", "/v1/verifications/"+id, "")
		return r.v.Status == want || r.v.Status == "completed"
	})
	if err != nil || r.v.Status != want {
		t.Fatalf("verification %s: %s, waiting for status %q", id, r, want)
	}
}

// metric returns the value of one sample of /metrics, such as
// `hashcall_verifications_total{outcome="verified"}`, or -1.
func (s *server) metric(t *testing.T, sample string) float64 {
	t.Helper()
	r := s.must(t, "GET", "/metrics", "")
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return f
		}
	}
	return -1
}

// audits returns the audit records ("audit: verification completed") of
// the JSON log, by verification id.
func (s *server) audits(t *testing.T) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(s.log()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["msg"] != "audit: verification completed" {
			continue
		}
		id, _ := rec["id"].(string)
		out[id] = append(out[id], rec)
	}
	return out
}

// callbackSink is the auth service's callback endpoint: an httptest server
// on 127.0.0.1 that checks X-Hashcall-Signature and records every
// verification posted to it.
type callbackSink struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	got map[string][]verification
	n   int
	// arrived gets a line per callback: waitCallbacks blocks on it.
	arrived testwait.Output
}

func newCallbackSink(t *testing.T) *callbackSink {
	c := &callbackSink{t: t, got: map[string][]verification{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serveHTTP))
	t.Cleanup(c.srv.Close)
	return c
}

// url is the callback_url to request.
func (c *callbackSink) url() string { return c.srv.URL + "/hashcall/callback" }

func (c *callbackSink) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/hashcall/callback" || r.Header.Get("Content-Type") != "application/json" {
		c.t.Errorf("callback: %s %s with Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	if err := checkSignature(r.Header.Get("X-Hashcall-Signature"), body, time.Now()); err != nil {
		c.t.Errorf("callback: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var v verification
	if err := json.Unmarshal(body, &v); err != nil {
		c.t.Errorf("callback: body is not a verification: %v: %s", err, body)
		return
	}
	c.mu.Lock()
	c.got[v.ID] = append(c.got[v.ID], v)
	c.n++
	c.mu.Unlock()
	fmt.Fprintln(&c.arrived, v.ID)
	w.WriteHeader(http.StatusNoContent)
}

// checkSignature checks X-Hashcall-Signature: t=<unix>,v1=<hex
// HMAC-SHA256 of "t.body"> with the callback secret, and that t is within
// a minute of now.
func checkSignature(h string, body []byte, now time.Time) error {
	var ts, sig string
	for _, part := range strings.Split(h, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("X-Hashcall-Signature %q: want t=<unix>,v1=<hex>", h)
	}
	if d := now.Sub(time.Unix(unix, 0)); d < -time.Minute || d > time.Minute {
		return fmt.Errorf("X-Hashcall-Signature: t is %v from now", d)
	}
	m := hmac.New(sha256.New, []byte(callbackSecret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, want) {
		return fmt.Errorf("X-Hashcall-Signature %q: the HMAC does not match", h)
	}
	return nil
}

// waitCallbacks waits until n callbacks came (or within ends) and returns
// them by id.
func (c *callbackSink) waitCallbacks(n int, within time.Duration) map[string][]verification {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	_ = c.arrived.Wait(ctx, func(string) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.n >= n
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][]verification, len(c.got))
	for k, v := range c.got {
		out[k] = slices.Clone(v)
	}
	return out
}

// routed counts Kamailio's "route NUMBER to test UAS" lines (INVITEs
// relayed to a SIPp UAS) in log.
func routed(log, number string) int {
	return countLines(log, "interop: route "+number+" to test UAS")
}

// dialled counts the INVITEs (challenged or not) for number in log.
func dialled(log, number string) int {
	return countLines(log, "interop: request INVITE sip:"+number+"@")
}

// sippDone waits for SIPp to end and requires exit status 0: every call
// ran its scenario to the end.
func sippDone(t *testing.T, sipp *uas, within time.Duration) {
	t.Helper()
	if code := sipp.finish(t, within); code != 0 {
		t.Errorf("SIPp %s exited with status %d, want 0 (its scenario did not run to the end)", sipp.scenario.name, code)
	}
}

// sippStats are the cumulative counters of SIPp's statistics screen, which
// it prints when it ends.
type sippStats struct {
	incoming, successful, failed int // calls
	peak                         int // calls at once
}

var peakRE = regexp.MustCompile(`Peak was (\d+) calls`)

// stats reads SIPp's last statistics screen from its output; call it
// after sippDone.
func (u *uas) stats(t *testing.T) sippStats {
	t.Helper()
	var st sippStats
	found := false
	for _, line := range strings.Split(u.log(), "\n") {
		if m := peakRE.FindStringSubmatch(line); m != nil {
			st.peak, _ = strconv.Atoi(m[1])
		}
		cols := strings.Split(line, "|")
		if len(cols) != 3 {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(cols[2]))
		if err != nil {
			continue
		}
		switch strings.TrimSpace(cols[0]) {
		case "Incoming calls created":
			st.incoming, found = n, true
		case "Successful call":
			st.successful = n
		case "Failed call":
			st.failed = n
		}
	}
	if !found {
		t.Errorf("no statistics screen in the output of %s:\n%s", u.name, u.tail(40))
	}
	return st
}

// TestServeThroughKamailio runs the built `hashcall serve` against the lab:
// HTTP clients ask for verifications, calls go through Kamailio to SIPp.
func TestServeThroughKamailio(t *testing.T) {
	l := startLab(t)
	// Subtests whose phones play RTP skip when not root (startUAS).
	bin := buildCLI(t, l.dir)
	promptsDir := writeShortPrompts(t)
	kamMark := func() int { return len(l.kamLog()) }
	kamSince := func(mark int) string { return l.kamLog()[mark:] }

	t.Run("longpoll_verified", func(t *testing.T) {
		sipp := l.startUAS(t, "rfc4733_pound")
		number := mobileNumber(sipp.scenario.number)
		s := l.startServe(t, bin, promptsDir, serveOptions{})
		mark := kamMark()
		start := time.Now()
		v := s.create(t, `{"to":"`+number+`","reference":"vpn-login alice"}`)
		if v.Status != "queued" && v.Status != "calling" {
			t.Errorf("status %q after POST, want queued or calling", v.Status)
		}
		if v.To != "+4477*****001" || v.Reference != "vpn-login alice" || v.CreatedAt.IsZero() {
			t.Errorf("POST answered to %q, reference %q, created_at %v", v.To, v.Reference, v.CreatedAt)
		}
		got := s.poll(t, v.ID)
		t.Logf("long-poll: %s %s after %v: SIP %d, source %s, codec %s, call set-up %.1f ms, #-to-decision %.1f ms",
			got.ID, got.Outcome, time.Since(start).Round(time.Millisecond), got.SIPCode, got.DTMFSource, got.Codec, got.SetupMS, got.HashToDecisionMS)
		if got.Outcome != "verified" || got.SIPCode != 200 || got.DTMFSource != "rfc4733" || got.Keys != "#" || got.CompletedAt == nil {
			t.Errorf("long-poll: %+v, want verified by rfc4733, SIP 200", got)
		}
		if got.SetupMS <= 0 || got.HashToDecisionMS <= 0 {
			t.Errorf("timings not measured: %+v", got)
		}
		sippDone(t, sipp, 10*time.Second)
		kam := kamSince(mark)
		if routed(kam, number) != 1 || dialled(kam, number) != 2 || countLines(kam, "interop: authenticated INVITE au="+trunkUser) != 1 {
			t.Errorf("Kamailio: %d INVITEs for %s (%d authenticated and routed), want 2 and 1", dialled(kam, number), number, routed(kam, number))
		}
		if r := s.must(t, "GET", "/v1/verifications/"+v.ID+"?wait=soon", ""); r.status != 400 || r.err.Code != "bad_request" {
			t.Errorf("GET ?wait=soon: %s, want 400 bad_request", r)
		}
		if a := s.audits(t)[v.ID]; len(a) != 1 || a[0]["outcome"] != "verified" {
			t.Errorf("audit records of %s: %v", v.ID, a)
		}
		if strings.Contains(s.log(), number) || strings.Contains(s.log(), trunkPassword) {
			t.Error("the log holds the unmasked number or the trunk password")
		}
	})

	// media.rtp_mux: the call's RTP on the shared port, a stranger
	// streaming a wrong key to that port from the start: the phone's #
	// alone decides, the stranger's packets are dropped unparsed.
	t.Run("rtp_mux_verified", func(t *testing.T) {
		sipp := l.startUAS(t, "rfc4733_pound")
		number := mobileNumber(sipp.scenario.number)
		var port int
		s := l.startServe(t, bin, promptsDir, serveOptions{rtpMux: true, muxPort: &port})
		stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer stranger.Close()
		stopc, sentc := make(chan struct{}), make(chan int, 1)
		go func() { sentc <- forge(stranger, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, stopc) }()
		v := s.create(t, `{"to":"`+number+`","reference":"mux"}`)
		got := s.poll(t, v.ID)
		close(stopc)
		sent := <-sentc
		t.Logf("rtp_mux: %s by %s after %.1f ms set-up, #-to-decision %.1f ms; the stranger sent %d packets", got.Outcome, got.DTMFSource, got.SetupMS, got.HashToDecisionMS, sent)
		if got.Outcome != "verified" || got.DTMFSource != "rfc4733" || got.Keys != "#" {
			t.Errorf("outcome %+v, want verified by the phone's rfc4733 # alone", got)
		}
		sippDone(t, sipp, 10*time.Second)
		if n := s.metric(t, "hashcall_rtp_mux_unknown_total"); n < float64(sent)/2 || sent == 0 {
			t.Errorf("hashcall_rtp_mux_unknown_total %v, the stranger sent %d", n, sent)
		}
		if n := s.metric(t, "hashcall_rtp_mux_received_total"); n <= s.metric(t, "hashcall_rtp_mux_unknown_total") {
			t.Errorf("hashcall_rtp_mux_received_total %v: the phone's packets did not arrive on the shared port", n)
		}
	})

	t.Run("callback_verified", func(t *testing.T) {
		sipp := l.startUAS(t, "rfc4733_pound")
		number := mobileNumber(sipp.scenario.number)
		s := l.startServe(t, bin, promptsDir, serveOptions{})
		cb := newCallbackSink(t)
		v := s.create(t, `{"to":"`+number+`","reference":"idp-42","callback_url":"`+cb.url()+`"}`)
		got := cb.waitCallbacks(1, 30*time.Second)
		if len(got[v.ID]) != 1 {
			t.Fatalf("callbacks: %v, want one for %s", got, v.ID)
		}
		c := got[v.ID][0]
		t.Logf("callback: %s %s, SIP %d, source %s, call set-up %.1f ms, #-to-decision %.1f ms", c.ID, c.Outcome, c.SIPCode, c.DTMFSource, c.SetupMS, c.HashToDecisionMS)
		if c.Status != "completed" || c.Outcome != "verified" || c.DTMFSource != "rfc4733" || c.Reference != "idp-42" || c.To != "+4477*****001" {
			t.Errorf("callback body %+v, want completed, verified by rfc4733, reference idp-42, to masked", c)
		}
		sippDone(t, sipp, 10*time.Second)
		// Counted just before it logs the delivery (after the sink answered).
		s.waitLog(t, `"msg":"callback delivered"`, 5*time.Second)
		if m := s.metric(t, `hashcall_callbacks_total{result="delivered"}`); m != 1 {
			t.Errorf("hashcall_callbacks_total{result=\"delivered\"} %v, want 1", m)
		}
		// No second delivery, up to its exit.
		s.stopAndWait(t)
		if n := len(cb.waitCallbacks(0, 0)[v.ID]); n != 1 {
			t.Errorf("%d callbacks for %s, want 1", n, v.ID)
		}
	})

	t.Run("error_statuses", func(t *testing.T) {
		s := l.startServe(t, bin, promptsDir, serveOptions{})
		mark := kamMark()
		ok := mobileNumber("9006")
		big := `{"to":"` + ok + `","reference":"` + strings.Repeat("x", 20<<10) + `"}`
		unknown := "vrf_000000000000000000000000"
		tests := []struct {
			name         string
			method, path string
			body         string
			hdr          []string
			status       int
			code         string
			message      string // a part of the message
		}{
			{"malformed_json", "POST", "/v1/verifications", `{"to":`, nil, 400, "bad_request", "body"},
			{"not_an_object", "POST", "/v1/verifications", `["+447700900006"]`, nil, 400, "bad_request", "body"},
			{"unknown_field", "POST", "/v1/verifications", `{"to":"` + ok + `","pin":"1234"}`, nil, 400, "bad_request", "pin"},
			{"no_number", "POST", "/v1/verifications", `{}`, nil, 400, "bad_request", "to"},
			{"letters_in_number", "POST", "/v1/verifications", `{"to":"+44abc"}`, nil, 400, "bad_number", "to"},
			{"invalid_number", "POST", "/v1/verifications", `{"to":"+4416329601"}`, nil, 400, "bad_number", "to"},
			{"callback_host_not_listed", "POST", "/v1/verifications", `{"to":"` + ok + `","callback_url":"http://192.0.2.1/hook"}`, nil, 400, "callback_not_allowed", "callback_hosts"},
			{"no_token", "POST", "/v1/verifications", `{"to":"` + ok + `"}`, []string{"Authorization", ""}, 401, "unauthorized", "token"},
			{"wrong_token", "POST", "/v1/verifications", `{"to":"` + ok + `"}`, []string{"Authorization", "Bearer " + serveToken + "x"}, 401, "unauthorized", "token"},
			{"basic_auth", "POST", "/v1/verifications", `{"to":"` + ok + `"}`, []string{"Authorization", "Basic aGFzaGNhbGw6czNjcmV0"}, 401, "unauthorized", "token"},
			{"no_token_get", "GET", "/v1/verifications/" + unknown, "", []string{"Authorization", ""}, 401, "unauthorized", "token"},
			{"wrong_token_delete", "DELETE", "/v1/verifications/" + unknown, "", []string{"Authorization", "Bearer not-the-token-0123456789"}, 401, "unauthorized", "token"},
			{"unknown_id_get", "GET", "/v1/verifications/" + unknown, "", nil, 404, "not_found", ""},
			{"unknown_id_delete", "DELETE", "/v1/verifications/" + unknown, "", nil, 404, "not_found", ""},
			{"body_too_large", "POST", "/v1/verifications", big, nil, 413, "body_too_large", "bytes"},
			{"landline", "POST", "/v1/verifications", `{"to":"+442079460123"}`, nil, 422, "policy_refused", "allowed_types"},
			{"premium_rate", "POST", "/v1/verifications", `{"to":"+449098790123"}`, nil, 422, "policy_refused", "premium_rate"},
			{"premium_rate_087", "POST", "/v1/verifications", `{"to":"+448712345678"}`, nil, 422, "policy_refused", "premium_rate"},
			{"not_gb", "POST", "/v1/verifications", `{"to":"+33612345678"}`, nil, 422, "policy_refused", "allowed_regions"},
			{"us_number", "POST", "/v1/verifications", `{"to":"+14155552671"}`, nil, 422, "policy_refused", "allowed_regions"},
		}
		for _, tc := range tests {
			r := s.must(t, tc.method, tc.path, tc.body, tc.hdr...)
			if r.status != tc.status || r.err.Code != tc.code || !strings.Contains(r.err.Message, tc.message) {
				t.Errorf("%s: %s %s: %s; want %d %s mentioning %q", tc.name, tc.method, tc.path, r, tc.status, tc.code, tc.message)
				continue
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
			}
			t.Logf("%-24s %d %-20s %s", tc.name, r.status, r.err.Code, r.err.Message)
		}
		// 422s are counted by rule.
		for rule, want := range map[string]float64{"allowed_types": 1, "premium_rate": 2, "allowed_regions": 2} {
			if got := s.metric(t, `hashcall_policy_refusals_total{rule="`+rule+`"}`); got != want {
				t.Errorf("hashcall_policy_refusals_total{rule=%q} %v, want %v", rule, got, want)
			}
		}
		s.stopAndWait(t) // no INVITE from it, up to its exit
		if n := countLines(kamSince(mark), "interop: request INVITE"); n != 0 {
			t.Errorf("Kamailio saw %d INVITEs for requests that were all refused", n)
		}
	})

	t.Run("trunk_down_503", func(t *testing.T) {
		// A silent trunk: the test reads the OPTIONS and answers none.
		down := net.JoinHostPort("127.0.0.1", strconv.Itoa(newPortPicker().udp(t, deadTrunkBase, 1)))
		trunk, err := net.ListenPacket("udp", down)
		if err != nil {
			t.Fatal(err)
		}
		defer trunk.Close()
		s := l.startServe(t, bin, promptsDir, serveOptions{trunk: down, optionsInterval: time.Second})
		// Two pings have gone unanswered.
		buf := make([]byte, 4096)
		for pings := 0; pings < 2; {
			_ = trunk.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _, err := trunk.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no OPTIONS at the trunk: %v", err)
			}
			if bytes.HasPrefix(buf[:n], []byte("OPTIONS ")) {
				pings++
			}
		}
		r := s.must(t, "GET", "/readyz", "")
		if r.status != 503 || !strings.Contains(string(r.body), "trunk_down") {
			t.Errorf("/readyz with the trunk down: %s, want 503 trunk_down", r)
		}
		if r := s.must(t, "GET", "/healthz", ""); r.status != 200 {
			t.Errorf("/healthz with the trunk down: %s, want 200", r)
		}
		r = s.must(t, "POST", "/v1/verifications", `{"to":"`+mobileNumber("9001")+`"}`)
		if r.status != 503 || r.err.Code != "trunk_down" {
			t.Errorf("POST with the trunk down: %s, want 503 trunk_down", r)
		}
		t.Logf("trunk down: /readyz and POST %d %s: %s", r.status, r.err.Code, r.err.Message)
	})

	t.Run("rate_limit_per_number", func(t *testing.T) {
		const limit, burst = 3, 8
		sipp := l.startUASOn(t, "busy", l.uasPorts["busy"], limit)
		number := mobileNumber(sipp.scenario.number)
		s := l.startServe(t, bin, promptsDir, serveOptions{perNumber: fmt.Sprintf("%d/15m", limit)})
		mark := kamMark()
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[int]int{}
			ids   []string
		)
		for i := range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.call("POST", "/v1/verifications", fmt.Sprintf(`{"to":%q,"reference":"burst-%d"}`, number, i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				codes[r.status]++
				switch r.status {
				case 202:
					ids = append(ids, r.v.ID)
				case 429:
					ra, err := strconv.Atoi(r.header.Get("Retry-After"))
					if err != nil || ra < 1 || ra > 15*60 {
						t.Errorf("429 with Retry-After %q, want 1 to 900 s", r.header.Get("Retry-After"))
					}
					if r.err.Code != "rate_limited" || !strings.Contains(r.err.Message, "per_number_limit") {
						t.Errorf("429: %s, want rate_limited naming per_number_limit", r)
					}
				default:
					t.Errorf("burst: %s", r)
				}
			}()
		}
		wg.Wait()
		t.Logf("burst of %d for one number, per_number_limit %d/15m: %v", burst, limit, codes)
		if codes[202] != limit || codes[429] != burst-limit {
			t.Errorf("burst: %v, want %d × 202 and %d × 429", codes, limit, burst-limit)
		}
		for _, id := range ids {
			if v := s.poll(t, id); v.Outcome != "busy" || v.SIPCode != 486 {
				t.Errorf("%s: %s SIP %d, want busy 486", id, v.Outcome, v.SIPCode)
			}
		}
		// A later request for that number is still refused.
		r := s.must(t, "POST", "/v1/verifications", `{"to":"`+number+`"}`)
		if r.status != 429 || r.header.Get("Retry-After") == "" {
			t.Errorf("after the burst: %s, want 429 with Retry-After", r)
		}
		sippDone(t, sipp, 10*time.Second)
		refusals := s.metric(t, `hashcall_policy_refusals_total{rule="per_number_limit"}`)
		s.stopAndWait(t) // no other INVITE from it, up to its exit
		kam := kamSince(mark)
		if n := routed(kam, number); n != limit {
			t.Errorf("Kamailio routed %d INVITEs for %s to SIPp, want exactly %d", n, number, limit)
		}
		if n := dialled(kam, number); n != 2*limit {
			t.Errorf("Kamailio saw %d INVITEs for %s, want %d (each challenged once)", n, number, 2*limit)
		}
		st := sipp.stats(t)
		if st.incoming != limit || st.successful != limit {
			t.Errorf("SIPp: %+v, want %d incoming calls, all successful", st, limit)
		}
		t.Logf("Kamailio routed %d calls to SIPp (%d INVITEs with the 407 round); SIPp took %d calls", routed(kam, number), dialled(kam, number), st.incoming)
		if got := refusals; got != burst-limit+1 {
			t.Errorf("hashcall_policy_refusals_total{rule=\"per_number_limit\"} %v, want %d", got, burst-limit+1)
		}
	})

	t.Run("idempotency_key", func(t *testing.T) {
		sipp := l.startUAS(t, "rfc4733_pound")
		number := mobileNumber(sipp.scenario.number)
		// One call per number: a repeat of the key must not count as
		// another.
		s := l.startServe(t, bin, promptsDir, serveOptions{perNumber: "1/15m"})
		mark := kamMark()
		body := `{"to":"` + number + `","reference":"retry-me"}`
		const key = "login-7f3a9c-attempt-1"
		// The client retries at once, twice, while its first request is
		// still in flight; then once more later.
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got []apiResponse
		)
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.call("POST", "/v1/verifications", body, "Idempotency-Key", key)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
			}()
		}
		wg.Wait()
		ids := map[string]bool{}
		for _, r := range got {
			if r.status != 202 {
				t.Errorf("POST with Idempotency-Key: %s, want 202", r)
				continue
			}
			ids[r.v.ID] = true
		}
		if len(ids) != 1 {
			t.Fatalf("three POSTs with one Idempotency-Key gave the ids %v, want one", ids)
		}
		var id string
		for k := range ids {
			id = k
		}
		v := s.poll(t, id)
		again := s.create(t, body, "Idempotency-Key", key)
		if again.ID != id || again.Status != "completed" || again.Outcome != v.Outcome {
			t.Errorf("repeat after completion: %+v, want %s completed", again, id)
		}
		if v.Outcome != "verified" {
			t.Errorf("outcome %s, want verified", v.Outcome)
		}
		sippDone(t, sipp, 10*time.Second)
		// Another key is another verification: refused by the limit.
		r := s.must(t, "POST", "/v1/verifications", body, "Idempotency-Key", "login-7f3a9c-attempt-2")
		if r.status != 429 {
			t.Errorf("a new key for the same number: %s, want 429", r)
		}
		s.stopAndWait(t) // no other INVITE from it, up to its exit
		kam := kamSince(mark)
		if n := routed(kam, number); n != 1 {
			t.Errorf("Kamailio routed %d INVITEs for %s, want 1", n, number)
		}
		if st := sipp.stats(t); st.incoming != 1 {
			t.Errorf("SIPp took %d calls, want 1", st.incoming)
		}
		t.Logf("4 POSTs with Idempotency-Key %q: one id %s, %d call", key, id, routed(kam, number))
	})

	t.Run("cancel_before_answer", func(t *testing.T) {
		sipp := l.startUAS(t, "ring_forever")
		number := mobileNumber(sipp.scenario.number)
		s := l.startServe(t, bin, promptsDir, serveOptions{ringTimeout: 25 * time.Second})
		mark := kamMark()
		v := s.create(t, `{"to":"`+number+`"}`)
		s.waitStatus(t, v.ID, "ringing", 10*time.Second)
		start := time.Now()
		r := s.must(t, "DELETE", "/v1/verifications/"+v.ID, "")
		t.Logf("DELETE while ringing: %d %s SIP %d after %v", r.status, r.v.Outcome, r.v.SIPCode, time.Since(start).Round(time.Millisecond))
		if r.status != 200 || r.v.Status != "completed" || r.v.Outcome != "cancelled" || r.v.SIPCode != 487 {
			t.Errorf("DELETE while ringing: %s, want 200, completed, cancelled, SIP 487", r)
		}
		if got := s.poll(t, v.ID); got.Outcome != "cancelled" {
			t.Errorf("after DELETE: %+v", got)
		}
		// A second DELETE changes nothing.
		if r := s.must(t, "DELETE", "/v1/verifications/"+v.ID, ""); r.status != 200 || r.v.Outcome != "cancelled" {
			t.Errorf("second DELETE: %s", r)
		}
		sippDone(t, sipp, 10*time.Second) // CANCEL came, 487 acknowledged
		kam := kamSince(mark)
		if countLines(kam, "interop: relaying CANCEL") != 1 || countLines(kam, "interop: reply 487") != 1 {
			t.Errorf("Kamailio relayed %d CANCELs and %d 487s, want 1 and 1", countLines(kam, "interop: relaying CANCEL"), countLines(kam, "interop: reply 487"))
		}
	})

	t.Run("cancel_after_answer", func(t *testing.T) {
		sipp := l.startUAS(t, "silent")
		number := mobileNumber(sipp.scenario.number)
		s := l.startServe(t, bin, promptsDir, serveOptions{answerTimeout: 15 * time.Second})
		mark := kamMark()
		logMark := len(s.log())
		v := s.create(t, `{"to":"`+number+`"}`)
		s.waitStatus(t, v.ID, "answered", 10*time.Second)
		// SIPp's scenario takes a BYE only after its 1 s pause.
		s.waitPastPause(t, logMark)
		start := time.Now()
		r := s.must(t, "DELETE", "/v1/verifications/"+v.ID, "")
		t.Logf("DELETE after the answer: %d %s SIP %d after %v", r.status, r.v.Outcome, r.v.SIPCode, time.Since(start).Round(time.Millisecond))
		if r.status != 200 || r.v.Status != "completed" || r.v.Outcome != "cancelled" || r.v.SIPCode != 200 {
			t.Errorf("DELETE after the answer: %s, want 200, completed, cancelled, SIP 200", r)
		}
		sippDone(t, sipp, 10*time.Second) // BYE came and was answered
		kam := kamSince(mark)
		if n := countLines(kam, "interop: request BYE"); n != 1 {
			t.Errorf("Kamailio saw %d BYEs, want 1", n)
		}
	})

	t.Run("sigterm_call_in_flight", func(t *testing.T) {
		pound := l.startUAS(t, "rfc4733_pound")
		silent := l.startUAS(t, "silent")
		s := l.startServe(t, bin, promptsDir, serveOptions{})
		cb := newCallbackSink(t)
		a := s.create(t, `{"to":"`+mobileNumber(pound.scenario.number)+`","callback_url":"`+cb.url()+`"}`)
		b := s.create(t, `{"to":"`+mobileNumber(silent.scenario.number)+`","callback_url":"`+cb.url()+`"}`)
		s.waitStatus(t, a.ID, "answered", 10*time.Second)
		signalled := time.Now()
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// Draining: not ready, and new requests get 503. The service logs
		// "draining" once it refuses them.
		s.waitLog(t, `"msg":"draining"`, 2*time.Second)
		if r := s.must(t, "GET", "/readyz", ""); r.status != 503 || !strings.Contains(string(r.body), "draining") {
			t.Fatalf("/readyz after SIGTERM: %s, want 503 draining", r)
		}
		r := s.must(t, "POST", "/v1/verifications", `{"to":"`+mobileNumber("9003")+`"}`)
		if r.status != 503 || r.err.Code != "draining" {
			t.Errorf("POST while draining: %s, want 503 draining", r)
		}
		va := s.poll(t, a.ID)
		vb := s.poll(t, b.ID)
		t.Logf("in flight at SIGTERM: %s %s (source %s), %s %s", va.ID, va.Outcome, va.DTMFSource, vb.ID, vb.Outcome)
		if va.Outcome != "verified" {
			t.Errorf("the call answered before SIGTERM: %+v, want verified", va)
		}
		if vb.Outcome != "no_key" {
			t.Errorf("the silent call: %+v, want no_key", vb)
		}
		code, ok := s.wait(30 * time.Second)
		if !ok {
			t.Fatalf("hashcall serve still running 30 s after SIGTERM:\n%s", s.tail(40))
		}
		t.Logf("exit status %d, %v after SIGTERM", code, time.Since(signalled).Round(time.Millisecond))
		if code != 0 {
			t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, s.tail(40))
		}
		// Every verification has its final outcome, audited and called
		// back once.
		audits := s.audits(t)
		cbs := cb.waitCallbacks(2, 0)
		for _, id := range []string{a.ID, b.ID} {
			if len(audits[id]) != 1 || len(cbs[id]) != 1 {
				t.Errorf("%s: %d audit records and %d callbacks, want 1 and 1", id, len(audits[id]), len(cbs[id]))
			}
		}
		if len(audits) != 2 {
			t.Errorf("audit records for %d verifications, want 2", len(audits))
		}
		if !strings.Contains(s.log(), `"msg":"stopped"`) {
			t.Error("no \"stopped\" in the log")
		}
		sippDone(t, pound, 10*time.Second)
		sippDone(t, silent, 10*time.Second)
	})

	t.Run("parallel_100", func(t *testing.T) {
		const n = poolSize
		sipp := l.startPool(t, "rfc4733_pound", n)
		s := l.startServe(t, bin, promptsDir, serveOptions{maxConcurrent: n})
		cb := newCallbackSink(t)
		mark := kamMark()
		start := time.Now()
		ids := make([]string, n)
		results := make([]verification, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.call("POST", "/v1/verifications", fmt.Sprintf(`{"to":%q,"reference":"parallel-%d","callback_url":%q}`, poolNumber(i), i, cb.url()))
				if err != nil || r.status != 202 {
					t.Errorf("POST %d: %v %s", i, err, r)
					return
				}
				ids[i] = r.v.ID
				r, err = s.call("GET", "/v1/verifications/"+r.v.ID+"?wait=60s", "")
				if err != nil || r.status != 200 || r.v.Status != "completed" {
					t.Errorf("GET %d: %v %s", i, err, r)
					return
				}
				results[i] = r.v
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		outcomes := map[string]int{}
		var setup, decision []float64
		for i, v := range results {
			outcomes[v.Outcome]++
			if v.Outcome == "verified" {
				setup = append(setup, v.SetupMS)
				decision = append(decision, v.HashToDecisionMS)
				if v.DTMFSource != "rfc4733" {
					t.Errorf("verification %d verified by %q, want rfc4733", i, v.DTMFSource)
				}
			}
		}
		t.Logf("%d parallel verifications: all outcomes in %v: %v", n, elapsed.Round(time.Millisecond), outcomes)
		t.Logf("call set-up ms: %s; #-to-decision ms: %s", quantiles(setup), quantiles(decision))
		if outcomes["verified"] != n {
			t.Errorf("outcomes %v, want %d verified", outcomes, n)
		}
		distinct := map[string]bool{}
		for _, id := range ids {
			if id != "" {
				distinct[id] = true
			}
		}
		if len(distinct) != n {
			t.Errorf("%d distinct ids for %d requests", len(distinct), n)
		}
		// Exactly one callback and one audit record per verification.
		cb.waitCallbacks(n, 15*time.Second)
		sippDone(t, sipp, 20*time.Second)
		verified := s.metric(t, `hashcall_verifications_total{outcome="verified"}`)
		active := s.metric(t, "hashcall_active_calls")
		s.stopAndWait(t) // no duplicate, up to its drained exit
		cbs := cb.waitCallbacks(n, 0)
		audits := s.audits(t)
		var lostCB, dupCB, lostAudit, dupAudit int
		for id := range distinct {
			switch len(cbs[id]) {
			case 0:
				lostCB++
			case 1:
				if cbs[id][0].Outcome != "verified" {
					t.Errorf("callback for %s: %s", id, cbs[id][0].Outcome)
				}
			default:
				dupCB++
			}
			switch len(audits[id]) {
			case 0:
				lostAudit++
			case 1:
			default:
				dupAudit++
			}
		}
		t.Logf("callbacks: %d for %d ids (%d missing, %d duplicated); audit records: %d missing, %d duplicated",
			len(cbs), len(distinct), lostCB, dupCB, lostAudit, dupAudit)
		if lostCB+dupCB+lostAudit+dupAudit != 0 || len(cbs) != n {
			t.Errorf("callbacks or audit records lost or duplicated")
		}
		st := sipp.stats(t)
		t.Logf("SIPp: %d incoming calls, %d successful, %d failed, peak %d at once", st.incoming, st.successful, st.failed, st.peak)
		if st.incoming != n || st.successful != n {
			t.Errorf("SIPp: %+v, want %d incoming calls, all successful", st, n)
		}
		kam := kamSince(mark)
		var notOnce int
		for i := range n {
			if routed(kam, poolNumber(i)) != 1 {
				notOnce++
			}
		}
		if notOnce != 0 {
			t.Errorf("%d pool numbers were not routed to SIPp exactly once", notOnce)
		}
		if got := verified; got != n {
			t.Errorf("hashcall_verifications_total{outcome=\"verified\"} %v, want %d", got, n)
		}
		if got := active; got != 0 {
			t.Errorf("hashcall_active_calls %v after every call ended", got)
		}
	})
}

// quantiles summarises ms values: median, 95th percentile and maximum.
func quantiles(ms []float64) string {
	if len(ms) == 0 {
		return "none"
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	at := func(q float64) float64 { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return fmt.Sprintf("median %.1f, p95 %.1f, max %.1f (n=%d)", at(0.5), at(0.95), s[len(s)-1], len(s))
}
