package interop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/internal/testwait"
)

// The lab: one Kamailio (the trunk) per test, and one SIPp UAS per call,
// all on 127.0.0.1. Ports are picked from uncommon ranges, skipping any in
// use, never 5060 or 6000:
//
//	Kamailio SIP     25060 and up
//	SIPp UAS SIP     25100 and up
//	SIPp UAS media   26000 and up (even; SIPp also binds the port + 2)
//	hashcall RTP     26500 and up
const (
	kamailioPortBase = 25060
	uasPortBase      = 25100
	uasMediaBase     = 26000
	rtpPortBase      = 26500
)

// Users of testdata/kamailio.cfg.
const (
	trunkUser     = "hashcall"
	trunkPassword = "s3cret"
	trunkRealm    = "interop.hashcall.test"
)

// SIPp's own RFC 4733 captures (Debian package sip-tester).
const (
	sippPoundPcap = "/usr/share/sip-tester/dtmf_2833_pound.pcap"
	sippFivePcap  = "/usr/share/sip-tester/dtmf_2833_5.pcap"
)

// scenario is a SIPp UAS scenario in testdata/sipp and the test number that
// Kamailio routes to it (and its UK mobile alias, see mobileNumber).
type scenario struct {
	name   string // testdata/sipp/<name>.xml
	number string // Request-URI user routed to it
	pcap   bool   // plays RTP with play_pcap_audio: needs root
	file   string // a capture of SIPp's own that it plays
}

var scenarios = []scenario{
	{"rfc4733_pound", "9001", true, sippPoundPcap},
	{"rfc4733_five", "9002", true, sippFivePcap},
	{"inband_pound_pcmu", "9003", true, ""},
	{"inband_pound_pcma", "9004", true, ""},
	{"inband_five", "9005", true, ""},
	{"silent", "9006", true, ""},
	{"busy", "9007", false, ""},
	{"decline", "9008", false, ""},
	{"not_found", "9009", false, ""},
	{"ring_forever", "9010", false, ""},
	{"early_media_pound", "9011", true, ""},
	{"sip_info_pound", "9012", false, ""},
	{"hangup", "9013", false, ""},
	{"reinvite_pound", "9014", true, sippPoundPcap},
	{"cancel_crossed_200", "9015", false, ""},
	{"reinvite_move_pound", "9016", true, sippPoundPcap},
	{"cancel_crossed_481", "9017", false, ""},
	{"stream_rfc4733_pound", "9018", true, ""},
	{"hash_on_answer_rfc4733", "9019", true, ""},
	{"hash_on_answer_inband", "9020", true, ""},
	{"hash_early_and_again", "9021", true, ""},
	{"info_pound_late", "9030", false, ""},
	{"forwarded_181", "9040", false, ""},
	{"diverted_183", "9041", false, ""},
	{"diverted_200", "9042", false, ""},
	{"voicemail_greeting", "9043", true, ""},
	{"code_play", "9026", true, ""},
	{"code_info", "9027", false, ""},
}

// mobileNumber is the E.164 alias of a test number 90xx that Kamailio
// routes to the same SIPp UAS: +447700900 and the last three digits (9001
// is +447700900001). Numbers of Ofcom's drama range +447700900xxx pass
// hashcall's default policy (UK mobiles only), so `hashcall serve` can call
// them.
func mobileNumber(number string) string { return "+447700900" + number[len(number)-3:] }

// The pool: poolSize UK mobile numbers from +447700900200 up, all routed to
// one SIP port where a test runs one SIPp UAS for many calls
// (lab.startPool).
const (
	poolFirst = 200
	poolSize  = 100
)

// poolNumber is the i-th number of the pool (0 ≤ i < poolSize).
func poolNumber(i int) string { return fmt.Sprintf("+447700900%03d", poolFirst+i) }

func scenarioByName(t testing.TB, name string) scenario {
	t.Helper()
	for _, s := range scenarios {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no scenario %q", name)
	return scenario{}
}

// showLogs reports whether the peers' and hashcall's logs are printed even
// when a test passes (HASHCALL_INTEROP_LOGS=1); they always are on failure.
func showLogs() bool { return os.Getenv("HASHCALL_INTEROP_LOGS") == "1" }

// requirePeers skips (or, with HASHCALL_REQUIRE_PEERS=1, fails) t unless
// Kamailio and SIPp are installed, and returns their paths.
func requirePeers(t testing.TB) (kamailio, sipp string) {
	t.Helper()
	if testing.Short() {
		t.Skip("real SIP peers: not in -short mode")
	}
	// Kamailio lives in /usr/sbin, which is not always on PATH.
	if p, err := exec.LookPath("kamailio"); err == nil {
		kamailio = p
	} else {
		kamailio = testpeers.File(t, "/usr/sbin/kamailio", "kamailio")
	}
	sipp = testpeers.Program(t, "sipp", "sip-tester")
	return kamailio, sipp
}

// requireRoot skips (or fails) t when not root: SIPp's play_pcap_audio
// sends through a raw socket.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	const why = "SIPp's play_pcap_audio needs root (raw socket) to play the RTP of this scenario"
	if testpeers.Required() {
		t.Fatalf("%s (HASHCALL_REQUIRE_PEERS=1): run the tests as root", why)
	}
	t.Skipf("%s: run the tests as root", why)
}

