package sip

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/internal/testwait"
)

// request parses a request from its header lines (CRLFs added).
func request(t testing.TB, lines ...string) *sip.Request {
	t.Helper()
	msg, err := sip.ParseMessage([]byte(strings.Join(lines, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		t.Fatalf("not a request: %v", msg)
	}
	return req
}

// inDialogRequest is a request of the far end within the dialog of
// dialogState{callID: "c1@hashcall", localTag: "ours", remoteTag: "theirs"}
// unless a field says otherwise ("-": header or tag left out).
func inDialogRequest(t testing.TB, method, callID, toTag, fromTag string, cseq int) *sip.Request {
	t.Helper()
	tag := func(v string) string {
		if v == "-" {
			return ""
		}
		return ";tag=" + v
	}
	lines := []string{
		method + " sip:hashcall@127.0.0.1:5070 SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-test",
		"From: <sip:+447700900123@trunk>" + tag(fromTag),
		"To: <sip:hashcall@trunk>" + tag(toTag),
	}
	if callID != "-" {
		lines = append(lines, "Call-ID: "+callID)
	}
	lines = append(lines, fmt.Sprintf("CSeq: %d %s", cseq, method), "Max-Forwards: 70")
	return request(t, lines...)
}

// TestDialogAdmit: the dialog matcher of RFC 3261 §12.2.2, one named case
// per rule. Each case starts from a dialog whose far end last sent CSeq 5.
func TestDialogAdmit(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		callID  string
		toTag   string // ours
		fromTag string // theirs
		cseq    int
		down    bool // the call is not answered, or over
		want    string
	}{
		{"genuine INFO", "INFO", "c1@hashcall", "ours", "theirs", 6, false, ""},
		{"genuine re-INVITE", "INVITE", "c1@hashcall", "ours", "theirs", 7, false, ""},
		{"genuine UPDATE", "UPDATE", "c1@hashcall", "ours", "theirs", 100, false, ""},
		{"genuine BYE", "BYE", "c1@hashcall", "ours", "theirs", 6, false, ""},
		{"ACK with the re-INVITE's CSeq", "ACK", "c1@hashcall", "ours", "theirs", 5, false, ""},
		{"other Call-ID", "INFO", "c2@hashcall", "ours", "theirs", 6, false, RejectUnknownCall},
		{"Call-ID differs in case", "INFO", "C1@hashcall", "ours", "theirs", 6, false, RejectUnknownCall},
		{"no Call-ID", "INFO", "-", "ours", "theirs", 6, false, RejectUnknownCall},
		{"call not answered or over", "INFO", "c1@hashcall", "ours", "theirs", 6, true, RejectNoDialog},
		{"made-up tags", "INFO", "c1@hashcall", "a1b2", "c3d4", 6, false, RejectTagMismatch},
		{"wrong local tag", "INFO", "c1@hashcall", "other", "theirs", 6, false, RejectTagMismatch},
		{"wrong remote tag", "INFO", "c1@hashcall", "ours", "other", 6, false, RejectTagMismatch},
		{"tags swapped", "INFO", "c1@hashcall", "theirs", "ours", 6, false, RejectTagMismatch},
		{"no To tag (out of dialog)", "INFO", "c1@hashcall", "-", "theirs", 6, false, RejectTagMismatch},
		{"no From tag", "INFO", "c1@hashcall", "ours", "-", 6, false, RejectTagMismatch},
		{"local tag in other case", "INFO", "c1@hashcall", "OURS", "theirs", 6, false, RejectTagMismatch},
		{"BYE with made-up tags", "BYE", "c1@hashcall", "x", "y", 6, false, RejectTagMismatch},
		{"re-INVITE with made-up tags", "INVITE", "c1@hashcall", "x", "y", 6, false, RejectTagMismatch},
		{"CSeq equal", "INFO", "c1@hashcall", "ours", "theirs", 5, false, RejectCSeq},
		{"CSeq lower", "BYE", "c1@hashcall", "ours", "theirs", 4, false, RejectCSeq},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := dialogState{callID: "c1@hashcall", localTag: "ours", remoteTag: "theirs", up: !tc.down, remoteSeq: 5, haveSeq: true}
			before := d
			got := d.admit(inDialogRequest(t, tc.method, tc.callID, tc.toTag, tc.fromTag, tc.cseq))
			if got != tc.want {
				t.Fatalf("admit = %q, want %q", got, tc.want)
			}
			switch {
			case got != "" && d != before:
				t.Errorf("a refused request changed the dialog: %+v, was %+v", d, before)
			case got == "" && tc.method != "ACK" && d.remoteSeq != uint32(tc.cseq):
				t.Errorf("remote CSeq %d after an admitted CSeq %d", d.remoteSeq, tc.cseq)
			case got == "" && tc.method == "ACK" && d.remoteSeq != 5:
				t.Errorf("an ACK moved the remote CSeq to %d", d.remoteSeq)
			}
		})
	}
}

