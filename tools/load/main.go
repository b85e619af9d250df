// Command load is hashcall's load test: N verification calls at once from
// `hashcall serve` to SIPp phones on 127.0.0.1 that answer with a single 200,
// stream µ-law audio and press an in-band # a while after answering. It
// prints one row of figures per run: calls verified, set-up and #-to-decision
// percentiles, hashcall's CPU and memory per call, how late our RTP packets
// left against their 20 ms schedule (tcpdump on a handful of the phones' RTP
// ports), skipped 20 ms slots and the kernel's UDP drops; and, with -sipp,
// the same wire work done by a SIPp caller for comparison.
//
//	make load N=2000          # or: go run ./tools/load -n 2000 -bin bin/hashcall
//
// Loopback only; bounded by -n and -timeout; every process it starts is
// ended by its PID. Needs root (tcpdump), sipp and tcpdump. Not part of
// `make test`: its figures are measurements, not pass/fail.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/hashcall/hashcall/internal/policy"
)

type options struct {
	n         int
	bin       string
	hashAfter time.Duration
	timeout   time.Duration
	sipp      bool
	only      string
	capture   int
	sipPort   int
	keep      bool
	mux       bool
	profile   string
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 100, "concurrent calls (all requested at once)")
	flag.StringVar(&o.bin, "bin", "bin/hashcall", "the hashcall binary")
	flag.DurationVar(&o.hashAfter, "hash-after", 10*time.Second, "when the phones press # after answering (after the ask prompt says \"press\", about 4.1 s in, or the key is early)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound on the whole run")
	flag.BoolVar(&o.sipp, "sipp", true, "also run a SIPp caller doing the same wire work")
	flag.StringVar(&o.only, "only", "", "run only one row: hashcall or sipp")
	flag.IntVar(&o.capture, "capture", 8, "about how many calls' RTP from the caller is captured for the pacing figures (sampled by SSRC)")
	flag.IntVar(&o.sipPort, "port", 46060, "first port of the run's own range (SIP, HTTP, RTP above it)")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's folder (configs, logs, captures)")
	flag.StringVar(&o.profile, "profile", "", "save hashcall's heap, goroutine and CPU profiles (diagnostics.listen) into this folder while the calls stream")
	flag.BoolVar(&o.mux, "mux", false, "hashcall with media.rtp_mux (one shared RTP port): SIPp's phones answer every call from one RTP port, which a shared port cannot tell apart (their packets are dropped as ambiguous); for phones with a port per call")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// row is one line of the table.
type row struct {
	who               string
	n, verified       int
	setup, hashToDec  []float64 // ms
	cpuCores          float64
	rssPerCallKiB     float64
	pacing            []float64 // ms late against the stream's schedule
	skipped           int
	kernelDrops       int64
	inviteRetransmits int
	wall              time.Duration
	outcomes          map[string]int
}

func run(o options) error {
	if o.n < 1 || o.n > 5000 {
		return fmt.Errorf("-n %d: want 1 to 5000 calls", o.n)
	}
	for _, p := range []string{"sipp", "tcpdump"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s not found: apt-get install sip-tester tcpdump", p)
		}
	}
	dir, err := os.MkdirTemp("", "hashcall-load-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "load: run folder", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if err := writePhoneFiles(dir, o); err != nil {
		return err
	}
	var rows []row
	if o.only == "" || o.only == "hashcall" {
		r, err := runHashcall(ctx, dir, o)
		if err != nil {
			return fmt.Errorf("hashcall row: %w", err)
		}
		rows = append(rows, r)
	}
	if (o.sipp && o.only == "") || o.only == "sipp" {
		r, err := runSIPpCaller(ctx, dir, o)
		if err != nil {
			return fmt.Errorf("sipp row: %w", err)
		}
		rows = append(rows, r)
	}
	printTable(os.Stdout, rows)
	return nil
}

// Ports: SIP of the phones at sipPort, hashcall's SIP at +1, HTTP at +2;
// the phones' RTP from base+100, hashcall's RTP above that.
func (o options) phoneSIP() int    { return o.sipPort }
func (o options) ourSIP() int      { return o.sipPort + 1 }
func (o options) ourHTTP() int     { return o.sipPort + 2 }
func (o options) callerSIP() int   { return o.sipPort + 3 }
func (o options) phoneRTPLow() int { return o.sipPort + 100 }
func (o options) phoneRTPHigh() int {
	return o.phoneRTPLow() + 4*o.n + 100
}
func (o options) ourRTPLow() int  { return o.phoneRTPHigh() + 2 }
func (o options) ourRTPHigh() int { return o.ourRTPLow() + 4*o.n + 100 }