// lab is a running Kamailio with the ports of every SIPp scenario routed.
type lab struct {
	dir       string // configs, logs and the generated pcaps
	sipp      string
	kamAddr   string
	kam       *proc
	uasPorts  map[string][2]int // scenario → SIP port, media port
	poolPorts [2]int            // the pool's SIP port and media port
}

// startLab writes the pcaps, renders and checks testdata/kamailio.cfg and
// starts Kamailio. Everything stops when t ends.
func startLab(t *testing.T) *lab {
	t.Helper()
	kamailio, sipp := requirePeers(t)
	l := &lab{dir: t.TempDir(), sipp: sipp, uasPorts: map[string][2]int{}}
	writeAudioPcaps(t, l.dir)

	ports := newPortPicker()
	kamPort := ports.udp(t, kamailioPortBase, 1)
	l.kamAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(kamPort))
	type route struct{ Number, Target string }
	var routes []route
	for _, s := range scenarios {
		sp := ports.udp(t, uasPortBase, 1)
		mp := ports.udp(t, uasMediaBase, 2) // even, and the port + 2 (SIPp binds both)
		l.uasPorts[s.name] = [2]int{sp, mp}
		target := "127.0.0.1:" + strconv.Itoa(sp)
		routes = append(routes, route{s.number, target}, route{mobileNumber(s.number), target})
	}
	l.poolPorts = [2]int{ports.udp(t, uasPortBase, 1), ports.udp(t, uasMediaBase, 2)}
	for i := range poolSize {
		routes = append(routes, route{poolNumber(i), "127.0.0.1:" + strconv.Itoa(l.poolPorts[0])})
	}

	tmpl, err := template.ParseFiles(filepath.Join("testdata", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg bytes.Buffer
	if err := tmpl.Execute(&cfg, map[string]any{"Port": kamPort, "Routes": routes}); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(l.dir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(kamailio, "-f", cfgPath, "-c").CombinedOutput(); err != nil {
		t.Fatalf("kamailio -c %s: %v\n%s", cfgPath, err, out)
	}
	run := filepath.Join(l.dir, "kamailio-run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	l.kam = startProc(t, "kamailio", l.dir, filepath.Join(l.dir, "kamailio.log"), kamailio,
		"-f", cfgPath, "-DD", "-E", "-m", "64", "-M", "8", "-Y", run, "-P", filepath.Join(run, "kamailio.pid"))
	l.kam.waitUDP(t, kamPort, 10*time.Second)
	if err := sipPing(l.kamAddr, 5*time.Second); err != nil {
		t.Fatalf("kamailio does not answer OPTIONS: %v\n%s", err, l.kam.tail(80))
	}
	return l
}

// kamLog returns Kamailio's log so far.
func (l *lab) kamLog() string { return l.kam.log() }

// kamLines returns the "interop:" lines of Kamailio's log that contain
// every one of subs.
func (l *lab) kamLines(subs ...string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(l.kamLog()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, "interop: ")
		if i < 0 {
			continue
		}
		line = line[i:]
		ok := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// uas is a running SIPp UAS for one call.
type uas struct {
	*proc
	scenario scenario
	msgLog   string
	errLog   string
}

// startUAS starts SIPp with the named scenario on its routed port, for
// exactly one call (-m 1). It runs in the lab's folder, where the
// generated pcaps are.
func (l *lab) startUAS(t *testing.T, name string) *uas {
	t.Helper()
	return l.startUASOn(t, name, l.uasPorts[name], 1)
}

// startPool starts SIPp with the named scenario on the pool's port, for
// exactly calls calls (-m), all of them at once if need be: every
// poolNumber reaches it.
func (l *lab) startPool(t *testing.T, name string, calls int) *uas {
	t.Helper()
	return l.startUASOn(t, name, l.poolPorts, calls)
}

// startUASOn starts SIPp with the named scenario on ports (SIP, media) for
// exactly calls calls, with extra arguments (such as -inf FILE, values
// known only at run time).
func (l *lab) startUASOn(t *testing.T, name string, ports [2]int, calls int, extra ...string) *uas {
	t.Helper()
	s := scenarioByName(t, name)
	if s.file != "" {
		testpeers.File(t, s.file, "sip-tester")
	}
	if s.pcap {
		requireRoot(t)
	}
	sf, err := filepath.Abs(filepath.Join("testdata", "sipp", name+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	u := &uas{
		scenario: s,
		msgLog:   filepath.Join(logDir, "messages.log"),
		errLog:   filepath.Join(logDir, "errors.log"),
	}
	argv := []string{l.sipp,
		"-sf", sf,
		"-i", "127.0.0.1", "-p", strconv.Itoa(ports[0]),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(ports[1]),
		"-m", strconv.Itoa(calls), "-nostdin", "-aa",
		"-timeout", "60s", "-timeout_error",
		"-trace_msg", "-message_file", u.msgLog,
		"-trace_err", "-error_file", u.errLog}
	if calls > 1 {
		// Room for every call at once.
		argv = append(argv, "-l", strconv.Itoa(2*calls))
	}
	argv = append(argv, extra...)
	u.proc = startProc(t, "sipp "+name, l.dir, filepath.Join(logDir, "sipp.out"), argv...)
	t.Cleanup(func() {
		if t.Failed() || showLogs() {
			for _, f := range []string{u.msgLog, u.errLog} {
				if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
					t.Logf("---- %s: %s\n%s", u.name, filepath.Base(f), tailOf(string(b), 200))
				}
			}
		}
	})
	u.waitUDP(t, ports[0], 10*time.Second)
	return u
}

// finish waits for SIPp to end its one call and returns its exit status
// (0: the scenario ran to its end).
func (u *uas) finish(t *testing.T, within time.Duration) int {
	t.Helper()
	code, ok := u.wait(within)
	if !ok {
		t.Errorf("%s still running %v after the call", u.name, within)
		return -1
	}
	return code
}

// proc is a process the tests started; it is ended by its own PID.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	code    int
}

// startProc starts a program in dir with its output in logPath. It runs in
// its own process group, so a signal it sends to its group (Kamailio does
// on shutdown) stays there, and is killed if the test binary dies. When t
// ends it gets SIGTERM, then SIGKILL; on failure its log is printed.
func startProc(t *testing.T, name, dir, logPath string, argv ...string) *proc {
	t.Helper()
	return startProcEnv(t, name, dir, logPath, nil, argv...)
}

// startProcEnv is startProc with the environment env (nil: this process's).
func startProcEnv(t *testing.T, name, dir, logPath string, env []string, argv ...string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = testpeers.ChildAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, logFile: f, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	t.Logf("started %s (pid %d): %s", name, cmd.Process.Pid, strings.Join(argv, " "))
	t.Cleanup(func() {
		p.stop(t)
		f.Close()
		if t.Failed() || showLogs() {
			t.Logf("---- %s (pid %d) output:\n%s", name, cmd.Process.Pid, p.tail(200))
		}
	})
	return p
}

// stop ends the process by its PID: SIGTERM, then SIGKILL after 5 s.
func (p *proc) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	t.Logf("%s (pid %d) ignored SIGTERM; killing it", p.name, p.cmd.Process.Pid)
	_ = p.cmd.Process.Kill()
	<-p.done
}

// wait waits up to d for the process to exit and returns its exit status.
func (p *proc) wait(d time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.code, true
	case <-time.After(d):
		return 0, false
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) tail(n int) string { return tailOf(p.log(), n) }

// awaitFile waits up to within for cond on the contents of path, which p
// writes, woken by each write (inotify); it gives up early when p exits
// (exited reports it).
func (p *proc) awaitFile(path string, within time.Duration, cond func(string) bool) (exited bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = testwait.WaitFile(ctx, path, cond)
	if err != nil && p.exited() {
		// It may have written the awaited line as it exited.
		if b, rerr := os.ReadFile(path); rerr == nil && cond(string(b)) {
			return false, nil
		}
		return true, err
	}
	return false, err
}

// waitLog waits up to within for cond on p's output, failing t (with
// what cond waits for) when p exits first or time runs out.
func (p *proc) waitLog(t testing.TB, within time.Duration, what string, cond func(log string) bool) {
	t.Helper()
	exited, err := p.awaitFile(p.logPath, within, cond)
	switch {
	case exited:
		t.Fatalf("%s exited with status %d before %s:\n%s", p.name, p.code, what, p.tail(60))
	case err != nil:
		t.Fatalf("%s: no %s after %v (%v):\n%s", p.name, what, within, err, p.tail(60))
	}
}

func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines cut]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// waitUDP waits until something listens on 127.0.0.1:port (UDP), failing
// t when the process exits first or time runs out.
func (p *proc) waitUDP(t testing.TB, port int, within time.Duration) {
	t.Helper()
	// A bound socket announces itself to no one: /proc/net/udp is polled.
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	err := testwait.Until(ctx, func() bool { return p.exited() || udpBound(port) })
	switch {
	case p.exited():
		t.Fatalf("%s exited with status %d before listening on UDP port %d:\n%s", p.name, p.code, port, p.tail(60))
	case err != nil:
		t.Fatalf("%s does not listen on UDP port %d after %v:\n%s", p.name, port, within, p.tail(60))
	}
}

// udpBound reports whether a UDP socket is bound to 127.0.0.1:port or to
// the wildcard address on port, from /proc/net/udp.
func udpBound(port int) bool {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return false
	}
	suffix := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if f[1] == "0100007F"+suffix || f[1] == "00000000"+suffix {
			return true
		}
	}
	return false
}

