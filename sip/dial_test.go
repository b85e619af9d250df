package sip

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/hashcall/hashcall/dtmf"
)

// These are fast unit tests against an in-process sipgo UAS standing in for
// the trunk. The interop tests against Kamailio, SIPp, baresip and linphone
// live in the verify and cmd packages.

const testSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"

// fakeTrunk answers INVITEs by the Request-URI's user part.
type fakeTrunk struct {
	t      *testing.T
	addr   string
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	dialog *sipgo.DialogUA

	password string // when set, INVITEs are challenged (407)
	algo     string // digest algorithm; default MD5
	stale    bool   // challenge the first authenticated INVITE again with stale=true
	nonces   atomic.Int32

	mu       sync.Mutex
	sessions map[string]*sipgo.DialogServerSession
	cancels  atomic.Int32
	byes     atomic.Int32
	acks     atomic.Int32
	invites  atomic.Int32
	lastReq  *sip.Request
	// seen, when set (by an option), sees every ACK, BYE and CANCEL.
	seen func(*sip.Request)
	// progressed, when set (by an option), is closed by the caller's
	// OnProgress once it has taken the trunk's 180 or 183: the trunk answers
	// only then, so the provisional response is seen before the 200.
	progressed chan struct{}
	// changed is closed (and replaced) whenever the trunk counts a request
	// or keeps an INVITE: await blocks on it.
	changed chan struct{}
}

// note wakes every await: a counter or lastReq changed.
func (ft *fakeTrunk) note() {
	ft.mu.Lock()
	close(ft.changed)
	ft.changed = make(chan struct{})
	ft.mu.Unlock()
}

// awaitCtx returns nil once cond holds, checking it after every change the
// trunk notes, or ctx's error.
func (ft *fakeTrunk) awaitCtx(ctx context.Context, cond func() bool) error {
	for {
		ft.mu.Lock()
		ch := ft.changed
		ft.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// await waits up to 3 s for cond (what names it), failing t otherwise.
func (ft *fakeTrunk) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := ft.awaitCtx(ctx, cond); err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// waitProgress makes the trunk answer only once the caller's OnProgress
// closed ch.
func waitProgress(ch chan struct{}) func(*fakeTrunk) {
	return func(ft *fakeTrunk) { ft.progressed = ch }
}

// progressOnce returns an OnProgress that closes ch at the first
// provisional response, and then calls also (when not nil).
func progressOnce(ch chan struct{}, also func(Progress)) func(Progress) {
	var once sync.Once
	return func(p Progress) {
		if also != nil {
			also(p)
		}
		once.Do(func() { close(ch) })
	}
}

// ringTime is how long the default phone rings before it answers: a
// scenario's timing, not a wait for anything.
const ringTime = 20 * time.Millisecond

// answerAfter waits for what the trunk answers after: the caller's OnProgress
// when waitProgress is set, else d of ringing; false when the transaction
// ended first.
func (ft *fakeTrunk) answerAfter(tx sip.ServerTransaction, d time.Duration) bool {
	var after <-chan time.Time
	if ft.progressed == nil {
		timer := time.NewTimer(d)
		defer timer.Stop()
		after = timer.C
	}
	select {
	case <-ft.progressed:
	case <-after:
	case <-tx.Done():
		return false
	}
	return true
}

func newFakeTrunk(t *testing.T, opts ...func(*fakeTrunk)) *fakeTrunk {
	return newFakeTrunkOn(t, "udp", nil, opts...)
}

// newFakeTrunkOn serves udp, tcp or tls (with serverTLS) on 127.0.0.1, or
// udp6 (UDP on [::1]).
func newFakeTrunkOn(t *testing.T, network string, serverTLS *tls.Config, opts ...func(*fakeTrunk)) *fakeTrunk {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("fake-trunk"))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := sipgo.NewServer(ua)
	var (
		addr  net.Addr
		serve func() error
		close func() error
	)
	switch network {
	case "udp", "udp6":
		host := "127.0.0.1:0"
		if network == "udp6" {
			host = "[::1]:0"
		}
		pc, err := net.ListenPacket("udp", host)
		if err != nil {
			t.Fatal(err)
		}
		addr, close, serve = pc.LocalAddr(), pc.Close, func() error { return srv.ServeUDP(pc) }
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr, close = l.Addr(), l.Close
		if network == "tls" {
			tl := tls.NewListener(l, serverTLS)
			serve = func() error { return srv.ServeTLS(tl) }
		} else {
			serve = func() error { return srv.ServeTCP(l) }
		}
	}
	clientOpts := []sipgo.ClientOption{}
	if network == "udp" {
		clientOpts = append(clientOpts, sipgo.WithClientConnectionAddr(addr.String()))
	}
	client, _ := sipgo.NewClient(ua, clientOpts...)
	ft := &fakeTrunk{t: t, addr: addr.String(), ua: ua, srv: srv, client: client, sessions: map[string]*sipgo.DialogServerSession{}, changed: make(chan struct{})}
	for _, o := range opts {
		o(ft)
	}
	host, portStr, _ := net.SplitHostPort(addr.String())
	port, _ := strconv.Atoi(portStr)
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "trunk", Host: uriHost(host), Port: port}}
	if network != "udp" && network != "udp6" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", network)
	}
	ft.dialog = &sipgo.DialogUA{Client: client, ContactHDR: contact}
	srv.OnInvite(ft.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if ft.seen != nil {
			ft.seen(req)
		}
		ft.acks.Add(1)
		ft.note()
		if s := ft.session(req); s != nil {
			if err := s.ReadAck(req, tx); err != nil {
				t.Logf("ReadAck: %v (ack cseq %d)", err, req.CSeq().SeqNo)
			}
		}
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if ft.seen != nil {
			ft.seen(req)
		}
		ft.byes.Add(1)
		ft.note()
		if s := ft.session(req); s != nil {
			_ = s.ReadBye(req, tx)
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "No dialog", nil))
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	go func() { _ = serve() }()
	t.Cleanup(func() { ua.Close(); close() })
	return ft
}

