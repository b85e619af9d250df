package interop

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

// Short verification timings keep the suite quick: the ask prompt is cut to
// 1 s (its press point taken at 0.5 s), the others to 300 ms, and # is
// awaited 2 s after the ask, once. verify.min_key_delay keeps its default
// (1.5 s): the phones press 2 s after the answer, as a callee does.
const (
	answerTimeout = 2 * time.Second
	ringTimeout   = 2 * time.Second
	callTimeout   = 30 * time.Second
	callerID      = "+441632960000"
)

var loadPrompts = sync.OnceValues(func() (*prompts.Set, error) { return prompts.Load("", "en-GB") })

// shortPrompts returns the en-GB prompts cut short.
func shortPrompts(t testing.TB) *prompts.Set {
	t.Helper()
	set, err := loadPrompts()
	if err != nil {
		t.Fatal(err)
	}
	cut := func(s []int16, d time.Duration) []int16 {
		if n := dtmftest.Samples(d); len(s) > n {
			return s[:n]
		}
		return s
	}
	return &prompts.Set{
		Locale:   set.Locale,
		Ask:      cut(set.Ask, time.Second),
		Success:  cut(set.Success, 300*time.Millisecond),
		WrongKey: cut(set.WrongKey, 300*time.Millisecond),
		Goodbye:  cut(set.Goodbye, 300*time.Millisecond),
		// The cut ask ends before its phrase; where it would be.
		AskPressAt: shortPressAt,
		// Mode code's, cut the same way.
		AskCode:        cut(set.AskCode, time.Second),
		WrongCode:      cut(set.WrongCode, 300*time.Millisecond),
		CodeFailed:     cut(set.CodeFailed, 300*time.Millisecond),
		AskCodePressAt: shortPressAt,
	}
}

// shortPressAt is the press point of shortPrompts' ask.
const shortPressAt = 500 * time.Millisecond

// uaOptions are the per-test settings of hashcall's user agent.
type uaOptions struct {
	password string // "" means the right one
	realm    string // sip.trunk.realm: "" answers any realm
	register bool
	rtpLow   int // 0: pick a free pair
	rtpHigh  int
	trunk    string // the trunk's address; "": Kamailio
	latch    bool   // media.symmetric_latching
}

// newVerifier starts a hashcall user agent with Kamailio as its trunk
// (digest user hashcall) and returns a verifier on it. The UA is closed
// when t ends.
func (l *lab) newVerifier(t *testing.T, o uaOptions) (*verify.Verifier, *sip.UA) {
	t.Helper()
	v, ua, _ := l.newVerifierLog(t, o)
	return v, ua
}

