package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

// Attacks on the SIP dialog of a real call: hashcall calls a SIPp phone
// through Kamailio (testdata/sipp/info_pound_late.xml: it answers, and two
// seconds later presses # by SIP INFO through the proxy), and while the
// call is up an attacker who has read the Call-ID (and, for some attacks,
// the tags) sends requests from a fresh UDP socket on 127.0.0.1: straight
// to hashcall's SIP port, or through the trunk along the call's route
// (Kamailio relays in-dialog requests by their Route header, so they reach
// hashcall from the trunk's own address). Each attack must fail — 403 for
// a request that is not from the trunk, 481 for one through the trunk that
// does not match the dialog — and change nothing: the phone's genuine # is
// still taken (verified by sip_info), SIPp's INFO gets its 200, hashcall
// hangs up with its BYE (SIPp exits 0 only then), and the counters say
// what was refused.

// attackScenario is the phone of every attack test.
const attackScenario = "info_pound_late"

// dialogIDs are what an attacker reads off the INVITE and the 200 (here
// from the SIPp phone's message log): the Call-ID, hashcall's From tag and
// the phone's To tag.
type dialogIDs struct {
	callID, ourTag, phoneTag string
	contact                  string // hashcall's Contact URI: where in-dialog requests go
}

var (
	reCallID  = regexp.MustCompile(`(?mi)^Call-ID:\s*(\S+)`)
	reFromTag = regexp.MustCompile(`(?mi)^From:.*;tag=([^;>\s]+)`)
	reToTag   = regexp.MustCompile(`(?mi)^To:.*;tag=([^;>\s]+)`)
	reContact = regexp.MustCompile(`(?mi)^Contact:\s*<([^>]+)>`)
)

// answeredCall waits until the phone has the ACK of its 200 and returns the
// call's identifiers from its message log.
func answeredCall(t *testing.T, u *uas) dialogIDs {
	t.Helper()
	answered := func(log string) bool {
		return messageStarting(log, "INVITE sip:") != "" && messageStarting(log, "SIP/2.0 200 OK") != "" && messageStarting(log, "ACK sip:") != ""
	}
	if exited, err := u.awaitFile(u.msgLog, 10*time.Second, answered); err != nil {
		b, _ := os.ReadFile(u.msgLog)
		t.Fatalf("the phone has no answered call in its message log (exited: %v, %v):\n%s", exited, err, tailOf(string(b), 80))
	}
	b, _ := os.ReadFile(u.msgLog)
	log := string(b)
	inv := messageStarting(log, "INVITE sip:")
	ok := messageStarting(log, "SIP/2.0 200 OK")
	var d dialogIDs
	for _, f := range []struct {
		re  *regexp.Regexp
		msg string
		to  *string
	}{{reCallID, inv, &d.callID}, {reFromTag, inv, &d.ourTag}, {reToTag, ok, &d.phoneTag}, {reContact, inv, &d.contact}} {
		m := f.re.FindStringSubmatch(f.msg)
		if m == nil {
			t.Fatalf("no %v in the phone's message:\n%s", f.re, f.msg)
		}
		*f.to = m[1]
	}
	return d
}