// TestDialogAdmitFirstCSeq: the far end's first request sets the remote
// CSeq, whatever it is (§12.2.2: it starts empty), and the next must exceed
// it.
func TestDialogAdmitFirstCSeq(t *testing.T) {
	d := dialogState{callID: "c1@hashcall", localTag: "ours", remoteTag: "theirs", up: true}
	for i, step := range []struct {
		cseq int
		want string
	}{{1, ""}, {1, RejectCSeq}, {2, ""}, {40, ""}, {39, RejectCSeq}} {
		if got := d.admit(inDialogRequest(t, "INFO", "c1@hashcall", "ours", "theirs", step.cseq)); got != step.want {
			t.Errorf("request %d (CSeq %d): %q, want %q", i, step.cseq, got, step.want)
		}
	}
}

// TestRejectStatus: 481 for a request outside the dialog, 500 for one out
// of order (RFC 3261 §12.2.2).
func TestRejectStatus(t *testing.T) {
	for reason, want := range map[string]int{RejectUnknownCall: 481, RejectNoDialog: 481, RejectTagMismatch: 481, RejectCSeq: 500} {
		if got, _ := rejectStatus(reason); got != want {
			t.Errorf("%s: %d, want %d", reason, got, want)
		}
	}
}

// TestInDialogAttacksOnUA runs the attacks against a UA over loopback with
// the fake trunk: a stranger's requests from its own socket get 403, the
// trunk relaying requests with the wrong tags gets 481; neither reaches
// the call (no key, no re-offer, the call stays up), and the genuine
// requests afterwards still work.
func TestInDialogAttacksOnUA(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, nil)
	keys := make(chan dtmf.Key, 4)
	offers := make(chan []byte, 4)
	call, err := ua.Dial(context.Background(), "100", DialOptions{
		Offer: []byte(testSDP),
		Media: funcMedia{
			info:  func(k dtmf.Key, d time.Duration) { keys <- k },
			offer: func(o []byte) ([]byte, error) { offers <- o; return []byte(testSDP), nil },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
	s := ft.sessionByID(call.CallID())
	ourTag, _ := s.InviteRequest.From().Params.Get("tag")
	theirTag, _ := s.InviteRequest.To().Params.Get("tag") // ReadInvite put the far end's tag there
	uaAddr := ua.Addr().(*net.UDPAddr)

	// raw sends one request to the UA from conn and returns the status.
	raw := func(conn *net.UDPConn, method, toTag, fromTag string, cseq int, ctype, body string) int {
		t.Helper()
		la := conn.LocalAddr().String()
		msg := fmt.Sprintf("%s sip:hashcall@%s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %s;branch=z9hG4bK%d%s\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:100@trunk>;tag=%s\r\n"+
			"To: <sip:hashcall@trunk>;tag=%s\r\n"+
			"Call-ID: %s\r\nCSeq: %d %s\r\n"+
			"Contact: <sip:attacker@%s>\r\n", method, uaAddr, la, cseq, method, fromTag, toTag, call.CallID(), cseq, method, la)
		if ctype != "" {
			msg += "Content-Type: " + ctype + "\r\n"
		}
		msg += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
		if _, err := conn.WriteToUDP([]byte(msg), uaAddr); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("%s: no response: %v", method, err)
			}
			var code int
			if _, err := fmt.Sscanf(string(buf[:n]), "SIP/2.0 %d", &code); err == nil && code >= 200 {
				return code
			}
		}
	}
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	info := "Signal=#\r\nDuration=250\r\n"
	for _, a := range []struct {
		name            string
		method          string
		toTag, fromTag  string
		ctype, body     string
		want            int
		counter, reason string
	}{
		{"stranger INFO, right tags", "INFO", ourTag, theirTag, "application/dtmf-relay", info, 403, "untrusted", "INFO"},
		{"stranger re-INVITE, right tags", "INVITE", ourTag, theirTag, "application/sdp", testSDP, 403, "untrusted", "INVITE"},
		{"stranger UPDATE, right tags", "UPDATE", ourTag, theirTag, "application/sdp", testSDP, 403, "untrusted", "UPDATE"},
		{"stranger BYE, right tags", "BYE", ourTag, theirTag, "", "", 403, "untrusted", "BYE"},
		{"stranger OPTIONS", "OPTIONS", ourTag, theirTag, "", "", 403, "untrusted", "OPTIONS"},
		{"stranger MESSAGE", "MESSAGE", ourTag, theirTag, "text/plain", "hi", 403, "untrusted", "other"},
	} {
		before := ua.Stats().Untrusted[a.reason]
		if got := raw(stranger, a.method, a.toTag, a.fromTag, 50, a.ctype, a.body); got != a.want {
			t.Errorf("%s: %d, want %d", a.name, got, a.want)
		}
		if after := ua.Stats().Untrusted[a.reason]; after != before+1 {
			t.Errorf("%s: untrusted %s count %d → %d", a.name, a.reason, before, after)
		}
	}
	// Through the trunk (its socket, a trusted source) with made-up tags.
	for _, a := range []struct {
		name   string
		method string
		ctype  string
		body   string
	}{
		{"INFO", "INFO", "application/dtmf-relay", info},
		{"re-INVITE", "INVITE", "application/sdp", testSDP},
		{"UPDATE", "UPDATE", "application/sdp", testSDP},
		{"BYE", "BYE", "", ""},
	} {
		before := ua.Stats().DialogRejected[RejectTagMismatch]
		req := sip.NewRequest(sip.RequestMethod(a.method), sip.Uri{Scheme: "sip", User: "hashcall", Host: "127.0.0.1", Port: uaAddr.Port})
		from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "100", Host: "trunk"}, Params: sip.NewParams()}
		from.Params.Add("tag", "made-up-1")
		to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "hashcall", Host: "trunk"}, Params: sip.NewParams()}
		to.Params.Add("tag", "made-up-2")
		req.AppendHeader(from)
		req.AppendHeader(to)
		cid := sip.CallIDHeader(call.CallID())
		req.AppendHeader(&cid)
		if a.ctype != "" {
			req.AppendHeader(sip.NewHeader("Content-Type", a.ctype))
			req.SetBody([]byte(a.body))
		}
		res, err := ft.client.Do(context.Background(), req)
		if err != nil || res.StatusCode != 481 {
			t.Errorf("%s with made-up tags through the trunk: %v %v, want 481", a.name, res, err)
		}
		if after := ua.Stats().DialogRejected[RejectTagMismatch]; after != before+1 {
			t.Errorf("%s: tag_mismatch count %d → %d", a.name, before, after)
		}
	}
	select {
	case k := <-keys:
		t.Fatalf("an attack delivered the key %c", k)
	case o := <-offers:
		t.Fatalf("an attack delivered a re-offer %q", o)
	case <-call.Done():
		t.Fatal("an attack ended the call")
	default:
	}
	// The genuine far end: its INFO, then its BYE.
	greq := sip.NewRequest(sip.INFO, s.InviteRequest.Contact().Address)
	greq.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	greq.SetBody([]byte(info))
	if res, err := s.Do(context.Background(), greq); err != nil || res.StatusCode != 200 {
		t.Fatalf("genuine INFO: %v %v", res, err)
	}
	if k := <-keys; k != '#' {
		t.Errorf("genuine key %c", k)
	}
	if err := s.Bye(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-call.Done()
	if !call.RemoteHangup() {
		t.Error("the genuine BYE did not end the call as a remote hang-up")
	}
}