// newVerifierLog is newVerifier that also returns hashcall's log (the UA's
// and the media session's), for tests that look for what it logged.
func (l *lab) newVerifierLog(t *testing.T, o uaOptions) (*verify.Verifier, *sip.UA, *logBuffer) {
	t.Helper()
	logger, logs := testLogger(t, "hashcall")
	pw := o.password
	if pw == "" {
		pw = trunkPassword
	}
	ua, err := sip.NewUA(t.Context(), sip.Config{
		Listen:    "127.0.0.1:0",
		Transport: "udp",
		Trunk: sip.Trunk{
			Address:         cmp.Or(o.trunk, l.kamAddr),
			Username:        trunkUser,
			Password:        pw,
			Realm:           o.realm,
			Register:        o.register,
			RegisterExpiry:  60 * time.Second,
			OptionsInterval: -1,
		},
		From:        callerID,
		RingTimeout: ringTimeout,
		UserAgent:   "hashcall-interop-test",
		Logger:      logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	if o.rtpLow == 0 {
		o.rtpLow, o.rtpHigh = rtpPorts(t)
	}
	v := &verify.Verifier{
		UA: ua,
		Config: verify.Config{
			AnswerTimeout:   answerTimeout,
			Attempts:        1,
			MaxCallDuration: 20 * time.Second,
			Media: media.SessionConfig{
				IP:     netip.MustParseAddr("127.0.0.1"),
				Ports:  media.PortRange{Low: uint16(o.rtpLow), High: uint16(o.rtpHigh)},
				Latch:  o.latch,
				Logger: logger,
			},
		},
		Logger: logger,
	}
	return v, ua, logs
}

// stageLog records the progress of a call.
type stageLog struct {
	mu     sync.Mutex
	stages []verify.Progress
	on     map[verify.Stage]func()
}

func (s *stageLog) record(p verify.Progress) {
	s.mu.Lock()
	s.stages = append(s.stages, p)
	f := s.on[p.Stage]
	s.mu.Unlock()
	if f != nil {
		f()
	}
}

func (s *stageLog) has(st verify.Stage) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.stages {
		if p.Stage == st {
			return true
		}
	}
	return false
}

func (s *stageLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, p := range s.stages {
		fmt.Fprintf(&b, "%s(%s) ", p.Stage, p.Detail)
	}
	return b.String()
}

// timing is one verified call's measurements.
type timing struct {
	name          string
	setup, toHash float64
}

func logResult(t *testing.T, res verify.Result, stages *stageLog) {
	t.Helper()
	t.Logf("outcome %s, SIP %d %s, source %q, codec %s, keys %q, setup %.1f ms, #-to-decision %.1f ms, dropped %v, error %q",
		res.Outcome, res.SIPCode, res.SIPReason, res.DTMFSource, res.Codec, res.Keys, res.SetupMS, res.HashToDecisionMS, res.RTPDropped, res.Error)
	t.Logf("progress: %s", stages)
}

// TestCallsThroughKamailio places real calls from hashcall's UA and
// verifier through Kamailio (digest: 407 to every INVITE) to SIPp UAS
// scenarios, one SIPp per call, and checks the outcome of each.
func TestCallsThroughKamailio(t *testing.T) {
	l := startLab(t)
	set := shortPrompts(t)
	tests := []struct {
		name     string
		scenario string // SIPp UAS; "" calls number with no SIPp behind it
		number   string
		password string
		realm    string
		want     verify.Outcome
		code     int    // final SIP code, 0: not checked
		source   string // DTMF source of the deciding key
		codec    string
		keys     string
		early    bool // RTP must have been dropped as early media
	}{
		{name: "rfc4733_hash_verified", scenario: "rfc4733_pound", want: verify.Verified, code: 200, source: "rfc4733", codec: "PCMU", keys: "#"},
		{name: "inband_pcmu_hash_verified", scenario: "inband_pound_pcmu", want: verify.Verified, code: 200, source: "inband", codec: "PCMU", keys: "#"},
		{name: "inband_pcma_hash_verified", scenario: "inband_pound_pcma", want: verify.Verified, code: 200, source: "inband", codec: "PCMA", keys: "#"},
		{name: "inband_five_wrong_key", scenario: "inband_five", want: verify.WrongKey, code: 200, source: "inband", codec: "PCMU", keys: "5"},
		{name: "rfc4733_five_wrong_key", scenario: "rfc4733_five", want: verify.WrongKey, code: 200, source: "rfc4733", codec: "PCMU", keys: "5"},
		{name: "sip_info_hash_verified", scenario: "sip_info_pound", want: verify.Verified, code: 200, source: "sip_info", codec: "PCMU", keys: "#"},
		{name: "reinvite_then_rfc4733_hash_verified", scenario: "reinvite_pound", want: verify.Verified, code: 200, source: "rfc4733", codec: "PCMU", keys: "#"},
		{name: "far_end_hangup", scenario: "hangup", want: verify.HungUp, code: 200, codec: "PCMU"},
		{name: "silent_no_key", scenario: "silent", want: verify.NoKey, code: 200, codec: "PCMU"},
		{name: "busy_486", scenario: "busy", want: verify.Busy, code: 486},
		{name: "declined_603", scenario: "decline", want: verify.Declined, code: 603},
		{name: "unreachable_404", scenario: "not_found", want: verify.Unreachable, code: 404},
		{name: "unregistered_phone_404", number: "2001", want: verify.Unreachable, code: 404},
		{name: "ring_timeout_cancel_487", scenario: "ring_forever", want: verify.NoAnswer},
		{name: "early_media_hash_no_key", scenario: "early_media_pound", want: verify.NoKey, code: 200, codec: "PCMU", early: true},
		{name: "wrong_password_failed", number: "9006", password: "not-the-password", want: verify.Failed},
		{name: "right_realm_busy", scenario: "busy", realm: trunkRealm, want: verify.Busy, code: 486},
		{name: "wrong_realm_refused", number: "9006", realm: "other.example.org", want: verify.Failed},
	}
	var (
		mu      sync.Mutex
		timings []timing
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			number := tc.number
			var u *uas
			if tc.scenario != "" {
				u = l.startUAS(t, tc.scenario)
				number = u.scenario.number
			}
			v, _ := l.newVerifier(t, uaOptions{password: tc.password, realm: tc.realm})
			mark := len(l.kamLog())
			stages := &stageLog{}
			start := time.Now()
			res := v.Run(ctxFor(t, callTimeout), verify.Request{To: number, Prompts: set, OnProgress: stages.record})
			elapsed := time.Since(start)
			logResult(t, res, stages)

			if res.Outcome != tc.want {
				t.Errorf("outcome %s, want %s", res.Outcome, tc.want)
			}
			if tc.want != verify.Verified && res.Outcome == verify.Verified {
				t.Fatal("VERIFIED a call that must never verify")
			}
			if tc.code != 0 && res.SIPCode != tc.code {
				t.Errorf("SIP code %d, want %d", res.SIPCode, tc.code)
			}
			if tc.source != "" && res.DTMFSource != tc.source {
				t.Errorf("DTMF source %q, want %q", res.DTMFSource, tc.source)
			}
			if tc.codec != "" && res.Codec != tc.codec {
				t.Errorf("codec %q, want %q", res.Codec, tc.codec)
			}
			if res.Keys != tc.keys {
				t.Errorf("keys %q, want %q", res.Keys, tc.keys)
			}
			if tc.want == verify.Verified {
				t.Logf("%s: call set-up %.1f ms, #-to-decision %.1f ms", tc.name, res.SetupMS, res.HashToDecisionMS)
				if res.SetupMS <= 0 || res.HashToDecisionMS <= 0 {
					t.Errorf("timings not measured: setup %v ms, #-to-decision %v ms", res.SetupMS, res.HashToDecisionMS)
				}
				mu.Lock()
				timings = append(timings, timing{tc.name, res.SetupMS, res.HashToDecisionMS})
				mu.Unlock()
			}

			wrongRealm := tc.realm != "" && tc.realm != trunkRealm
			// No wait: Kamailio logs each request and each 407 before it
			// answers, and Dial returned only after the 407 to its last
			// INVITE, which ends that INVITE's retransmissions (RFC 3261
			// §17.1.1.2): the counts below are final, a loop included.
			// Every INVITE was challenged once with 407 and then accepted.
			kam := l.kamLog()[mark:]
			invites := countLines(kam, "interop: request INVITE sip:"+number+"@") // ours, not re-INVITEs
			challenges := countLines(kam, "interop: challenge 407 INVITE")
			switch {
			case wrongRealm:
				// A challenge for another realm than sip.trunk.realm: the
				// credentials are never sent.
				if invites != 1 || challenges != 1 {
					t.Errorf("Kamailio saw %d INVITEs and sent %d 407s, want 1 and 1 (credentials not sent)", invites, challenges)
				}
				if !strings.Contains(res.Error, "realm") {
					t.Errorf("error %q does not mention the realm", res.Error)
				}
			case tc.password != "":
				// Wrong credentials: one INVITE without, one with, then stop.
				if invites != 2 || challenges != 2 {
					t.Errorf("Kamailio saw %d INVITEs and sent %d 407s, want 2 and 2 (no INVITE loop)", invites, challenges)
				}
				if !strings.Contains(res.Error, "credentials") {
					t.Errorf("error %q does not mention the credentials", res.Error)
				}
				if elapsed > 5*time.Second {
					t.Errorf("failing on wrong credentials took %v", elapsed)
				}
			default:
				if invites != 2 || challenges != 1 || countLines(kam, "interop: authenticated INVITE au="+trunkUser) != 1 {
					t.Errorf("Kamailio saw %d INVITEs, sent %d 407s: want 2 INVITEs (the second authenticated) and one 407", invites, challenges)
				}
			}

			switch tc.want {
			case verify.NoAnswer:
				if countLines(kam, "interop: relaying CANCEL") != 1 {
					t.Error("Kamailio relayed no CANCEL")
				}
				if !stages.has(verify.StageRinging) {
					t.Error("no ringing progress before the ring timeout")
				}
				if elapsed < ringTimeout || elapsed > ringTimeout+3*time.Second {
					t.Errorf("no_answer after %v, with a ring timeout of %v", elapsed, ringTimeout)
				}
			case verify.NoKey:
				if tc.early {
					if !stages.has(verify.StageEarly) {
						t.Error("no early-media progress (183 with SDP)")
					}
					if res.RTPDropped["early"] == 0 {
						t.Errorf("no RTP dropped as early media: %v", res.RTPDropped)
					}
				}
			}
			if u != nil {
				// SIPp's exit status is 0 only when its scenario ran to the end:
				// BYE received, or the ACK to its final response, or (ring_forever)
				// the CANCEL answered with 487 and that acknowledged.
				if code := u.finish(t, 10*time.Second); code != 0 {
					t.Errorf("SIPp %s exited with status %d, want 0", tc.scenario, code)
				}
			}
		})
	}
	for _, tm := range timings {
		t.Logf("verified %-28s set-up %7.1f ms   #-to-decision %6.1f ms", tm.name, tm.setup, tm.toHash)
	}
}