func (ft *fakeTrunk) session(req *sip.Request) *sipgo.DialogServerSession {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.sessions[req.CallID().Value()]
}

func (ft *fakeTrunk) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	ft.invites.Add(1)
	ft.mu.Lock()
	ft.lastReq = req.Clone()
	ft.mu.Unlock()
	ft.note()
	if ft.password != "" && !ft.authorized(req, tx) {
		return
	}
	user := req.Recipient.User
	respond := func(code int, reason string, hdrs ...sip.Header) {
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		for _, h := range hdrs {
			res.AppendHeader(h)
		}
		_ = tx.Respond(res)
	}
	switch {
	case user == "486":
		respond(486, "Busy Here", sip.NewHeader("Reason", `Q.850;cause=17;text="User busy"`))
	case user == "603":
		respond(603, "Decline")
	case user == "404":
		respond(404, "Not Found", sip.NewHeader("Reason", "Q.850;cause=1"))
	case user == "503":
		respond(503, "Service Unavailable")
	case user == "1000": // rings until cancelled
		// Ring until cancelled; sipgo answers the CANCEL and the INVITE (487).
		respond(180, "Ringing")
		tx.OnCancel(func(r *sip.Request) {
			if ft.seen != nil {
				ft.seen(r)
			}
			ft.cancels.Add(1)
			ft.note()
		})
		<-tx.Done()
	case user == "1001": // silent
		// Never answer anything: Timer B or our ring timeout ends it.
		<-tx.Done()
	case user == "1003": // SDP in the 183 only, a 200 without it
		res := sip.NewResponseFromRequest(req, 183, "Session Progress", []byte(testSDP))
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		_ = tx.Respond(res)
		if ft.progressed == nil {
			ft.t.Error("the 1003 trunk needs waitProgress: its 200 must follow the caller's taking the 183")
			return
		}
		if !ft.answerAfter(tx, 0) {
			return
		}
		s, err := ft.dialog.ReadInvite(req, tx)
		if err != nil {
			ft.t.Error(err)
			return
		}
		ft.mu.Lock()
		ft.sessions[req.CallID().Value()] = s
		ft.mu.Unlock()
		_ = s.Respond(200, "OK", nil)
		<-tx.Done()
	case user == "1002": // a carrier that repeats 183
		for range 15 {
			respond(183, "Session Progress")
		}
		ft.answer(req, tx)
	default:
		respond(180, "Ringing")
		if ft.answerAfter(tx, ringTime) {
			ft.answer(req, tx)
		}
	}
}