// messageStarting returns the first message in a SIPp message log whose
// first line starts with start, or "".
func messageStarting(log, start string) string {
	for _, block := range strings.Split(log, "\n\n") {
		block = strings.TrimLeft(block, "\r\n")
		if strings.HasPrefix(block, start) {
			return block
		}
	}
	// SIPp separates a message from its log header by a blank line and
	// writes the message's CRLFs: look for the start line anywhere too.
	i := strings.Index(log, "\n"+start)
	if i < 0 {
		return ""
	}
	rest := log[i+1:]
	if j := strings.Index(rest, "\r\n\r\n"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// attacker is a fresh UDP socket on 127.0.0.1 that sends SIP requests.
type attacker struct {
	t    *testing.T
	conn *net.UDPConn
	n    int
}

func newAttacker(t *testing.T) *attacker {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &attacker{t: t, conn: c}
}

// attack is one forged in-dialog request.
type attack struct {
	method  string
	ids     dialogIDs
	fromTag string // the tag it claims as the phone's
	toTag   string // the tag it claims as hashcall's
	cseq    int
	via     string // "" sends to hashcall's Contact directly; else the proxy it is sent through (Route)
	ctype   string
	body    string
}

// send sends a's request and returns the final status code (0: none came
// within 3 s). A final response to an INVITE is acknowledged.
func (at *attacker) send(a attack) int {
	t := at.t
	t.Helper()
	at.n++
	la := at.conn.LocalAddr().String()
	branch := fmt.Sprintf("z9hG4bKattack%d%d", at.n, time.Now().UnixNano())
	var route string
	dst := strings.TrimPrefix(a.ids.contact, "sip:")
	if i := strings.IndexByte(dst, '@'); i >= 0 {
		dst = dst[i+1:]
	}
	dst, _, _ = strings.Cut(dst, ";")
	if a.via != "" {
		route = "Route: <sip:" + a.via + ";lr>\r\n"
		dst = a.via
	}
	toTag := ""
	if a.toTag != "" {
		toTag = ";tag=" + a.toTag
	}
	head := func(method string, cseq int) string {
		return fmt.Sprintf("%s %s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %s;branch=%s;rport\r\n"+
			"%s"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:%s@127.0.0.1>;tag=%s\r\n"+
			"To: <sip:%s@127.0.0.1>%s\r\n"+
			"Call-ID: %s\r\n"+
			"CSeq: %d %s\r\n"+
			"Contact: <sip:attacker@%s>\r\n",
			method, a.ids.contact, la, branch, route, "9030", a.fromTag, callerID, toTag, a.ids.callID, cseq, method, la)
	}
	msg := head(a.method, a.cseq)
	if a.ctype != "" {
		msg += "Content-Type: " + a.ctype + "\r\n"
	}
	msg += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(a.body), a.body)
	raddr, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := at.conn.WriteToUDP([]byte(msg), raddr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8192)
	deadline := time.Now().Add(3 * time.Second)
	for {
		_ = at.conn.SetReadDeadline(deadline)
		n, err := at.conn.Read(buf)
		if err != nil {
			return 0
		}
		var code int
		if _, err := fmt.Sscanf(string(buf[:n]), "SIP/2.0 %d", &code); err != nil || code < 200 {
			continue
		}
		if a.method == "INVITE" {
			// ACK of a non-2xx final response: the same branch, the
			// response's To (RFC 3261 §17.1.1.3).
			ack := head("ACK", a.cseq)
			if m := reToTag.FindStringSubmatch(string(buf[:n])); m != nil && m[1] != a.toTag {
				ack = strings.Replace(ack, toTag+"\r\n", ";tag="+m[1]+"\r\n", 1)
			}
			ack += "Content-Length: 0\r\n\r\n"
			_, _ = at.conn.WriteToUDP([]byte(ack), raddr)
		}
		return code
	}
}

// attackSDP moves the media to the attacker's port.
func attackSDP(port int) string {
	return "v=0\r\no=attacker 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(port) + " RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
}

// attackRun is one call to the attack phone with attacks made once it is
// answered; it checks everything an attack must leave as it was.
type attackRun struct {
	l     *lab
	ua    *sip.UA
	logs  *logBuffer
	u     *uas
	res   verify.Result
	stats sip.Stats
}

// runAttacks places the call, runs strike once the phone has the ACK, and
// checks that the genuine # still verified the call by SIP INFO and that
// SIPp saw the call to its end (its INFO answered, hashcall's BYE).
func runAttacks(t *testing.T, strike func(l *lab, ids dialogIDs)) *attackRun {
	t.Helper()
	l := startLab(t)
	u := l.startUAS(t, attackScenario)
	v, ua, logs := l.newVerifierLog(t, uaOptions{})
	r := &attackRun{l: l, ua: ua, logs: logs, u: u}
	struck := make(chan struct{})
	go func() {
		defer close(struck)
		strike(l, answeredCall(t, u))
	}()
	stages := &stageLog{}
	r.res = v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: shortPrompts(t), OnProgress: stages.record})
	<-struck
	logResult(t, r.res, stages)
	r.stats = ua.Stats()
	t.Logf("refused: dialog %v, untrusted %v", r.stats.DialogRejected, r.stats.Untrusted)
	if r.res.Outcome != verify.Verified || r.res.DTMFSource != "sip_info" || r.res.Keys != "#" {
		t.Errorf("outcome %s by %q, keys %q: want the genuine # by SIP INFO to verify", r.res.Outcome, r.res.DTMFSource, r.res.Keys)
	}
	if code := u.finish(t, 10*time.Second); code != 0 {
		t.Errorf("SIPp exited with status %d, want 0 (its INFO answered 200, then hashcall's BYE)", code)
	}
	return r
}