func countLines(log, sub string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

// TestRegisterThenCall registers with Kamailio (401, then 200 with
// digest) before calling, as with sip.trunk.register: true, and
// unregisters on close.
func TestRegisterThenCall(t *testing.T) {
	l := startLab(t)
	v, ua, logs := l.newVerifierLog(t, uaOptions{register: true, realm: trunkRealm})
	// The UA logs "registered" once it counts itself registered.
	rctx, rcancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer rcancel()
	if err := logs.WaitContains(rctx, "msg=registered "); err != nil || !ua.Ready() {
		t.Fatalf("not registered after 5 s (%v); Kamailio:\n%s", err, strings.Join(l.kamLines("REGISTER"), "\n"))
	}
	// Kamailio logs the saved registration just after its 200.
	_, _ = l.kam.awaitFile(l.kam.logPath, 3*time.Second, func(string) bool {
		return len(l.kamLines("registered sip:"+trunkUser+"@", "au="+trunkUser)) > 0
	})
	if _, reg := ua.TrunkState(); !reg {
		t.Fatal("Ready but TrunkState says not registered")
	}
	regLines := l.kamLines("REGISTER")
	if len(regLines) != 3 ||
		!strings.Contains(regLines[0], "request REGISTER") ||
		!strings.Contains(regLines[1], "challenge 401 REGISTER") ||
		!strings.Contains(regLines[2], "request REGISTER") || !strings.Contains(regLines[2], "au="+trunkUser) {
		t.Errorf("want REGISTER, 401, REGISTER with credentials; Kamailio logged:\n%s", strings.Join(regLines, "\n"))
	}
	if got := l.kamLines("registered sip:"+trunkUser+"@", "au="+trunkUser); len(got) != 1 {
		t.Errorf("Kamailio did not save the registration (200): %q", got)
	}

	u := l.startUAS(t, "rfc4733_pound")
	stages := &stageLog{}
	res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: shortPrompts(t), OnProgress: stages.record})
	logResult(t, res, stages)
	if res.Outcome != verify.Verified || res.DTMFSource != "rfc4733" {
		t.Errorf("outcome %s by %q, want verified by rfc4733", res.Outcome, res.DTMFSource)
	} else {
		t.Logf("registered call: set-up %.1f ms, #-to-decision %.1f ms", res.SetupMS, res.HashToDecisionMS)
	}
	if code := u.finish(t, 10*time.Second); code != 0 {
		t.Errorf("SIPp exited with status %d, want 0", code)
	}

	// Close unregisters (Expires: 0). Kamailio may write its log line just
	// after it answered: wait for it.
	ua.Close()
	var got []string
	if _, err := l.kam.awaitFile(l.kam.logPath, 3*time.Second, func(string) bool {
		got = l.kamLines("registered sip:"+trunkUser+"@", "expires=0")
		return len(got) > 0
	}); err != nil || len(got) != 1 {
		t.Errorf("no unregistration on Close; Kamailio logged:\n%s", strings.Join(l.kamLines("REGISTER"), "\n"))
	}
}