// TestTrustSet: which sources each kind of entry allows.
func TestTrustSet(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("198.51.100.7/32")}
	ts := &trustSet{
		exact: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.5:5060")},
		hosts: []netip.Addr{netip.MustParseAddr("203.0.113.5")},
		nets:  nets,
	}
	for _, tc := range []struct {
		name    string
		network string
		src     string
		want    bool
	}{
		{"trunk address and port (udp)", "udp", "203.0.113.5:5060", true},
		{"trunk address, other port (udp)", "udp", "203.0.113.5:40000", false},
		{"trunk address, other port (tcp)", "tcp", "203.0.113.5:40000", true},
		{"IPv4-mapped trunk address", "udp", "[::ffff:203.0.113.5]:5060", true},
		{"in a trusted prefix, any port", "udp", "192.0.2.77:1234", true},
		{"in a trusted IPv6 prefix", "udp", "[2001:db8::1]:5060", true},
		{"a single trusted address", "udp", "198.51.100.7:9", true},
		{"next to a single trusted address", "udp", "198.51.100.8:9", false},
		{"stranger", "udp", "127.0.0.1:5060", false},
		{"stranger (tcp)", "tcp", "127.0.0.1:5060", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ts.allows(tc.network, netip.MustParseAddrPort(tc.src)); got != tc.want {
				t.Errorf("allows(%s, %s) = %v, want %v", tc.network, tc.src, got, tc.want)
			}
		})
	}
}