// portPicker hands out free ports on 127.0.0.1, each once.
type portPicker struct{ used map[int]bool }

func newPortPicker() *portPicker { return &portPicker{used: map[int]bool{}} }

// udp returns the first port from base up that is free for UDP; with
// span 2 the port is even and port + 2 is free too.
func (pp *portPicker) udp(t testing.TB, base, span int) int {
	t.Helper()
	step := 1
	if span > 1 {
		step = 2
		base += base % 2
	}
	for p := base; p < base+400; p += step {
		ok := true
		for k := 0; k < span; k++ {
			q := p + 2*k
			if pp.used[q] || !udpFree(q) {
				ok = false
				break
			}
		}
		if ok {
			for k := 0; k < span; k++ {
				pp.used[p+2*k] = true
			}
			return p
		}
	}
	t.Fatalf("no free UDP port from %d", base)
	return 0
}

func udpFree(port int) bool {
	c, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// rtpPorts picks a free even RTP port (and the odd one above) for
// hashcall's media session, from rtpPortBase up, skipping skip.
func rtpPorts(t testing.TB, skip ...int) (low, high int) {
	t.Helper()
next:
	for p := rtpPortBase; p < rtpPortBase+400; p += 2 {
		for _, s := range skip {
			if p == s {
				continue next
			}
		}
		if udpFree(p) && udpFree(p+1) {
			return p, p + 1
		}
	}
	t.Fatalf("no free RTP port pair from %d", rtpPortBase)
	return 0, 0
}

// sipPing sends one OPTIONS to addr and waits for any response.
func sipPing(addr string, within time.Duration) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	la := c.LocalAddr().(*net.UDPAddr)
	deadline := time.Now().Add(within)
	buf := make([]byte, 4096)
	for i := 0; time.Now().Before(deadline); i++ {
		msg := fmt.Sprintf("OPTIONS sip:%[1]s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %[2]s;branch=z9hG4bK-interop-ping-%[3]d;rport\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:ping@%[2]s>;tag=interop%[3]d\r\n"+
			"To: <sip:%[1]s>\r\n"+
			"Call-ID: interop-ping-%[3]d-%[4]d@127.0.0.1\r\n"+
			"CSeq: 1 OPTIONS\r\n"+
			"Content-Length: 0\r\n\r\n", addr, la.String(), i, la.Port)
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil && bytes.HasPrefix(buf[:n], []byte("SIP/2.0 ")) {
			return nil
		}
	}
	return fmt.Errorf("no answer from %s within %v", addr, within)
}

// logBuffer collects a component's slog output for printing on failure;
// tests wait on it for a line (testwait.Output).
type logBuffer struct {
	testwait.Output
}

// testLogger returns a debug logger whose output t prints if it fails.
func testLogger(t *testing.T, name string) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() || showLogs() {
			t.Logf("---- %s log:\n%s", name, tailOf(lb.String(), 400))
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// pause lets d pass on the wire as a party of the scenario would (a callee
// listening to the prompt before it presses #, its pace between keys): the
// delay is the behaviour under test, not a wait for a state. It returns
// ctx's error if ctx ends first.
func pause(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, d, errPaused)
	defer cancel()
	<-ctx.Done()
	if err := context.Cause(ctx); !errors.Is(err, errPaused) {
		return err
	}
	return nil
}

// errPaused ends a pause that ran its course.
var errPaused = errors.New("paused")

// ctxFor is a context that ends with t or after d.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