func (ft *fakeTrunk) answer(req *sip.Request, tx sip.ServerTransaction) {
	s, err := ft.dialog.ReadInvite(req, tx)
	if err != nil {
		ft.t.Error(err)
		return
	}
	ft.mu.Lock()
	ft.sessions[req.CallID().Value()] = s
	ft.mu.Unlock()
	if err := s.RespondSDP([]byte(testSDP)); err != nil {
		ft.t.Error(err)
	}
	<-tx.Done()
}

// authorized challenges with 407 until the INVITE carries good credentials.
func (ft *fakeTrunk) authorized(req *sip.Request, tx sip.ServerTransaction) bool {
	h := req.GetHeader("Proxy-Authorization")
	n := ft.nonces.Add(1)
	algo := ft.algo
	if algo == "" {
		algo = "MD5"
	}
	chal := &digest.Challenge{Realm: "test", Nonce: "nonce" + string(rune('a'+n)), Algorithm: algo, QOP: []string{"auth"}}
	if h != nil {
		cred, err := digest.ParseCredentials(h.Value())
		if err == nil {
			want, _ := digest.Digest(&digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, QOP: []string{"auth"}},
				digest.Options{Method: "INVITE", URI: cred.URI, Username: cred.Username, Password: ft.password, Cnonce: cred.Cnonce, Count: cred.Nc})
			if want != nil && want.Response == cred.Response {
				ft.mu.Lock()
				stale := ft.stale
				ft.stale = false
				ft.mu.Unlock()
				if !stale {
					return true
				}
				chal.Stale = true
			}
		}
	}
	res := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
	res.AppendHeader(sip.NewHeader("Proxy-Authenticate", chal.String()))
	_ = tx.Respond(res)
	return false
}