// TestRegisterWrongRealmRefused: with sip.trunk.realm set to another realm
// than the registrar's, hashcall never answers the 401 (the password is not
// sent) and does not count itself registered.
func TestRegisterWrongRealmRefused(t *testing.T) {
	l := startLab(t)
	_, ua, logs := l.newVerifierLog(t, uaOptions{register: true, realm: "other.example.org"})
	// The first attempt and a retry (1 s later), each refused.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := logs.Wait(ctx, func(s string) bool { return strings.Count(s, `msg="registration failed"`) >= 2 }); err != nil {
		t.Fatalf("no two refused registrations: %v", err)
	}
	if ua.Ready() {
		t.Fatal("registered although the registrar's realm is not sip.trunk.realm")
	}
	if n := len(l.kamLines("request REGISTER", "au=<null>")); n == 0 {
		t.Error("no REGISTER reached Kamailio")
	}
	if got := l.kamLines("request REGISTER", "au="+trunkUser); len(got) != 0 {
		t.Errorf("credentials were sent: %q", got)
	}
}

// TestForgedRTPIgnored calls the silent SIPp UAS while a stranger on
// 127.0.0.1 sends well-formed RFC 4733 # events at hashcall's RTP port:
// they come from the wrong source port and must never verify the call.
func TestForgedRTPIgnored(t *testing.T) {
	l := startLab(t)
	u := l.startUAS(t, "silent")
	low, high := rtpPorts(t)
	v, _ := l.newVerifier(t, uaOptions{rtpLow: low, rtpHigh: high})
	target := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: low}

	forger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	stop := make(chan struct{})
	var (
		wg   sync.WaitGroup
		sent int
		once sync.Once
	)
	startForging := func() {
		once.Do(func() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sent = forge(forger, target, stop)
			}()
		})
	}
	stages := &stageLog{on: map[verify.Stage]func(){verify.StageAnswered: startForging}}
	res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: shortPrompts(t), OnProgress: stages.record})
	close(stop)
	wg.Wait()
	logResult(t, res, stages)
	t.Logf("forged %d RFC 4733 packets from %v to %v", sent, forger.LocalAddr(), target)
	if sent == 0 {
		t.Fatal("nothing was forged: the call was never answered")
	}
	if res.Outcome == verify.Verified {
		t.Fatal("VERIFIED by forged RTP")
	}
	if res.Outcome != verify.NoKey || res.Keys != "" {
		t.Errorf("outcome %s, keys %q; want no_key and no key heard", res.Outcome, res.Keys)
	}
	if res.RTPDropped["source"]+res.RTPDropped["ssrc"] == 0 {
		t.Errorf("no forged packet counted as dropped (source or ssrc): %v", res.RTPDropped)
	}
	if code := u.finish(t, 10*time.Second); code != 0 {
		t.Errorf("SIPp exited with status %d, want 0", code)
	}
}