// relayed counts the requests of method that Kamailio relayed to hashcall.
func (l *lab) relayed(method string) int {
	return countLines(l.kamLog(), "interop: request "+method+" sip:"+trunkUser+"@")
}

const attackInfo = "Signal=#\r\nDuration=250\r\n"

// TestAttackStrangerInfoWrongTags: the attacker knows the Call-ID only and
// sends INFO Signal=# with made-up tags, through the trunk (so it passes
// the source check) and straight to hashcall. 481 and 403; the # does not
// count.
func TestAttackStrangerInfoWrongTags(t *testing.T) {
	var codes [2]int
	var kamBefore int
	r := runAttacks(t, func(l *lab, ids dialogIDs) {
		at := newAttacker(t)
		kamBefore = l.relayed("INFO")
		codes[0] = at.send(attack{method: "INFO", ids: ids, fromTag: "f00d", toTag: "beef", cseq: 7, via: l.kamAddr,
			ctype: "application/dtmf-relay", body: attackInfo})
		codes[1] = at.send(attack{method: "INFO", ids: ids, fromTag: "f00d", toTag: "beef", cseq: 8,
			ctype: "application/dtmf-relay", body: attackInfo})
	})
	if codes != [2]int{481, 403} {
		t.Errorf("stranger INFO with wrong tags: %d through the trunk, %d direct; want 481, 403", codes[0], codes[1])
	}
	if n := r.l.relayed("INFO") - kamBefore; n != 2 {
		t.Errorf("Kamailio relayed %d INFOs to hashcall after the attack began, want 2: the attacker's and the phone's", n)
	}
	if r.stats.DialogRejected[sip.RejectTagMismatch] != 1 || r.stats.Untrusted["INFO"] != 1 {
		t.Errorf("counted %v / %v: want one tag_mismatch and one untrusted INFO", r.stats.DialogRejected, r.stats.Untrusted)
	}
	if !strings.Contains(r.logs.String(), "reason="+sip.RejectTagMismatch) {
		t.Error("hashcall did not log the refused INFO")
	}
}

// TestAttackInfoRightTagsWrongSource: the attacker has read the tags as
// well, and sends INFO Signal=# with the right Call-ID, tags and a CSeq
// above the phone's straight to hashcall from its own socket: 403, and its
// CSeq is not taken either (the phone's INFO, CSeq 1, still gets 200).
func TestAttackInfoRightTagsWrongSource(t *testing.T) {
	var code int
	r := runAttacks(t, func(l *lab, ids dialogIDs) {
		code = newAttacker(t).send(attack{method: "INFO", ids: ids, fromTag: ids.phoneTag, toTag: ids.ourTag, cseq: 100,
			ctype: "application/dtmf-relay", body: attackInfo})
	})
	if code != 403 {
		t.Errorf("INFO with the right tags from the wrong source: %d, want 403", code)
	}
	if r.stats.Untrusted["INFO"] != 1 || r.stats.DialogRejected[sip.RejectCSeq] != 0 {
		t.Errorf("counted %v / %v: want one untrusted INFO and no CSeq refusal", r.stats.Untrusted, r.stats.DialogRejected)
	}
}