// writePhoneFiles writes the phones' audio (silence, then an in-band # at
// -10 dBm0 for 200 ms, then silence) as raw µ-law, the caller's audio (the
// ask prompt's length of a 440 Hz tone at -20 dBm0), and the SIPp
// scenarios.
func writePhoneFiles(dir string, o options) error {
	var pcm []int16
	pcm = append(pcm, make([]int16, int(o.hashAfter.Seconds()*8000))...)
	pcm = append(pcm, dtmftest.DTMF(dtmf.KeyHash, -10, 200*time.Millisecond)...)
	pcm = append(pcm, make([]int16, 20*8000)...)
	if err := os.WriteFile(filepath.Join(dir, "phone.ul"), dtmftest.EncodeUlaw(pcm), 0o644); err != nil {
		return err
	}
	// The caller streams what hashcall streams: about 30 s of prompt audio
	// (ask, repeated, closing); a tone stands in for the speech.
	tone := dtmftest.DualTone(440, 440, -23, -23, 30*time.Second)
	if err := os.WriteFile(filepath.Join(dir, "caller.ul"), dtmftest.EncodeUlaw(tone), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "phone.xml"), []byte(phoneScenario), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "caller.xml"), []byte(callerScenario(o)), 0o644)
}

// loadSDP is both sides' SDP: PCMU only (the phones' # is in-band),
// SIPp's rtp_stream port.
const loadSDP = `      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [rtpstream_audio_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=ptime:20
      a=sendrecv
`

// phoneScenario answers with a single 200 (SIPp 3.6.1 aborts a call whose
// INVITE is retransmitted after a 100/180), streams phone.ul and waits for
// the caller's BYE.
const phoneScenario = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="load phone: 200, stream audio with an in-band #">
  <recv request="INVITE" crlf="true"/>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]load[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

` + loadSDP + `
    ]]>
  </send>
  <recv request="ACK" crlf="true">
    <action>
      <exec rtp_stream="phone.ul,1,0"/>
    </action>
  </recv>
  <recv request="BYE" timeout="120000"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <nop><action><exec rtp_stream="pause"/></action></nop>
</scenario>
`

// callerScenario places a call to the phone, streams caller.ul as long as
// hashcall's call lasts (hash-after plus the closing prompt) and hangs up.
func callerScenario(o options) string {
	hold := o.hashAfter + 3*time.Second
	return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="load caller: the same wire work as hashcall">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]c[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

` + loadSDP + `
    ]]>
  </send>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]c[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop><action><exec rtp_stream="caller.ul,1,0"/></action></nop>
  <pause milliseconds="` + strconv.Itoa(int(hold.Milliseconds())) + `"/>
  <nop><action><exec rtp_stream="pause"/></action></nop>
  <send retrans="500">
    <![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]c[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
`
}

// proc is a process this run started, ended by its PID.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