// forge sends RFC 4733 presses of # (PT 101, marker on the first packet,
// 20 ms updates, three E packets, correct durations) to target, one 200 ms
// press every 400 ms, until stop. It returns the number of packets sent.
func forge(c *net.UDPConn, target *net.UDPAddr, stop <-chan struct{}) int {
	return forgeVolume(c, target, stop, 0)
}

// forgeVolume is forge with the events' volume field (0: the encoder's
// default), so that logs tell the forger's presses from the phone's.
func forgeVolume(c *net.UDPConn, target *net.UDPAddr, stop <-chan struct{}, volume int) int {
	enc := dtmf.NewEncoder(dtmf.EncoderConfig{
		PayloadType: 101,
		SSRC:        0x0BADC0DE,
		Sequence:    1000,
		Timestamp:   80000,
		Volume:      volume,
		Interval:    20 * time.Millisecond,
	})
	buf := make([]byte, 64)
	sent := 0
	for {
		pkts := enc.Press(nil, dtmf.KeyHash, 200*time.Millisecond)
		start := time.Now()
		for _, p := range pkts {
			select {
			case <-stop:
				return sent
			case <-time.After(time.Until(start.Add(p.Offset))):
			}
			n, err := p.MarshalTo(buf)
			if err != nil {
				panic(err)
			}
			if _, err := c.WriteToUDP(buf[:n], target); err == nil {
				sent++
			}
		}
		enc.Skip(200 * time.Millisecond)
		select {
		case <-stop:
			return sent
		case <-time.After(200 * time.Millisecond):
		}
	}
}