// reofferAttack re-offers with method (INVITE or UPDATE) an SDP that
// moves the media to the attacker's own RTP socket: with made-up tags
// through the trunk (481), and with the right tags straight to hashcall
// (403). hashcall must keep its RTP on the phone: not one packet reaches
// the attacker, and no retarget is logged.
func reofferAttack(t *testing.T, method string) {
	rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rtp.Close()
	got := make(chan int, 1)
	go func() {
		n := 0
		buf := make([]byte, 2048)
		for {
			if _, _, err := rtp.ReadFromUDP(buf); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	sdp := attackSDP(rtp.LocalAddr().(*net.UDPAddr).Port)
	var codes [2]int
	r := runAttacks(t, func(l *lab, ids dialogIDs) {
		at := newAttacker(t)
		codes[0] = at.send(attack{method: method, ids: ids, fromTag: "f00d", toTag: "beef", cseq: 7, via: l.kamAddr, ctype: "application/sdp", body: sdp})
		codes[1] = at.send(attack{method: method, ids: ids, fromTag: ids.phoneTag, toTag: ids.ourTag, cseq: 8, ctype: "application/sdp", body: sdp})
	})
	rtp.Close()
	if n := <-got; n != 0 {
		t.Errorf("%d RTP packets reached the attacker's socket", n)
	}
	if codes != [2]int{481, 403} {
		t.Errorf("stranger %s: %d through the trunk with made-up tags, %d direct with the right tags; want 481, 403", method, codes[0], codes[1])
	}
	if strings.Contains(r.logs.String(), "rtp retarget") || strings.Contains(r.logs.String(), "re-offer accepted") {
		t.Error("hashcall moved its media for the attacker's offer")
	}
	if r.stats.DialogRejected[sip.RejectTagMismatch] != 1 || r.stats.Untrusted[method] != 1 {
		t.Errorf("counted %v / %v: want one tag_mismatch and one untrusted %s", r.stats.DialogRejected, r.stats.Untrusted, method)
	}
}

// TestAttackStrangerReinvite: a stranger's re-INVITE that would move
// hashcall's RTP (and the source lock) to the attacker.
func TestAttackStrangerReinvite(t *testing.T) { reofferAttack(t, "INVITE") }

// TestAttackStrangerUpdate: the same by UPDATE (RFC 3311).
func TestAttackStrangerUpdate(t *testing.T) { reofferAttack(t, "UPDATE") }

// TestAttackStrangerBye: a stranger's BYE, with made-up tags through the
// trunk (481) and with the right tags from its own socket (403). The call
// goes on and verifies, and hashcall then hangs up with its own BYE (SIPp
// waits for it: exit status 0).
func TestAttackStrangerBye(t *testing.T) {
	var codes [2]int
	r := runAttacks(t, func(l *lab, ids dialogIDs) {
		at := newAttacker(t)
		codes[0] = at.send(attack{method: "BYE", ids: ids, fromTag: "f00d", toTag: "beef", cseq: 7, via: l.kamAddr})
		codes[1] = at.send(attack{method: "BYE", ids: ids, fromTag: ids.phoneTag, toTag: ids.ourTag, cseq: 8})
	})
	if codes != [2]int{481, 403} {
		t.Errorf("stranger BYE: %d through the trunk with made-up tags, %d direct with the right tags; want 481, 403", codes[0], codes[1])
	}
	if strings.Contains(r.logs.String(), "far end hung up") {
		t.Error("hashcall took a stranger's BYE as the far end's")
	}
	if r.stats.DialogRejected[sip.RejectTagMismatch] != 1 || r.stats.Untrusted["BYE"] != 1 {
		t.Errorf("counted %v / %v: want one tag_mismatch and one untrusted BYE", r.stats.DialogRejected, r.stats.Untrusted)
	}
	if n := countLines(r.l.kamLog(), "interop: request BYE sip:127.0.0.1:"); n != 1 {
		t.Errorf("Kamailio relayed %d BYEs to the phone, want hashcall's one", n)
	}
}

// TestAttackServeStrangerOptions: the built `hashcall serve` answers a
// stranger's OPTIONS with 403 and shows it on /metrics
// (hashcall_sip_untrusted_requests_total) beside the dialog refusals; after
// sip.trusted_sources lists 127.0.0.0/8 and a SIGHUP, the same socket's
// OPTIONS gets 200.
func TestAttackServeStrangerOptions(t *testing.T) {
	l := startLab(t)
	bin := buildCLI(t, l.dir)
	s := l.startServe(t, bin, writeShortPrompts(t), serveOptions{})
	sipAddr := ""
	for _, line := range strings.Split(s.log(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "hashcall serving" {
			sipAddr, _ = rec["sip"].(string)
		}
	}
	if sipAddr == "" {
		t.Fatalf("no SIP address in the serve log:\n%s", s.tail(20))
	}
	at := newAttacker(t)
	options := func() int {
		t.Helper()
		return at.send(attack{method: "OPTIONS", ids: dialogIDs{callID: fmt.Sprintf("probe-%d@attacker", at.n), contact: "sip:hashcall@" + sipAddr}, fromTag: "p1", cseq: 1})
	}
	if code := options(); code != 403 {
		t.Errorf("stranger OPTIONS: %d, want 403", code)
	}
	if m := s.metric(t, `hashcall_sip_untrusted_requests_total{method="OPTIONS"}`); m != 1 {
		t.Errorf(`hashcall_sip_untrusted_requests_total{method="OPTIONS"} %v, want 1`, m)
	}
	for _, reason := range []string{sip.RejectUnknownCall, sip.RejectNoDialog, sip.RejectTagMismatch, sip.RejectCSeq} {
		if m := s.metric(t, `hashcall_sip_dialog_rejected_total{reason="`+reason+`"}`); m != 0 {
			t.Errorf(`hashcall_sip_dialog_rejected_total{reason=%q} %v, want 0`, reason, m)
		}
	}

	cfg := filepath.Join(s.cmd.Dir, "hashcall.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("\n  trunk:\n"), []byte("\n  trusted_sources: [127.0.0.0/8]\n  trunk:\n"), 1)
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitLog(t, `"prefixes":1`, 10*time.Second) // the reload of the trusted sources
	if code := options(); code != 200 {
		t.Errorf("OPTIONS from 127.0.0.0/8 after the reload: %d, want 200", code)
	}
	if m := s.metric(t, `hashcall_sip_untrusted_requests_total{method="OPTIONS"}`); m != 1 {
		t.Errorf(`hashcall_sip_untrusted_requests_total{method="OPTIONS"} %v after the reload, want still 1`, m)
	}
}

var reMedia = regexp.MustCompile(`(?m)^m=audio (\d+) `)

// TestAttackForged200: while the SIPp phone rings (ring_forever: 180, then
// 487 to our CANCEL), an attacker who has read the INVITE answers it
// itself, straight to hashcall from its own socket: a 200 with hashcall's
// Via, the Call-ID and tags, and an SDP naming the attacker's RTP socket,
// from which it then sends RFC 4733 # to hashcall's RTP port. The 200 must
// be dropped (not from the trunk) and counted: the call is never answered,
// hashcall cancels it at its ring timeout (no_answer; SIPp exits 0 only
// when the CANCEL came), and no key is heard.
func TestAttackForged200(t *testing.T) { forged200Attack(t, "SIP/2.0 200 OK") }

// TestAttackForged200LowercaseVersion: the same forged 200 with its status
// line written "sip/2.0 200 OK", and "SIP 200 OK" without a version: sipgo
// parses any start line whose first word begins with "sip" or "SIP" as a
// response, so a filter that only looked for "SIP/" let them reach the
// transaction layer, where the lowercase one answered the call with the
// attacker's SDP and the attacker's RFC 4733 # verified it.
func TestAttackForged200LowercaseVersion(t *testing.T) {
	for _, line := range []string{"sip/2.0 200 OK", "SIP 200 OK"} {
		t.Run(strings.Fields(line)[0], func(t *testing.T) { forged200Attack(t, line) })
	}
}

func forged200Attack(t *testing.T, statusLine string) {
	l := startLab(t)
	u := l.startUAS(t, "ring_forever")
	low, high := rtpPorts(t)
	v, ua, _ := l.newVerifierLog(t, uaOptions{rtpLow: low, rtpHigh: high})
	rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rtp.Close()
	at := newAttacker(t)
	stop := make(chan struct{})
	type result struct {
		forged int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		var inv string
		if _, err := u.awaitFile(u.msgLog, 10*time.Second, func(log string) bool {
			inv = messageStarting(log, "INVITE sip:")
			return inv != ""
		}); err != nil {
			done <- result{err: fmt.Errorf("no INVITE in the phone's message log: %w", err)}
			return
		}
		// hashcall's Via is the one naming its own address; the proxy's
		// goes with the proxy.
		uaAddr := ua.Addr().String()
		var via string
		for _, line := range strings.Split(inv, "\n") {
			if !strings.HasPrefix(strings.ToLower(line), "via:") {
				continue
			}
			for _, v := range strings.Split(strings.TrimSpace(line[4:]), ",") {
				if strings.Contains(v, uaAddr) {
					via = strings.TrimSpace(v)
				}
			}
		}
		header := func(name string) string {
			m := regexp.MustCompile(`(?mi)^` + name + `:\s*(.*?)\r?$`).FindStringSubmatch(inv)
			if m == nil {
				return ""
			}
			return m[1]
		}
		m := reMedia.FindStringSubmatch(inv)
		if via == "" || m == nil {
			done <- result{err: fmt.Errorf("no Via of %s or no m= line in the INVITE:\n%s", uaAddr, inv)}
			return
		}
		ourRTP, _ := strconv.Atoi(m[1])
		sdp := attackSDP(rtp.LocalAddr().(*net.UDPAddr).Port)
		ok := statusLine + "\r\nVia: " + via + "\r\nFrom: " + header("From") + "\r\nTo: " + header("To") + ";tag=attacker\r\n" +
			"Call-ID: " + header("Call-ID") + "\r\nCSeq: " + header("CSeq") + "\r\nContact: <sip:attacker@" + at.conn.LocalAddr().String() + ">\r\n" +
			"Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
		if _, err := at.conn.WriteToUDP([]byte(ok), ua.Addr().(*net.UDPAddr)); err != nil {
			done <- result{err: err}
			return
		}
		done <- result{forged: forge(rtp, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ourRTP}, stop)}
	}()
	stages := &stageLog{}
	res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: shortPrompts(t), OnProgress: stages.record})
	close(stop)
	r := <-done
	logResult(t, res, stages)
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("forged a 200 and %d RFC 4733 packets of #", r.forged)
	if res.Outcome != verify.NoAnswer || res.AnsweredAt != nil || res.Keys != "" {
		t.Errorf("outcome %s, answered at %v, keys %q: want no_answer, never answered, no key", res.Outcome, res.AnsweredAt, res.Keys)
	}
	if n := ua.Stats().Untrusted["response"]; n < 1 {
		t.Errorf("%d stranger responses counted, want the forged 200", n)
	}
	if code := u.finish(t, 10*time.Second); code != 0 {
		t.Errorf("SIPp exited with status %d, want 0 (our CANCEL)", code)
	}
}