func start(dir, name string, env []string, argv ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// stop sends sig and waits up to 10 s, then kills.
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func startPhones(dir string, o options, calls int) (*proc, error) {
	return start(dir, "sipp-phone", nil, "sipp", "-sf", "phone.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(o.phoneSIP()),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(o.phoneRTPLow()),
		"-m", strconv.Itoa(calls), "-nostdin", "-buff_size", "4194304", "-max_socket", "10000",
		"-rtp_threadtasks", "64", "-timeout", strconv.Itoa(int(o.timeout.Seconds()))+"s", "-trace_stat", "-fd", "1")
}

// startCapture records what the caller sends to the phones' RTP port, 64
// bytes of each packet, for about o.capture calls. The phones receive every
// call's RTP on one port (SIPp's -mp), so the filter samples streams by
// their SSRC instead: the SSRC's low byte (UDP payload bytes 8-11, RTP
// §5.1) below k keeps about k/256 of the calls. Capturing them all made
// tcpdump copy and wake for every packet, 100,000 a second at 2,000 calls,
// a load on the machine that both rows then measured.
func startCapture(dir string, o options) (*proc, string, error) {
	k := max(1, (256*o.capture+o.n-1)/o.n)
	filter := fmt.Sprintf("udp and dst port %d", o.phoneRTPLow())
	if k < 256 {
		filter += fmt.Sprintf(" and udp[19] < %d", k)
	}
	out := filepath.Join(dir, "rtp.pcap")
	p, err := start(dir, "tcpdump", nil, "tcpdump", "-i", "lo", "-n", "-s", "64", "-U", "-w", out, filter)
	if err != nil {
		return nil, "", err
	}
	// tcpdump says "listening on lo" once its filter is in place.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(dir, "tcpdump.log"))
		if bytes.Contains(b, []byte("listening on")) {
			return p, out, nil
		}
		select {
		case <-p.done:
			return nil, "", fmt.Errorf("tcpdump exited: %s", b)
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.stop(syscall.SIGINT)
	return nil, "", errors.New("tcpdump did not start listening within 10 s")
}

func (o options) diagListen() string {
	if o.profile == "" {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(o.sipPort+4)
}

// saveProfiles fetches hashcall's profiles while the calls stream.
func saveProfiles(ctx context.Context, o options, t0 time.Time) {
	cpu := max(1, int((o.hashAfter-4*time.Second)/time.Second))
	select {
	case <-time.After(time.Until(t0.Add(3 * time.Second))):
	case <-ctx.Done():
		return
	}
	_ = os.MkdirAll(o.profile, 0o755)
	base := "http://" + o.diagListen() + "/debug/pprof/"
	for _, p := range []struct{ name, url string }{
		{"heap0.pprof", base + "heap"}, // with heap.pprof: what the streaming calls allocate (pprof -base)
		{"cpu.pprof", base + "profile?seconds=" + strconv.Itoa(cpu)},
		{"heap.pprof", base + "heap"},
		{"goroutine.txt", base + "goroutine?debug=1"},
		{"metrics.txt", "http://127.0.0.1:" + strconv.Itoa(o.ourHTTP()) + "/metrics"},
	} {
		resp, err := http.Get(p.url)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load: profile:", err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = os.WriteFile(filepath.Join(o.profile, p.name), b, 0o644)
	}
}

const loadToken = "load-test-token-0123456789abcdef"

func runHashcall(ctx context.Context, dir string, o options) (row, error) {
	r := row{who: "hashcall", n: o.n, outcomes: map[string]int{}}
	numbers, err := mobiles(o.n)
	if err != nil {
		return r, err
	}
	cfg := fmt.Sprintf(`sip:
  listen: 127.0.0.1:%d
  from: "+441234567890"
  ring_timeout: 30s
  max_call_duration: 2m
  trunk:
    address: 127.0.0.1:%d
    options_interval: 0s
media:
  rtp_ports: "%d-%d"
  rtp_mux: %t
verify:
  answer_timeout: 10s
  attempts: 3
log:
  level: warn
  format: json
http:
  listen: 127.0.0.1:%d
  tokens: [%q]
policy:
  per_number_limit: 3/1m
  global_rate: 100000/1m
  max_concurrent: %d
shutdown:
  grace: 30s
store:
  path: %s
audit:
  hmac_key: "load-audit-key-0123456789"
diagnostics:
  listen: "%s"
`, o.ourSIP(), o.phoneSIP(), o.ourRTPLow(), o.ourRTPHigh(), o.mux, o.ourHTTP(), loadToken, o.n, filepath.Join(dir, "hashcall.db"), o.diagListen())
	cfgPath := filepath.Join(dir, "hashcall.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return r, err
	}
	phones, err := startPhones(dir, o, o.n)
	if err != nil {
		return r, err
	}
	defer phones.stop(syscall.SIGTERM)
	capture, pcapPath, err := startCapture(dir, o)
	if err != nil {
		return r, err
	}
	defer capture.stop(syscall.SIGINT)
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return r, err
	}
	serve, err := start(dir, "hashcall", nil, bin, "serve", "--config", cfgPath)
	if err != nil {
		return r, err
	}
	defer serve.stop(syscall.SIGTERM)
	base := "http://127.0.0.1:" + strconv.Itoa(o.ourHTTP())
	if err := waitOK(ctx, serve, base+"/healthz"); err != nil {
		return r, err
	}
	pid := serve.cmd.Process.Pid
	rss0 := rssKiB(pid)
	cpu0 := cpuTicks(pid)
	t0 := time.Now()

	// Every request at once: the burst is what the set-up figures measure.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.n, MaxConnsPerHost: 0}, Timeout: 0}
	results := make([]result, o.n)
	var wg sync.WaitGroup
	var smp sampler
	smp.start(pid)
	for i := range o.n {
		wg.Go(func() { results[i] = verifyOne(ctx, client, base, numbers[i]) })
	}
	if o.profile != "" {
		// Every call is up and streaming from a few seconds in until the
		// phones press # at hashAfter.
		wg.Go(func() { saveProfiles(ctx, o, t0) })
	}
	wg.Wait()
	r.wall = time.Since(t0)
	r.cpuCores = float64(cpuTicks(pid)-cpu0) / clockTicks / r.wall.Seconds()
	peak, drops := smp.stop()
	r.rssPerCallKiB = float64(peak-rss0) / float64(o.n)
	r.kernelDrops = drops
	for _, res := range results {
		if res.err != nil {
			r.outcomes["error: "+res.err.Error()]++
			continue
		}
		r.outcomes[res.Outcome]++
		if res.Outcome == "verified" {
			r.verified++
			r.hashToDec = append(r.hashToDec, res.HashToDecisionMS)
		}
		if res.SetupMS > 0 {
			r.setup = append(r.setup, res.SetupMS)
		}
	}
	serve.stop(syscall.SIGTERM)
	capture.stop(syscall.SIGINT)
	phones.stop(syscall.SIGTERM)
	r.inviteRetransmits = sippRetransmits(filepath.Join(dir, "sipp-phone.log"))
	r.pacing, r.skipped, err = pacing(pcapPath)
	return r, err
}

type result struct {
	Outcome          string  `json:"outcome"`
	Status           string  `json:"status"`
	SetupMS          float64 `json:"setup_ms"`
	HashToDecisionMS float64 `json:"hash_to_decision_ms"`
	ID               string  `json:"id"`
	err              error
}

func verifyOne(ctx context.Context, c *http.Client, base, number string) result {
	body := fmt.Sprintf(`{"to":%q}`, number)
	var res result
	if err := do(ctx, c, "POST", base+"/v1/verifications", body, http.StatusAccepted, &res); err != nil {
		return result{err: err}
	}
	for res.Status != "completed" {
		if err := do(ctx, c, "GET", base+"/v1/verifications/"+res.ID+"?wait=60s", "", http.StatusOK, &res); err != nil {
			return result{err: err}
		}
	}
	return res
}

func do(ctx context.Context, c *http.Client, method, url, body string, want int, into any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+loadToken)
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		return fmt.Errorf("%s %d", method, res.StatusCode)
	}
	return json.Unmarshal(b, into)
}