func newTestUA(t *testing.T, ft *fakeTrunk, mod func(*Config)) *UA {
	t.Helper()
	cfg := Config{
		Listen:      "127.0.0.1:0",
		Trunk:       Trunk{Address: ft.addr, OptionsInterval: -1},
		From:        "+441234567890",
		DisplayName: "Sign-in check",
		RingTimeout: 2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	ua, err := NewUA(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	return ua
}

func TestDialOutcomes(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, nil)
	tests := []struct {
		number    string
		kind      Kind
		code      int
		cause     int
		cancelled bool
	}{
		{"486", KindResponse, 486, 17, false},
		{"603", KindResponse, 603, 0, false},
		{"404", KindResponse, 404, 1, false},
		{"503", KindResponse, 503, 0, false},
		{"1000", KindRingTimeout, 487, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.number, func(t *testing.T) {
			before := ft.cancels.Load()
			_, err := ua.Dial(context.Background(), tc.number, DialOptions{Offer: []byte(testSDP)})
			var de *DialError
			if !errors.As(err, &de) {
				t.Fatalf("want *DialError, got %v", err)
			}
			if de.Kind != tc.kind || de.Code != tc.code || de.Cause != tc.cause {
				t.Fatalf("got kind %v code %d cause %d (%v), want %v %d %d", de.Kind, de.Code, de.Cause, err, tc.kind, tc.code, tc.cause)
			}
			if tc.cancelled && ft.cancels.Load() == before {
				t.Error("no CANCEL reached the trunk")
			}
		})
	}
}

func TestDialAnswerAndHangup(t *testing.T) {
	rang := make(chan struct{})
	ft := newFakeTrunk(t, waitProgress(rang))
	ua := newTestUA(t, ft, func(c *Config) { c.PAssertedIdentity = "+441234567890" })
	var progress []Progress
	call, err := ua.Dial(context.Background(), "+447700900123", DialOptions{
		Offer:      []byte(testSDP),
		OnProgress: progressOnce(rang, func(p Progress) { progress = append(progress, p) }),
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(call.Answer) != testSDP || call.Code != 200 {
		t.Errorf("answer %q code %d", call.Answer, call.Code)
	}
	if len(progress) == 0 || progress[0].Code != 180 {
		t.Errorf("progress %v, want a 180", progress)
	}
	ft.mu.Lock()
	inv := ft.lastReq
	ft.mu.Unlock()
	if got := inv.Recipient.User; got != "+447700900123" {
		t.Errorf("Request-URI user %q", got)
	}
	if from := inv.From(); from.DisplayName != "Sign-in check" || from.Address.User != "+441234567890" {
		t.Errorf("From %v", from)
	}
	if h := inv.GetHeader("P-Asserted-Identity"); h == nil || !strings.Contains(h.Value(), "+441234567890") {
		t.Errorf("P-Asserted-Identity %v", h)
	}
	if via := inv.Via(); via.Port != ua.Addr().(*net.UDPAddr).Port {
		t.Errorf("Via port %d, want our listener's %v", via.Port, ua.Addr())
	}
	if src := inv.Source(); src != ua.Addr().String() {
		t.Errorf("INVITE came from %s, want our bound socket %s", src, ua.Addr())
	}
	ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
	if err := call.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ft.byes.Load() != 1 {
		t.Errorf("%d BYEs reached the trunk", ft.byes.Load())
	}
	select {
	case <-call.Done():
	default:
		t.Error("Done not closed after Hangup")
	}
	if call.RemoteHangup() {
		t.Error("RemoteHangup after our BYE")
	}
}

// TestDialIPv6: a trunk at [::1]:port is reached from a listener on [::1],
// the Request-URI, Via and Contact carrying the address in brackets
// (RFC 3261 §19.1.1, RFC 5118).
func TestDialIPv6(t *testing.T) {
	if pc, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		pc.Close()
	}
	ft := newFakeTrunkOn(t, "udp6", nil)
	ua := newTestUA(t, ft, func(c *Config) { c.Listen = "[::1]:0" })
	call, err := ua.Dial(context.Background(), "+447700900123", DialOptions{Offer: []byte(testSDP)})
	if err != nil {
		t.Fatal(err)
	}
	ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
	ft.mu.Lock()
	inv := ft.lastReq
	ft.mu.Unlock()
	if got := inv.Recipient.String(); !strings.Contains(got, "@[::1]:") {
		t.Errorf("Request-URI %s, want the trunk's [::1]", got)
	}
	if got := inv.Contact().Address.String(); !strings.Contains(got, "@[::1]:") {
		t.Errorf("Contact %s, want our [::1] listener", got)
	}
	if via := inv.Via(); !strings.HasPrefix(via.Value(), "SIP/2.0/UDP [::1]:") {
		t.Errorf("Via %s, want our [::1] listener in brackets", via.Value())
	}
	if err := call.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ft.byes.Load() != 1 {
		t.Errorf("%d BYEs reached the trunk", ft.byes.Load())
	}
}

func TestDialRemoteByeAndInfo(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, nil)
	keys := make(chan dtmf.Key, 4)
	call, err := ua.Dial(context.Background(), "100", DialOptions{
		Offer: []byte(testSDP),
		Media: funcMedia{
			info:  func(k dtmf.Key, d time.Duration) { keys <- k },
			offer: func(offer []byte) ([]byte, error) { return []byte("v=0\r\n"), nil },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
	s := ft.sessionByID(call.CallID())
	ctx := context.Background()
	for _, body := range []struct{ ct, body string }{
		{"application/dtmf-relay", "Signal=#\r\nDuration=250\r\n"},
		{"application/dtmf", "5"},
	} {
		info := sip.NewRequest(sip.INFO, s.InviteRequest.Contact().Address)
		info.AppendHeader(sip.NewHeader("Content-Type", body.ct))
		info.SetBody([]byte(body.body))
		res, err := s.Do(ctx, info)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("INFO: %v %v", res, err)
		}
	}
	if k1, k2 := <-keys, <-keys; k1 != '#' || k2 != '5' {
		t.Errorf("keys %c %c", k1, k2)
	}
	// UPDATE with an offer is answered with ours.
	upd := sip.NewRequest(sip.UPDATE, s.InviteRequest.Contact().Address)
	upd.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	upd.SetBody([]byte(testSDP))
	res, err := s.Do(ctx, upd)
	if err != nil || res.StatusCode != 200 || string(res.Body()) != "v=0\r\n" {
		t.Fatalf("UPDATE: %v %v", res, err)
	}
	if err := s.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("remote BYE did not end the call")
	}
	if !call.RemoteHangup() {
		t.Error("RemoteHangup false after the far end's BYE")
	}
	if err := call.Hangup(ctx); err != nil {
		t.Errorf("Hangup after remote BYE: %v", err)
	}
}

func (ft *fakeTrunk) sessionByID(id string) *sipgo.DialogServerSession {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.sessions[id]
}

func TestDialDigest(t *testing.T) {
	tests := []struct {
		name     string
		password string
		stale    bool
		wantErr  Kind
	}{
		{"right_password", "s3cret", false, 0},
		{"right_password_sha256", "s3cret", false, 0},
		{"stale_nonce_rechallenge_once", "s3cret", true, 0},
		{"wrong_password_fails_without_loop", "wrong", false, KindAuth},
		{"no_credentials", "", false, KindAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := newFakeTrunk(t, func(ft *fakeTrunk) {
				ft.password, ft.stale = "s3cret", tc.stale
				if strings.HasSuffix(tc.name, "sha256") {
					ft.algo = "SHA-256"
				}
			})
			ua := newTestUA(t, ft, func(c *Config) { c.Trunk.Username, c.Trunk.Password = "hashcall", tc.password })
			call, err := ua.Dial(context.Background(), "100", DialOptions{Offer: []byte(testSDP)})
			if tc.wantErr == 0 {
				if err != nil {
					t.Fatal(err)
				}
				// BYE and ACK are handled concurrently at the fake: let the
				// ACK land first so it does not report a missing ACK.
				ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
				_ = call.Hangup(context.Background())
				return
			}
			var de *DialError
			if !errors.As(err, &de) || de.Kind != tc.wantErr {
				t.Fatalf("got %v, want kind %v", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), tc.password) && tc.password != "" {
				t.Errorf("error reveals the password: %v", err)
			}
			if n := ft.invites.Load(); n > 3 {
				t.Errorf("%d INVITEs: looping on a bad password", n)
			}
		})
	}
}

func TestDialManyProvisionals(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, nil)
	call, err := ua.Dial(context.Background(), "1002", DialOptions{Offer: []byte(testSDP)})
	if err != nil {
		t.Fatalf("15 × 183 then 200: %v", err)
	}
	ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
	_ = call.Hangup(context.Background())
}