// TestTrustedSourcesConfig: with the stranger's network in TrustedSources
// its requests pass the source check (and then meet the dialog check).
func TestTrustedSourcesConfig(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, func(c *Config) { c.TrustedSources = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := fmt.Sprintf("OPTIONS sip:hashcall@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKopt1\r\nMax-Forwards: 70\r\n"+
		"From: <sip:mon@x>;tag=1\r\nTo: <sip:hashcall@x>\r\nCall-ID: opt1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", ua.Addr(), c.LocalAddr())
	if _, err := c.WriteToUDP([]byte(msg), ua.Addr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(buf)
	if err != nil || !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200")) {
		t.Fatalf("OPTIONS from a trusted network: %q %v", buf[:n], err)
	}
	// And a reload without it refuses the same source.
	if err := ua.ReloadTrust(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	msg = strings.ReplaceAll(msg, "opt1", "opt2")
	if _, err := c.WriteToUDP([]byte(msg), ua.Addr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	n, err = c.Read(buf)
	if err != nil || !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 403")) {
		t.Fatalf("OPTIONS after the reload dropped the network: %q %v", buf[:n], err)
	}
}

// TestUnresolvableTrunkTrustsNothing: a trunk hostname that does not
// resolve is reported by ReloadTrust and trusted for nothing.
func TestUnresolvableTrunkTrustsNothing(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, func(c *Config) { c.Trunk.Address = "trunk.hashcall.invalid:5060" })
	err := ua.ReloadTrust(context.Background(), nil)
	if err == nil {
		t.Fatal("no error for a trunk that does not resolve")
	}
	if !errors.Is(err, ErrTrustedSources) {
		t.Errorf("error %v is not ErrTrustedSources", err)
	}
	if tr := ua.trust.Load(); len(tr.exact)+len(tr.hosts)+len(tr.nets) != 0 {
		t.Errorf("trust set %+v, want empty", tr)
	}
}

// idForm: what randomID makes (26 base32 characters).
var idForm = regexp.MustCompile(`^[A-Z2-7]{26}$`)

// TestIDsFromRandomness: Call-IDs, tags and branches are the bytes of the
// randomness source (crypto/rand unless a test replaces it), 128 bits each,
// in base32.
func TestIDsFromRandomness(t *testing.T) {
	if randomness != rand.Reader {
		t.Fatal("identifiers do not come from crypto/rand.Reader")
	}
	old := randomness
	defer func() { randomness = old }()
	src := bytes.Repeat([]byte{0xff}, 16)
	src = append(src, make([]byte, 16)...)
	src = append(src, bytes.Repeat([]byte{0x5a}, 16)...)
	randomness = bytes.NewReader(src)
	id, err := newCallID()
	if err != nil || id != "77777777777777777777777774@hashcall" {
		t.Errorf("Call-ID from 16 bytes of 0xff: %q %v", id, err)
	}
	tag, err := newTag()
	if err != nil || tag != strings.Repeat("A", 26) {
		t.Errorf("tag from 16 zero bytes: %q %v", tag, err)
	}
	br, err := newBranch()
	if err != nil || br != "z9hG4bKLJNFUWS2LJNFUWS2LJNFUWS2LI" {
		t.Errorf("branch: %q %v", br, err)
	}
	if _, err := newTag(); err == nil {
		t.Error("no error from an exhausted source")
	}
}

// TestWireIDs: what goes on the wire carries our identifiers, never
// sipgo's math/rand ones (16 characters of [0-9a-zA-Z]): the INVITE's
// Call-ID and From tag, and the branch of every request we send,
// including the ACK and BYE that sipgo builds; a CANCEL keeps its
// INVITE's branch.
func TestWireIDs(t *testing.T) {
	var mu sync.Mutex
	var seen []*sip.Request
	ft := newFakeTrunk(t, func(ft *fakeTrunk) {
		ft.seen = func(r *sip.Request) {
			mu.Lock()
			seen = append(seen, r.Clone())
			mu.Unlock()
		}
	})
	ua := newTestUA(t, ft, nil)
	call, err := ua.Dial(context.Background(), "100", DialOptions{Offer: []byte(testSDP)})
	if err != nil {
		t.Fatal(err)
	}
	ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
	if err := call.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	ft.mu.Lock()
	inv := ft.lastReq
	ft.mu.Unlock()
	mu.Lock()
	all := append([]*sip.Request{inv}, seen...)
	seen = nil
	mu.Unlock()
	if len(all) != 3 {
		t.Fatalf("%d requests seen, want INVITE, ACK, BYE", len(all))
	}
	cid := inv.CallID().Value()
	if !strings.HasSuffix(cid, "@hashcall") || !idForm.MatchString(strings.TrimSuffix(cid, "@hashcall")) {
		t.Errorf("Call-ID %q is not ours", cid)
	}
	if tag, _ := inv.From().Params.Get("tag"); !idForm.MatchString(tag) {
		t.Errorf("From tag %q is not ours", tag)
	}
	branches := map[string]bool{}
	for _, r := range all {
		br, _ := r.Via().Params.Get("branch")
		if !strings.HasPrefix(br, "z9hG4bK") || !idForm.MatchString(strings.TrimPrefix(br, "z9hG4bK")) {
			t.Errorf("%s branch %q is not ours", r.Method, br)
		}
		branches[br] = true
	}
	if len(branches) != 3 {
		t.Errorf("branches %v: want three different ones", branches)
	}

	// A CANCEL carries its INVITE's branch.
	_, _ = ua.Dial(context.Background(), "1000", DialOptions{Offer: []byte(testSDP), RingTimeout: 300 * time.Millisecond})
	ft.mu.Lock()
	inv = ft.lastReq
	ft.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 || seen[0].Method != sip.CANCEL {
		t.Fatalf("no CANCEL seen: %v", seen)
	}
	ib, _ := inv.Via().Params.Get("branch")
	cb, _ := seen[0].Via().Params.Get("branch")
	if ib != cb || !idForm.MatchString(strings.TrimPrefix(cb, "z9hG4bK")) {
		t.Errorf("CANCEL branch %q, INVITE branch %q: want the same, ours", cb, ib)
	}
}

// TestStrangerByeLeavesCallUp: a BYE with the wrong tags (through the
// trunk) or from a stranger's socket gets 481 / 403 and changes nothing:
// the call stays up, and our hang-up later still sends our BYE to the far
// end.
func TestStrangerByeLeavesCallUp(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, nil)
	call, err := ua.Dial(context.Background(), "100", DialOptions{Offer: []byte(testSDP)})
	if err != nil {
		t.Fatal(err)
	}
	ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
	s := ft.sessionByID(call.CallID())
	// Right From tag, made-up To tag, via the trunk.
	bye := sip.NewRequest(sip.BYE, sip.Uri{Scheme: "sip", User: "hashcall", Host: "127.0.0.1", Port: ua.Addr().(*net.UDPAddr).Port})
	from := sip.HeaderClone(s.InviteRequest.To()).(*sip.ToHeader)
	bye.AppendHeader(&sip.FromHeader{Address: from.Address, Params: from.Params})
	to := &sip.ToHeader{Address: s.InviteRequest.From().Address, Params: sip.NewParams()}
	to.Params.Add("tag", "not-ours")
	bye.AppendHeader(to)
	cid := sip.CallIDHeader(call.CallID())
	bye.AppendHeader(&cid)
	res, err := ft.client.Do(context.Background(), bye)
	if err != nil || res.StatusCode != 481 {
		t.Fatalf("BYE with a wrong To tag: %v %v, want 481", res, err)
	}
	select {
	case <-call.Done():
		t.Fatal("a BYE that failed the dialog check ended the call")
	default:
	}
	if err := call.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := ft.byes.Load(); n != 1 {
		t.Errorf("%d BYEs reached the far end, want ours", n)
	}
	if call.RemoteHangup() {
		t.Error("RemoteHangup after our own BYE")
	}
}

