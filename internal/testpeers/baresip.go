package testpeers

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BaresipConfig is how to run baresip (Debian baresip-core, 1.0.0).
type BaresipConfig struct {
	// Binary is the program; default "baresip" from PATH.
	Binary string
	// Dir is where the configuration and the log go; required (a test's
	// t.TempDir()).
	Dir string
	// User is the account's user part; default "baresip".
	User string
	// SIPPort is baresip's SIP port on 127.0.0.1 (UDP and TCP; it binds
	// TLS on SIPPort+1 too). 0 picks a free one from BaresipSIPBase up.
	SIPPort int
	// CtrlPort is the ctrl_tcp port on 127.0.0.1. 0 picks a free one from
	// BaresipCtrlBase up.
	CtrlPort int
	// RTPPorts is baresip's RTP port range; default "27200-27299".
	RTPPorts string
	// Codecs is the account's audio_codecs; default PCMU/8000/1,PCMA/8000/1.
	Codecs []string
	// ToneHz is the frequency of the sine baresip sends as its audio;
	// default 440.
	ToneHz int
	// Registrar, when set, makes baresip register there (and so be
	// reachable through it); nil means calls go straight to SIPPort.
	Registrar *Registrar
	// NoAutoAnswer leaves incoming calls ringing; by default baresip
	// answers them at once (the account's answermode=auto).
	NoAutoAnswer bool
}

// Baresip is a running baresip driven over ctrl_tcp.
type Baresip struct {
	cfg    BaresipConfig
	proc   *proc
	picked []int // ports to release after Stop

	conn   net.Conn
	wmu    sync.Mutex // serialises commands
	token  int        // of the last command, under wmu
	mu     sync.Mutex
	events []BaresipEvent
	resp   chan baresipResponse // buffered: responses nobody waits for are dropped
	ch     chan struct{}        // closed and replaced on each event or on EOF
	eof    error
}

// BaresipEvent is one ctrl_tcp event, such as CALL_ESTABLISHED.
type BaresipEvent struct {
	Type     string `json:"type"`
	Class    string `json:"class"`
	AccAOR   string `json:"accountaor"`
	Peer     string `json:"peeruri"`
	Param    string `json:"param"`
	ID       string `json:"id"`
	Received time.Time
}

type baresipResponse struct {
	OK    bool   `json:"ok"`
	Data  string `json:"data"`
	Token string `json:"token"`
}

// StartBaresip writes baresip's configuration into cfg.Dir, starts it,
// waits until it says it is ready (all modules, ctrl_tcp among them, and
// the account are loaded by then) and connects to ctrl_tcp. Events are recorded from then on:
// connect before calling it. Stop ends it.
func StartBaresip(ctx context.Context, cfg BaresipConfig) (*Baresip, error) {
	cfg.Binary = cmp.Or(cfg.Binary, "baresip")
	cfg.User = cmp.Or(cfg.User, "baresip")
	cfg.RTPPorts = cmp.Or(cfg.RTPPorts, "27200-27299")
	if len(cfg.Codecs) == 0 {
		cfg.Codecs = []string{"PCMU/8000/1", "PCMA/8000/1"}
	}
	cfg.ToneHz = cmp.Or(cfg.ToneHz, 440)
	if cfg.Dir == "" {
		return nil, errors.New("testpeers: baresip needs Dir")
	}
	var picked []int
	defer func() { release(picked...) }() // unless baresip took them
	if err := pickInto(&cfg.SIPPort, &picked, BaresipSIPBase, 2, udpFree, tcpFree, tcpFreeNext); err != nil {
		return nil, err
	}
	notSIP := func(p int) bool { return p != cfg.SIPPort && p != cfg.SIPPort+1 }
	if err := pickInto(&cfg.CtrlPort, &picked, BaresipCtrlBase, 1, tcpFree, notSIP); err != nil {
		return nil, err
	}
	if !notSIP(cfg.CtrlPort) {
		return nil, fmt.Errorf("testpeers: baresip ctrl_tcp port %d clashes with SIP (%d, TLS on %d)", cfg.CtrlPort, cfg.SIPPort, cfg.SIPPort+1)
	}
	return startBaresip(ctx, cfg, &picked)
}