func TestDialCancelledByCaller(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, func(c *Config) { c.RingTimeout = time.Minute })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err := ua.Dial(ctx, "1000", DialOptions{Offer: []byte(testSDP)})
	var de *DialError
	if !errors.As(err, &de) || de.Kind != KindCancelled {
		t.Fatalf("got %v, want KindCancelled", err)
	}
	ft.await(t, "CANCEL", func() bool { return ft.cancels.Load() == 1 })
}

func TestDialBadInput(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, nil)
	for _, n := range []string{"", "12a", "+44\r\nX: y", "1+2", strings.Repeat("1", 40)} {
		if _, err := ua.Dial(context.Background(), n, DialOptions{}); err == nil {
			t.Errorf("number %q accepted", n)
		}
	}
	if ft.invites.Load() != 0 {
		t.Errorf("%d INVITEs sent for bad numbers", ft.invites.Load())
	}
	if _, err := NewUA(context.Background(), Config{Listen: "127.0.0.1:0", DisplayName: "x\r\nInjected: 1"}); err == nil {
		t.Error("CR/LF in display name accepted")
	}
}

func TestOptions(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, nil)
	if !ua.Ping(context.Background()) {
		t.Fatal("trunk that answers OPTIONS reported down")
	}
	if up, _ := ua.TrunkState(); !up {
		t.Error("TrunkState down")
	}
	// And we answer OPTIONS with 200.
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: ua.Addr().(*net.UDPAddr).Port})
	res, err := ft.client.Do(context.Background(), req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS to us: %v %v", res, err)
	}
}