// TestNoCallIDAboveDebug: a call with everything that logs (dialling,
// answer, INFO, a refused in-dialog request, the far end's BYE) leaves its
// Call-ID out of every log line above debug level, which name the call by
// its ref; at debug level the Call-ID is there.
func TestNoCallIDAboveDebug(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			ft := newFakeTrunk(t)
			var buf syncBuffer
			ua := newTestUA(t, ft, func(c *Config) {
				c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
			})
			call, err := ua.Dial(context.Background(), "100", DialOptions{Offer: []byte(testSDP), Media: funcMedia{}})
			if err != nil {
				t.Fatal(err)
			}
			ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
			s := ft.sessionByID(call.CallID())
			info := sip.NewRequest(sip.INFO, s.InviteRequest.Contact().Address)
			info.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
			info.SetBody([]byte("Signal=#\r\n"))
			if res, err := s.Do(context.Background(), info); err != nil || res.StatusCode != 200 {
				t.Fatalf("INFO: %v %v", res, err)
			}
			bad := sip.NewRequest(sip.INFO, s.InviteRequest.Contact().Address)
			bad.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
			bad.AppendHeader(sip.NewHeader("CSeq", "1 INFO")) // not above the last one
			bad.SetBody([]byte("Signal=#\r\n"))
			if res, err := s.Do(context.Background(), bad); err != nil || res.StatusCode != 500 {
				t.Fatalf("INFO with an old CSeq: %v %v, want 500", res, err)
			}
			if err := s.Bye(context.Background()); err != nil {
				t.Fatal(err)
			}
			<-call.Done()
			out := buf.String()
			ref := callRef(call.CallID())
			if !strings.Contains(out, "call="+ref) || !strings.Contains(out, "reason="+RejectCSeq) {
				t.Errorf("the log does not name the call by its ref %s or lacks the refusal:\n%s", ref, out)
			}
			if got := strings.Contains(out, call.CallID()); got != (level == slog.LevelDebug) {
				t.Errorf("Call-ID in the %s log: %v\n%s", level, got, out)
			}
		})
	}
}