func waitOK(ctx context.Context, p *proc, url string) error {
	for {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log.Name())
			return fmt.Errorf("%s exited: %s", p.name, tail(b, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func tail(b []byte, lines int) string {
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// mobiles returns n distinct UK mobile numbers the default policy accepts.
func mobiles(n int) ([]string, error) {
	out := make([]string, 0, n)
	for i := 0; len(out) < n && i < 10*n; i++ {
		raw := fmt.Sprintf("+4474%08d", 10000000+i)
		num, err := policy.Parse(raw, "GB")
		if err != nil {
			continue
		}
		if (policy.Rules{Regions: []string{"GB"}, Types: []string{"mobile"}}).Check(num) == nil {
			out = append(out, raw)
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("found only %d valid UK mobile numbers for %d calls", len(out), n)
	}
	return out, nil
}

func runSIPpCaller(ctx context.Context, dir string, o options) (row, error) {
	r := row{who: "sipp caller", n: o.n, outcomes: map[string]int{}}
	phones, err := startPhonesNoBye(dir, o)
	if err != nil {
		return r, err
	}
	defer phones.stop(syscall.SIGTERM)
	capture, pcapPath, err := startCapture(dir, o)
	if err != nil {
		return r, err
	}
	defer capture.stop(syscall.SIGINT)
	caller, err := start(dir, "sipp-caller", nil, "sipp", "-sf", "caller.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(o.callerSIP()),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(o.ourRTPLow()),
		"-s", "load", "-r", strconv.Itoa(o.n), "-rp", "1000", "-l", strconv.Itoa(o.n), "-m", strconv.Itoa(o.n),
		"-nostdin", "-buff_size", "4194304", "-max_socket", "10000", "-rtp_threadtasks", "64",
		"-timeout", strconv.Itoa(int(o.timeout.Seconds()))+"s", "127.0.0.1:"+strconv.Itoa(o.phoneSIP()))
	if err != nil {
		return r, err
	}
	defer caller.stop(syscall.SIGTERM)
	pid := caller.cmd.Process.Pid
	t0 := time.Now()
	var smp sampler
	smp.start(pid)
	err = caller.wait(ctx)
	r.wall = time.Since(t0)
	peak, drops := smp.stop()
	r.rssPerCallKiB = float64(peak) / float64(o.n)
	r.kernelDrops = drops
	if ps := caller.cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			used := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			r.cpuCores = used.Seconds() / r.wall.Seconds()
		}
	}
	if err == nil {
		r.verified = o.n // every call ran its scenario to the end
	}
	r.outcomes["completed"] = r.verified
	capture.stop(syscall.SIGINT)
	r.pacing, r.skipped, err = pacing(pcapPath)
	return r, err
}

// startPhonesNoBye is the phone for the SIPp caller row: the same
// scenario; the caller sends the BYE it waits for.
func startPhonesNoBye(dir string, o options) (*proc, error) { return startPhones(dir, o, o.n) }

// sippRetransmits reads the INVITE retransmissions from SIPp's last
// statistics screen in its log: a UAS's line is
// "----------> INVITE  <messages> <retransmissions> <timeouts> <unexpected>".
func sippRetransmits(log string) int {
	f, err := os.Open(log)
	if err != nil {
		return -1
	}
	defer f.Close()
	n := -1
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 4 && fs[0] == "---------->" && fs[1] == "INVITE" {
			if v, err := strconv.Atoi(fs[3]); err == nil {
				n = v
			}
		}
	}
	return n
}

// clockTicks is USER_HZ on Linux.
const clockTicks = 100

func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" of the command name: state is field 3; utime
	// and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	fs := strings.Fields(s[i+1:])
	if len(fs) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	return ut + st
}

func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// sampler reads a process's RSS and its UDP sockets' drop counters every
// 100 ms: the peak RSS, and per socket the highest drop count seen (a
// call's RTP socket is gone once the call ends, so its last reading is
// what counts).
type sampler struct {
	stopc chan struct{}
	done  chan struct{}
	peak  int64
	drops map[uint64]int64 // by socket inode
}

func (p *sampler) start(pid int) {
	p.stopc, p.done, p.drops = make(chan struct{}), make(chan struct{}), map[uint64]int64{}
	go func() {
		defer close(p.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			p.peak = max(p.peak, rssKiB(pid))
			socketDrops(pid, p.drops)
			select {
			case <-p.stopc:
				return
			case <-t.C:
			}
		}
	}()
}

// stop returns the peak RSS in KiB and the sum of the sockets' drops.
func (p *sampler) stop() (peakKiB, drops int64) {
	close(p.stopc)
	<-p.done
	for _, d := range p.drops {
		drops += d
	}
	return p.peak, drops
}

// socketDrops records, for every UDP socket pid holds, the "drops" column
// of /proc/net/udp (datagrams the kernel dropped on that socket: a full
// receive buffer).
func socketDrops(pid int, into map[uint64]int64) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return
	}
	mine := map[uint64]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		if v, ok := strings.CutPrefix(l, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 64); err == nil {
				mine[ino] = true
			}
		}
	}
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for i, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if i == 0 || len(fs) < 13 {
				continue
			}
			ino, err1 := strconv.ParseUint(fs[9], 10, 64)
			drops, err2 := strconv.ParseInt(fs[len(fs)-1], 10, 64)
			if err1 == nil && err2 == nil && mine[ino] {
				into[ino] = max(into[ino], drops)
			}
		}
	}
}