// startBaresip starts the phone on the ports of cfg; once it runs it takes
// over the ports in *picked, to release them when it stops.
func startBaresip(ctx context.Context, cfg BaresipConfig, picked *[]int) (*Baresip, error) {
	confDir := filepath.Join(cfg.Dir, "baresip")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return nil, err
	}
	data := map[string]any{
		"SIPPort": cfg.SIPPort, "CtrlPort": cfg.CtrlPort, "RTPPorts": cfg.RTPPorts,
		"ToneHz": cfg.ToneHz, "AccountLine": baresipAccount(cfg),
	}
	for name, tmpl := range map[string]string{"config": "baresip/config.tmpl", "accounts": "baresip/accounts.tmpl"} {
		if err := render(filepath.Join(confDir, name), tmpl, data); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(confDir, "contacts"), nil, 0o644); err != nil {
		return nil, err
	}
	p, err := startProc("baresip", filepath.Join(cfg.Dir, "baresip.log"), cfg.Dir, nil, cfg.Binary, "-f", confDir)
	if err != nil {
		return nil, err
	}
	b := &Baresip{cfg: cfg, proc: p, resp: make(chan baresipResponse, 4), ch: make(chan struct{})}
	if err := b.connect(ctx); err != nil {
		b.Stop()
		return nil, err
	}
	b.picked, *picked = *picked, nil
	return b, nil
}

// baresipAccount is the accounts line.
func baresipAccount(cfg BaresipConfig) string {
	var sb strings.Builder
	params := []string{}
	if r := cfg.Registrar; r != nil {
		fmt.Fprintf(&sb, "<sip:%s@%s>", cfg.User, r.aorHost())
		user := r.Username
		if user == "" {
			user = cfg.User
		}
		params = append(params, "auth_user="+user)
		if r.Password != "" {
			params = append(params, "auth_pass="+r.Password)
		}
		if r.Domain != "" {
			params = append(params, fmt.Sprintf("outbound=\"sip:%s\"", r.Address))
		}
		params = append(params, fmt.Sprintf("regint=%d", int(r.expiry()/time.Second)))
	} else {
		fmt.Fprintf(&sb, "<sip:%s@127.0.0.1:%d>", cfg.User, cfg.SIPPort)
		params = append(params, "regint=0")
	}
	if !cfg.NoAutoAnswer {
		params = append(params, "answermode=auto")
	}
	params = append(params, "audio_codecs="+strings.Join(cfg.Codecs, ","))
	for _, p := range params {
		sb.WriteString(";" + p)
	}
	return sb.String()
}

// connect waits until baresip says it is ready (it has loaded its
// modules by then, ctrl_tcp listening among them) and dials ctrl_tcp.
func (b *Baresip) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.cfg.CtrlPort))
	if _, _, err := b.proc.waitLine(ctx, 0, "baresip is ready."); err != nil {
		return fmt.Errorf("baresip ctrl_tcp on %s: %w; its log:\n%s", addr, err, b.proc.output())
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("baresip ctrl_tcp on %s: %w", addr, err)
	}
	b.conn = c
	go b.readCtrl(bufio.NewReader(c))
	return nil
}

// readCtrl reads netstrings ("len:json,") from ctrl_tcp.
func (b *Baresip) readCtrl(r *bufio.Reader) {
	var err error
	for {
		var msg []byte
		if msg, err = readNetstring(r); err != nil {
			break
		}
		var head struct {
			Event    bool `json:"event"`
			Response bool `json:"response"`
		}
		if json.Unmarshal(msg, &head) != nil {
			continue
		}
		switch {
		case head.Event:
			var ev BaresipEvent
			if json.Unmarshal(msg, &ev) != nil {
				continue
			}
			ev.Received = time.Now()
			b.mu.Lock()
			b.events = append(b.events, ev)
			close(b.ch)
			b.ch = make(chan struct{})
			b.mu.Unlock()
		case head.Response:
			var res baresipResponse
			if json.Unmarshal(msg, &res) == nil {
				select {
				case b.resp <- res:
				default:
				}
			}
		}
	}
	b.mu.Lock()
	b.eof = fmt.Errorf("baresip ctrl_tcp closed: %w", err)
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

// Command runs a baresip command (those of the menu module: sndcode,
// hangup, reginfo, ...) and returns its output.
func (b *Baresip) Command(ctx context.Context, command, params string) (string, error) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.token++
	token := strconv.Itoa(b.token)
	msg, err := json.Marshal(map[string]string{"command": command, "params": params, "token": token})
	if err != nil {
		return "", err
	}
	if err := writeNetstring(b.conn, msg); err != nil {
		return "", fmt.Errorf("baresip %s: %w", command, err)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case res := <-b.resp:
			if res.Token != token {
				continue // the late answer to an earlier command
			}
			if !res.OK {
				return res.Data, fmt.Errorf("baresip %s %q failed: %s", command, params, res.Data)
			}
			return res.Data, nil
		case <-ctx.Done():
			return "", fmt.Errorf("baresip %s: no response: %w", command, context.Cause(ctx))
		case <-timeout:
			return "", fmt.Errorf("baresip %s: no response in 5 s", command)
		}
	}
}