// TestForgedResponsesDropped: a stranger who has read our INVITE answers
// it from its own socket, first with a 200 and its own SDP, then with a
// 486: both are dropped before the transaction layer and counted, and the
// call rings on until our ring timeout cancels it.
func TestForgedResponsesDropped(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, nil)
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	forged := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var inv *sip.Request
		if err := ft.awaitCtx(ctx, func() bool {
			ft.mu.Lock()
			defer ft.mu.Unlock()
			inv = ft.lastReq
			return inv != nil
		}); err != nil {
			forged <- fmt.Errorf("no INVITE reached the trunk: %w", err)
			return
		}
		for _, code := range []int{200, 486} {
			res := sip.NewResponseFromRequest(inv, code, "Forged", nil)
			res.To().Params.Add("tag", "attacker")
			res.AppendHeader(sip.NewHeader("Contact", "<sip:attacker@"+stranger.LocalAddr().String()+">"))
			if code == 200 {
				res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
				res.SetBody([]byte(testSDP))
			}
			if _, err := stranger.WriteToUDP([]byte(res.String()), ua.Addr().(*net.UDPAddr)); err != nil {
				forged <- err
				return
			}
		}
		forged <- nil
	}()
	start := time.Now()
	_, err = ua.Dial(context.Background(), "1000", DialOptions{Offer: []byte(testSDP), RingTimeout: time.Second})
	if err := <-forged; err != nil {
		t.Fatal(err)
	}
	var de *DialError
	if !errors.As(err, &de) || de.Kind != KindRingTimeout {
		t.Fatalf("Dial: %v, want the ring timeout (the forged responses must not answer or end the call)", err)
	}
	if time.Since(start) < time.Second {
		t.Errorf("Dial returned after %v, before the ring timeout", time.Since(start))
	}
	if n := ua.Stats().Untrusted[untrustedResponse]; n != 2 {
		t.Errorf("%d forged responses counted, want 2", n)
	}
}