func TestParseInfo(t *testing.T) {
	tests := []struct {
		name, ct, body string
		key            dtmf.Key
		d              time.Duration
		err            bool
	}{
		{"relay_hash", "application/dtmf-relay", "Signal=#\r\nDuration=250\r\n", '#', 250 * time.Millisecond, false},
		{"relay_event_11", "application/dtmf-relay", "Signal=11\nDuration=100", '#', 100 * time.Millisecond, false},
		{"relay_star_spaces", "Application/DTMF-Relay; charset=x", "Signal = *\r\n", '*', 0, false},
		{"dtmf_bare", "application/dtmf", "#", '#', 0, false},
		{"dtmf_D", "application/dtmf", "d", 'D', 0, false},
		{"relay_no_signal", "application/dtmf-relay", "Duration=250", 0, 0, true},
		{"relay_bad_key", "application/dtmf-relay", "Signal=X", 0, 0, true},
		{"relay_bad_duration", "application/dtmf-relay", "Signal=1\nDuration=-5", 0, 0, true},
		{"other_package", "application/media_control+xml", "<x/>", 0, 0, true},
		// Bodies as real phones write them.
		{"relay_space_after_equals", "application/dtmf-relay", "Signal= 1\r\nDuration= 160\r\n", '1', 160 * time.Millisecond, false},
		{"relay_hash_no_duration", "application/dtmf-relay", "Signal=#", '#', 0, false},
		{"relay_lf_only_lowercase", "application/dtmf-relay", "signal=9\nduration=100\n", '9', 100 * time.Millisecond, false},
		{"relay_trailing_blank_lines", "application/dtmf-relay", "Signal=  #  \r\n\r\n\r\n", '#', 0, false},
		{"relay_empty_duration", "application/dtmf-relay", "Signal=4\r\nDuration=\r\n", '4', 0, false},
		{"relay_byte_order_mark", "application/dtmf-relay", "\ufeffSignal=7\r\nDuration=200\r\n", '7', 200 * time.Millisecond, false},
		{"relay_event_0", "application/dtmf-relay", "Signal=0\r\n", '0', 0, false},
		{"relay_event_10_star", "application/dtmf-relay", "Signal=10\r\n", '*', 0, false},
		{"relay_event_15_D", "application/dtmf-relay", "Signal=15\r\n", 'D', 0, false},
		{"relay_event_16_flash", "application/dtmf-relay", "Signal=16\r\n", 0, 0, true},
		{"relay_empty_signal", "application/dtmf-relay", "Signal=\r\nDuration=100", 0, 0, true},
		{"dtmf_one_char_crlf", "application/dtmf", "#\r\n", '#', 0, false},
		{"dtmf_one_digit", "application/dtmf", "5", '5', 0, false},
		{"dtmf_relay_style_body", "application/dtmf", "Signal=3\r\nDuration=120\r\n", '3', 120 * time.Millisecond, false},
		{"dtmf_empty", "application/dtmf", "", 0, 0, true},
		{"dtmf_two_keys", "application/dtmf", "1#", 0, 0, true},
	}
	// Every key, in both packages.
	for _, k := range "0123456789*#ABCD" {
		tests = append(tests,
			struct {
				name, ct, body string
				key            dtmf.Key
				d              time.Duration
				err            bool
			}{"relay_key_" + string(k), "application/dtmf-relay", "Signal=" + string(k) + "\r\nDuration=100\r\n", dtmf.Key(k), 100 * time.Millisecond, false},
			struct {
				name, ct, body string
				key            dtmf.Key
				d              time.Duration
				err            bool
			}{"dtmf_key_" + string(k), "application/dtmf", string(k), dtmf.Key(k), 0, false})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, d, err := ParseInfo(tc.ct, []byte(tc.body))
			if (err != nil) != tc.err || k != tc.key || d != tc.d {
				t.Errorf("got %q %v %v", k, d, err)
			}
		})
	}
}