// Press sends key (one of 0-9 * # A-D) on the current call: baresip sends
// it as RFC 4733 telephone-events (only when the call negotiated them, and
// only while its audio source runs).
func (b *Baresip) Press(ctx context.Context, key byte) error {
	_, err := b.Command(ctx, "sndcode", string(key))
	return err
}

// PressAfterAnswer waits for the call established at or after event mark
// (see Mark), then for after (a callee listening to the prompt), and
// presses key.
func (b *Baresip) PressAfterAnswer(ctx context.Context, mark int, after time.Duration, key byte) error {
	if _, err := b.WaitEvent(ctx, mark, "CALL_ESTABLISHED"); err != nil {
		return err
	}
	if err := pause(ctx, after); err != nil {
		return err
	}
	return b.Press(ctx, key)
}

// Mark is the number of events seen so far, for WaitEvent.
func (b *Baresip) Mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.events)
}

// WaitEvent waits for an event of the given type (CALL_INCOMING,
// CALL_ESTABLISHED, CALL_CLOSED, REGISTER_OK, REGISTER_FAIL, ...) at or
// after index from (see Mark).
func (b *Baresip) WaitEvent(ctx context.Context, from int, typ string) (BaresipEvent, error) {
	for {
		b.mu.Lock()
		for i := from; i < len(b.events); i++ {
			if b.events[i].Type == typ {
				ev := b.events[i]
				b.mu.Unlock()
				return ev, nil
			}
		}
		from = len(b.events)
		ch, eof := b.ch, b.eof
		b.mu.Unlock()
		if eof != nil {
			return BaresipEvent{}, fmt.Errorf("waiting for %s: %w", typ, eof)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return BaresipEvent{}, fmt.Errorf("baresip: no %s event: %w", typ, context.Cause(ctx))
		}
	}
}

// Events returns the events seen so far.
func (b *Baresip) Events() []BaresipEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]BaresipEvent(nil), b.events...)
}

// WaitRegistered waits until the account is registered at cfg.Registrar.
// The REGISTER_OK event usually comes before ctrl_tcp is connected (and
// events are not replayed), so this polls the reginfo command, whose
// answer has "OK" (or "ERR") after the account.
func (b *Baresip) WaitRegistered(ctx context.Context) error {
	if b.cfg.Registrar == nil {
		return errors.New("testpeers: baresip has no registrar configured")
	}
	last := ""
	for {
		wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err := b.WaitEvent(wctx, 0, "REGISTER_OK")
		cancel()
		if err == nil {
			return nil
		}
		if out, err := b.Command(ctx, "reginfo", ""); err == nil {
			last = strings.TrimSpace(stripANSI(out))
			if strings.Contains(last, " OK ") {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("baresip did not register at %s (reginfo: %q): %w", b.cfg.Registrar.Address, last, context.Cause(ctx))
		}
		if !b.proc.running() {
			return errors.New("baresip exited before registering")
		}
	}
}

func stripANSI(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		sb.WriteByte(s[i])
	}
	return sb.String()
}

// Addr is baresip's SIP address, host:port.
func (b *Baresip) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.cfg.SIPPort)) }

// User is the account's user part: the number to call it by.
func (b *Baresip) User() string { return b.cfg.User }

// PID is baresip's process id.
func (b *Baresip) PID() int { return b.proc.pid() }

// LogPath is the file baresip's output goes to.
func (b *Baresip) LogPath() string { return b.proc.logPath }

// Stop ends baresip by its PID (quit over ctrl_tcp, then SIGTERM, then
// SIGKILL) and waits for it.
func (b *Baresip) Stop() error {
	if b.conn != nil && b.proc.running() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = b.Command(ctx, "quit", "")
		cancel()
	}
	err := b.proc.stop("", 2*time.Second)
	if b.conn != nil {
		b.conn.Close()
	}
	releasePicked(&b.picked)
	return err
}

// RunBaresip starts baresip for a test. It skips the test in -short mode
// or when baresip is not installed (fails it then under
// HASHCALL_REQUIRE_PEERS=1), puts its configuration and log under
// t.TempDir() unless cfg.Dir is set, stops it by its PID when the test
// ends and prints its log if the test failed.
func RunBaresip(t testing.TB, cfg BaresipConfig) *Baresip {
	t.Helper()
	return runPhone(t, "baresip", "baresip-core", &cfg.Binary, &cfg.Dir, func() (*Baresip, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return StartBaresip(ctx, cfg)
	}, func(b *Baresip) {
		t.Logf("baresip events: %+v", b.Events())
		logFile(t, b.LogPath())
	})
}