// pacing reads the capture (pcap, Ethernet on lo, snaplen 64) and returns,
// for every RTP packet, how late it left against its stream's schedule:
// packet k of a stream is due at t0 + k·20 ms, where t0 is chosen so that
// the earliest packet is exactly on time; and the slots skipped (a
// timestamp step of more than one frame between consecutive packets).
func pacing(path string) (lateMS []float64, skipped int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if len(b) < 24 {
		return nil, 0, fmt.Errorf("%s: not a pcap file (%d bytes)", path, len(b))
	}
	var bo binary.ByteOrder = binary.LittleEndian
	nanos := false
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4:
	case 0xa1b23c4d:
		nanos = true
	default:
		return nil, 0, fmt.Errorf("%s: not a little-endian pcap", path)
	}
	if bo.Uint32(b[20:]) != 1 {
		return nil, 0, fmt.Errorf("%s: link type %d, want Ethernet (1)", path, bo.Uint32(b[20:]))
	}
	type pkt struct {
		at  time.Duration
		seq uint16
		ts  uint32
	}
	streams := map[uint64][]pkt{} // by source port and SSRC: each call's own stream
	for off := 24; off+16 <= len(b); {
		sec, frac := bo.Uint32(b[off:]), bo.Uint32(b[off+4:])
		incl := int(bo.Uint32(b[off+8:]))
		data := b[off+16 : min(off+16+incl, len(b))]
		off += 16 + incl
		at := time.Duration(sec) * time.Second
		if nanos {
			at += time.Duration(frac)
		} else {
			at += time.Duration(frac) * time.Microsecond
		}
		// Ethernet 14, IPv4 header (IHL), UDP 8, RTP 12.
		if len(data) < 14+20 || binary.BigEndian.Uint16(data[12:]) != 0x0800 {
			continue
		}
		ihl := int(data[14]&0x0f) * 4
		udp := 14 + ihl
		if len(data) < udp+8+12 {
			continue
		}
		sport := binary.BigEndian.Uint16(data[udp:])
		rtp := data[udp+8:]
		if rtp[0]>>6 != 2 {
			continue
		}
		seq := binary.BigEndian.Uint16(rtp[2:])
		ts := binary.BigEndian.Uint32(rtp[4:])
		ssrc := binary.BigEndian.Uint32(rtp[8:])
		// Keyed by the sender's port and the whole SSRC: the phones share
		// one destination port, and SSRCs cut to 16 bits collide among
		// hundreds of calls (two streams merged made a "late" packet of
		// days).
		key := uint64(sport)<<32 | uint64(ssrc)
		streams[key] = append(streams[key], pkt{at, seq, ts})
	}
	for _, ps := range streams {
		if len(ps) < 2 {
			continue
		}
		// Schedule by RTP timestamp: frame k is due k·20 ms after the
		// first frame (160 samples a frame).
		offs := make([]float64, len(ps))
		minOff := math.Inf(1)
		for i, p := range ps {
			due := time.Duration(int64(p.ts-ps[0].ts)) * time.Second / 8000
			offs[i] = float64(p.at-ps[0].at-due) / float64(time.Millisecond)
			minOff = min(minOff, offs[i])
			if i > 0 {
				step := int64(p.ts - ps[i-1].ts)
				if step > 160 && step < 8000*10 {
					skipped += int(step/160) - 1
				}
			}
		}
		for _, o := range offs {
			lateMS = append(lateMS, o-minOff)
		}
	}
	return lateMS, skipped, nil
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| who | N | verified | set-up p50/p99 ms | #→decision p50/p99 ms | CPU (cores) | RSS per call | pacing error p50/p99/max ms | skipped slots | socket drops | INVITE retransmits | wall |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %d | %.0f/%.0f | %.0f/%.0f | %.2f | %.1f KiB | %.2f/%.2f/%.2f | %d | %d | %d | %s |\n",
			r.who, r.n, r.verified, pct(r.setup, 50), pct(r.setup, 99), pct(r.hashToDec, 50), pct(r.hashToDec, 99),
			r.cpuCores, r.rssPerCallKiB, pct(r.pacing, 50), pct(r.pacing, 99), pct(r.pacing, 100), r.skipped,
			r.kernelDrops, r.inviteRetransmits, r.wall.Round(100*time.Millisecond))
	}
	for _, r := range rows {
		keys := make([]string, 0, len(r.outcomes))
		for k := range r.outcomes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.outcomes[k]))
		}
		fmt.Fprintf(w, "%s outcomes: %s\n", r.who, strings.Join(parts, ", "))
	}
}