func FuzzParseInfo(f *testing.F) {
	f.Add("application/dtmf-relay", "Signal=#\r\nDuration=250")
	f.Add("application/dtmf", "5")
	f.Fuzz(func(t *testing.T, ct, body string) {
		k, d, err := ParseInfo(ct, []byte(body))
		if err == nil && (!k.Valid() || d < 0) {
			t.Fatalf("bad result %q %v", k, d)
		}
	})
}

func TestParseQ850(t *testing.T) {
	for in, want := range map[string]int{
		`Q.850;cause=16;text="Normal call clearing"`:    16,
		`SIP;cause=200;text="Call completed elsewhere"`: 0,
		`SIP;cause=487, Q.850 ; cause = 31`:             31,
		`Q.850;cause=abc`:                               0,
		`Q.850;cause=999`:                               0,
		``:                                              0,
	} {
		if got := ParseQ850(in); got != want {
			t.Errorf("ParseQ850(%q) = %d, want %d", in, got, want)
		}
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// TestDialTransports places a call over TCP and over TLS.
func TestDialTransports(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, network := range []string{"tcp", "tls"} {
		t.Run(network, func(t *testing.T) {
			ft := newFakeTrunkOn(t, network, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
			ua := newTestUA(t, ft, func(c *Config) {
				c.Transport = network
				if network == "tls" {
					c.TLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
				}
			})
			call, err := ua.Dial(context.Background(), "100", DialOptions{Offer: []byte(testSDP)})
			if err != nil {
				t.Fatal(err)
			}
			ft.mu.Lock()
			inv := ft.lastReq
			ft.mu.Unlock()
			if via := inv.Via(); !strings.EqualFold(via.Transport, network) {
				t.Errorf("Via transport %q", via.Transport)
			}
			ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
			if err := call.Hangup(context.Background()); err != nil {
				t.Fatal(err)
			}
			if ft.byes.Load() != 1 {
				t.Errorf("%d BYEs", ft.byes.Load())
			}
		})
	}
}

// TestPublicAddress: behind NAT, Contact and Via carry sip.public_address
// while requests still leave from the bound socket.
func TestPublicAddress(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, func(c *Config) { c.PublicAddress = "203.0.113.10:5099" })
	// The fake trunk answers to the Contact it got, which is not routable
	// here, so only the INVITE is checked: the call is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, _ = ua.Dial(ctx, "1000", DialOptions{Offer: []byte(testSDP)})
	ft.mu.Lock()
	inv := ft.lastReq
	ft.mu.Unlock()
	if inv == nil {
		t.Fatal("no INVITE")
	}
	if c := inv.Contact(); c.Address.Host != "203.0.113.10" || c.Address.Port != 5099 {
		t.Errorf("Contact %v", c)
	}
	if v := inv.Via(); v.Host != "203.0.113.10" || v.Port != 5099 {
		t.Errorf("Via %v", v)
	}
	if src := inv.Source(); src != ua.Addr().String() {
		t.Errorf("sent from %s, want the bound socket %s", src, ua.Addr())
	}
}

// TestDialAnswerInEarlySDP: a 200 without SDP after a 183 with SDP takes
// the 183's SDP as the answer.
func TestDialAnswerInEarlySDP(t *testing.T) {
	early := make(chan struct{})
	ft := newFakeTrunk(t, waitProgress(early))
	ua := newTestUA(t, ft, nil)
	var got []byte
	call, err := ua.Dial(context.Background(), "1003", DialOptions{Offer: []byte(testSDP), OnProgress: progressOnce(early, nil),
		Media: funcMedia{start: func(b []byte) error { got = b; return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	if string(call.Answer) != testSDP || string(got) != testSDP {
		t.Errorf("answer %q, StartAnswer saw %q", call.Answer, got)
	}
	ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
	_ = call.Hangup(context.Background())
}

// TestOutboundProxy: with sip.trunk.outbound_proxy the INVITE goes to the
// proxy with a loose Route to it, and the Request-URI names the trunk.
func TestOutboundProxy(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, func(c *Config) {
		c.Trunk.Address = "pbx.example.invalid:5080"
		c.Trunk.OutboundProxy = ft.addr
	})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, _ = ua.Dial(ctx, "1000", DialOptions{Offer: []byte(testSDP)})
	ft.mu.Lock()
	inv := ft.lastReq
	ft.mu.Unlock()
	if inv == nil {
		t.Fatal("no INVITE reached the proxy")
	}
	if inv.Recipient.Host != "pbx.example.invalid" || inv.Recipient.Port != 5080 {
		t.Errorf("Request-URI %v", inv.Recipient)
	}
	if r := inv.GetHeader("Route"); r == nil || !strings.Contains(r.Value(), ft.addr) || !strings.Contains(r.Value(), ";lr") {
		t.Errorf("Route %v", r)
	}
}

// TestDebugLogMasksNumbers: SIP messages are logged at debug level with
// the phone number masked.
func TestDebugLogMasksNumbers(t *testing.T) {
	ft := newFakeTrunk(t)
	var buf syncBuffer
	ua := newTestUA(t, ft, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	_, _ = ua.Dial(context.Background(), "486", DialOptions{Offer: []byte(testSDP)})
	call, err := ua.Dial(context.Background(), "+447700900123", DialOptions{Offer: []byte(testSDP)})
	if err != nil {
		t.Fatal(err)
	}
	ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
	_ = call.Hangup(context.Background())
	out := buf.String()
	if !strings.Contains(out, "INVITE sip:+4477*****123@") {
		t.Errorf("no masked INVITE in the debug log:\n%s", out)
	}
	if strings.Contains(out, "7700900123") {
		t.Error("the number appears unmasked in the debug log")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAttackHandlerPanic: a request whose handling panics (here the call's
// Media's Info, after the INFO's 200) ends neither the process nor the
// call: it is still up, and our Hangup still sends its BYE. Before, sipgo's handler
// goroutine had no recover and the panic ended the process, leaving every
// call's far end up without a BYE.
func TestAttackHandlerPanic(t *testing.T) {
	ft := newFakeTrunk(t)
	ua := newTestUA(t, ft, nil)
	call, err := ua.Dial(context.Background(), "100", DialOptions{
		Offer: []byte(testSDP),
		Media: funcMedia{info: func(dtmf.Key, time.Duration) { panic("a bug in a hook") }},
	})
	if err != nil {
		t.Fatal(err)
	}
	ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
	s := ft.sessionByID(call.CallID())
	ctx := context.Background()
	info := sip.NewRequest(sip.INFO, s.InviteRequest.Contact().Address)
	info.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	info.SetBody([]byte("Signal=#\r\n"))
	if _, err := s.Do(ctx, info); err != nil {
		t.Fatalf("INFO whose handler panics: %v", err)
	}
	select {
	case <-call.Done():
		t.Fatal("the call ended on the handler's panic")
	default:
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("Hangup after the panic: %v", err)
	}
	select {
	case <-s.Context().Done():
	case <-time.After(3 * time.Second):
		t.Fatal("timed out waiting for our BYE")
	}
}