// TestStrangerStreamDropped: on TCP, what a stranger's connection carries
// is dropped unread (a stream cannot be split into messages before
// parsing) and counted; the trunk (here 127.0.0.2) is another address.
func TestStrangerStreamDropped(t *testing.T) {
	ua, err := NewUA(context.Background(), Config{
		Listen:    "127.0.0.1:0",
		Transport: "tcp",
		Trunk:     Trunk{Address: "127.0.0.2:5", OptionsInterval: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	c, err := net.Dial("tcp", ua.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := fmt.Sprintf("OPTIONS sip:hashcall@%s;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bKtcp1\r\nMax-Forwards: 70\r\n"+
		"From: <sip:probe@x>;tag=1\r\nTo: <sip:hashcall@x>\r\nCall-ID: tcp1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", ua.Addr(), c.LocalAddr())
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	// The counter is the only sign of a dropped stream: polled.
	testwait.For(t, 3*time.Second, "the stream counted", func() bool { return ua.Stats().Untrusted[untrustedStream] >= 1 })
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 512)); err == nil {
		t.Errorf("a stranger's TCP OPTIONS was answered (%d bytes)", n)
	}
	if n := ua.Stats().Untrusted["OPTIONS"]; n != 0 {
		t.Errorf("the OPTIONS reached the handlers (%d)", n)
	}
}

// BenchmarkDialogAdmit: the dialog check of one in-dialog request.
func BenchmarkDialogAdmit(b *testing.B) {
	req := inDialogRequest(b, "INFO", "c1@hashcall", "ours", "theirs", 6)
	d := dialogState{callID: "c1@hashcall", localTag: "ours", remoteTag: "theirs", up: true}
	b.ReportAllocs()
	for b.Loop() {
		d.haveSeq = false
		if d.admit(req) != "" {
			b.Fatal("refused")
		}
	}
}

// BenchmarkTrustAllows: the source check of one message against the trunk
// and three trusted prefixes.
func BenchmarkTrustAllows(b *testing.B) {
	ts := &trustSet{
		exact: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.5:5060")},
		hosts: []netip.Addr{netip.MustParseAddr("203.0.113.5")},
		nets:  []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("198.51.100.7/32")},
	}
	src := netip.MustParseAddrPort("203.0.113.5:5060")
	b.ReportAllocs()
	for b.Loop() {
		if !ts.allows("udp", src) {
			b.Fatal("refused")
		}
	}
}
