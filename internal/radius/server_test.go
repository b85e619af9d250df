package radius

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/vendors/microsoft"

	"github.com/hashcall/hashcall/internal/directory"
	"github.com/hashcall/hashcall/internal/service"
	"github.com/hashcall/hashcall/internal/testwait"
	"github.com/hashcall/hashcall/verify"
)

// Fast unit tests of the front against an in-process upstream (layeh's
// PacketServer) and an in-process verifier. The interop package runs the
// same paths against FreeRADIUS, radclient, eapol_test and a real call.

var (
	nasSecret      = []byte("nas-secret-0123456789")
	upstreamSecret = []byte("upstream-secret-0123456789")
	mppeKey        = bytes.Repeat([]byte{0x5a}, 32)
)

// fakeUpstream accepts user "alice" with password "right" (and "bob",
// "nobody"), challenges user "eap" once, rejects everything else.
func fakeUpstream(t testing.TB) (addr string, requests *atomic.Int64, stop func()) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	requests = &atomic.Int64{}
	srv := &radius.PacketServer{
		SecretSource: radius.StaticSecretSource(upstreamSecret),
		Handler: radius.HandlerFunc(func(w radius.ResponseWriter, r *radius.Request) {
			requests.Add(1)
			user := rfc2865.UserName_GetString(r.Packet)
			if forms := directory.NormaliseUser(user); len(forms) > 0 {
				user = forms[len(forms)-1] // CORP\alice and alice@example.org are alice
			}
			pass := rfc2865.UserPassword_GetString(r.Packet)
			var resp *radius.Packet
			switch {
			case r.Code == radius.CodeStatusServer:
				resp = r.Response(radius.CodeAccessAccept)
			case user == "eap" && rfc2865.State_Get(r.Packet) == nil:
				resp = r.Response(radius.CodeAccessChallenge)
				_ = rfc2865.State_Set(resp, []byte("round-1"))
			case user == "eap":
				resp = r.Response(radius.CodeAccessAccept)
			case (user == "alice" || user == "bob" || user == "nobody") && pass == "right":
				resp = r.Response(radius.CodeAccessAccept)
				_ = rfc2865.Class_Set(resp, []byte("upstream-class"))
				_ = rfc2865.SessionTimeout_Set(resp, 3600)
				if err := microsoft.MSMPPESendKey_Add(resp, mppeKey); err != nil {
					t.Error(err)
				}
			default:
				resp = r.Response(radius.CodeAccessReject)
			}
			// RFC 2865 §5.33: Proxy-States come back in order.
			for _, a := range r.Attributes {
				if a.Type == rfc2865.ProxyState_Type {
					resp.Attributes.Add(a.Type, a.Attribute)
				}
			}
			_ = w.Write(resp)
		}),
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(conn) }()
	return conn.LocalAddr().String(), requests, func() {
		_ = srv.Shutdown(context.Background())
		<-done
	}
}

// fakeVerifier completes each verification with outcome once release is
// closed (or at once when it is nil).
type fakeVerifier struct {
	created chan struct{} // closed by the first Create, when not nil
	each    chan struct{} // sent to (without blocking) by every Create, when not nil
	outcome verify.Outcome
	release chan struct{}
	creates atomic.Int64
	refuse  error

	mu  sync.Mutex
	tos []string
}

func (f *fakeVerifier) Create(_ context.Context, scope, _ string, req service.CreateRequest) (service.Verification, error) {
	if scope != Scope {
		return service.Verification{}, errors.New("wrong scope " + scope)
	}
	if f.refuse != nil {
		return service.Verification{}, f.refuse
	}
	if f.creates.Add(1) == 1 && f.created != nil {
		close(f.created)
	}
	f.mu.Lock()
	f.tos = append(f.tos, req.To)
	f.mu.Unlock()
	if f.each != nil {
		select {
		case f.each <- struct{}{}:
		default:
		}
	}
	return service.Verification{ID: "vrf_1", Status: service.StatusCalling}, nil
}

func (f *fakeVerifier) Wait(ctx context.Context, _, id string, _ time.Duration) (service.Verification, error) {
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return service.Verification{}, ctx.Err()
		}
	}
	return service.Verification{ID: id, Status: service.StatusCompleted, Result: &verify.Result{Outcome: f.outcome}}, nil
}

func (f *fakeVerifier) Cancel(context.Context, string, string) (service.Verification, bool, error) {
	return service.Verification{}, true, nil
}

type mapDir map[string]string

func (m mapDir) Lookup(_ context.Context, key string) (directory.Entry, error) {
	for _, k := range directory.NormaliseUser(key) {
		if n, ok := m[k]; ok {
			return directory.Entry{User: k, Number: n}, nil
		}
	}
	return directory.Entry{}, directory.ErrNotFound
}

var testDir = mapDir{"alice": "+447700900001", "bob": "+447700900002", "eap": "+447700900003"}

type front struct {
	*Server
	reg *prometheus.Registry
}

func startFront(t testing.TB, v service.Verifications, upstream string, edit func(*Options)) front {
	t.Helper()
	reg := prometheus.NewRegistry()
	o := Options{
		Listen:                      "127.0.0.1:0",
		Clients:                     []Client{{Name: "lab", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: nasSecret}},
		Upstreams:                   []Upstream{{Addr: upstream, Secret: upstreamSecret}},
		Timeout:                     2 * time.Second,
		Tries:                       1,
		RequireMessageAuthenticator: true,
		Directory:                   testDir,
		Registerer:                  reg,
	}
	if edit != nil {
		edit(&o)
	}
	s, err := Listen(o, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return front{s, reg}
}

// nas is a test NAS: it builds requests with an independently computed
// Message-Authenticator and checks answers with layeh's own checks.
type nas struct {
	t    testing.TB
	conn *net.UDPConn
}

func newNAS(t testing.TB, to net.Addr, local string) *nas {
	t.Helper()
	la, _ := net.ResolveUDPAddr("udp", local)
	c, err := net.DialUDP("udp", la, to.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &nas{t: t, conn: c}
}

// request encodes an Access-Request for user/pass; withMA adds a
// Message-Authenticator (RFC 3579 §3.2) computed here.
func request(t testing.TB, id byte, user, pass string, withMA bool, extra ...*radius.AVP) []byte {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, nasSecret)
	p.Identifier = id
	if withMA {
		p.Attributes.Add(typeMessageAuthenticator, make(radius.Attribute, 16))
	}
	_ = rfc2865.UserName_SetString(p, user)
	if pass != "" {
		_ = rfc2865.UserPassword_SetString(p, pass)
	}
	_ = rfc2865.NASIdentifier_SetString(p, "test-nas")
	p.Attributes = append(p.Attributes, extra...)
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if withMA {
		mac := hmac.New(md5.New, nasSecret)
		mac.Write(b)
		copy(b[22:38], mac.Sum(nil)) // the first attribute's value
	}
	return b
}

// exchange sends b and returns the verified answer.
func (n *nas) exchange(b []byte) *radius.Packet {
	n.t.Helper()
	if _, err := n.conn.Write(b); err != nil {
		n.t.Fatal(err)
	}
	return n.read(b)
}

func (n *nas) read(req []byte) *radius.Packet {
	n.t.Helper()
	buf := make([]byte, 4096)
	_ = n.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, err := n.conn.Read(buf)
	if err != nil {
		n.t.Fatal(err)
	}
	if !radius.IsAuthenticResponse(buf[:k], req, nasSecret) {
		n.t.Fatal("answer's Response Authenticator is wrong")
	}
	var ra [16]byte
	copy(ra[:], req[4:20])
	if err := checkMessageAuth(buf[:k], &ra, nasSecret); err != nil {
		n.t.Fatalf("answer's Message-Authenticator: %v", err)
	}
	p, err := radius.Parse(buf[:k], nasSecret)
	if err != nil {
		n.t.Fatal(err)
	}
	if p.Identifier != req[1] {
		n.t.Fatalf("answer Identifier %d, want %d", p.Identifier, req[1])
	}
	return p
}

func TestProxy(t *testing.T) {
	up, _, stop := fakeUpstream(t)
	defer stop()
	for _, tc := range []struct {
		name, user, pass string
		outcome          verify.Outcome
		wantCode         radius.Code
		wantReply        string
		wantCalls        int64
	}{
		{"verified", "alice", "right", verify.Verified, radius.CodeAccessAccept, "", 1},
		{"verified_upn", "Alice@Example.org", "right", verify.Verified, radius.CodeAccessAccept, "", 1},
		{"wrong_key", "alice", "right", verify.WrongKey, radius.CodeAccessReject, "hashcall: wrong_key", 1},
		{"no_answer", "alice", "right", verify.NoAnswer, radius.CodeAccessReject, "hashcall: no_answer", 1},
		{"wrong_password_no_call", "alice", "wrong", verify.Verified, radius.CodeAccessReject, "", 0},
		{"no_number", "nobody", "right", verify.Verified, radius.CodeAccessReject, "hashcall: no_number", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &fakeVerifier{outcome: tc.outcome}
			f := startFront(t, v, up, nil)
			n := newNAS(t, f.Addr(), "127.0.0.1:0")
			req := request(t, 7, tc.user, tc.pass, true, &radius.AVP{Type: typeProxyState, Attribute: []byte("nas-state")})
			r := n.exchange(req)
			if r.Code != tc.wantCode {
				t.Fatalf("code %v, want %v", r.Code, tc.wantCode)
			}
			if got := rfc2865.ReplyMessage_GetString(r); got != tc.wantReply {
				t.Errorf("Reply-Message %q, want %q", got, tc.wantReply)
			}
			if got := v.creates.Load(); got != tc.wantCalls {
				t.Errorf("calls %d, want %d", got, tc.wantCalls)
			}
			// Only the NAS's own Proxy-State comes back (ours is removed).
			var ps [][]byte
			for _, a := range r.Attributes {
				if a.Type == typeProxyState {
					ps = append(ps, a.Attribute)
				}
			}
			if len(ps) != 1 || string(ps[0]) != "nas-state" {
				t.Errorf("Proxy-States %q, want [nas-state]", ps)
			}
			if tc.wantCode == radius.CodeAccessAccept {
				if got := string(rfc2865.Class_Get(r)); got != "upstream-class" {
					t.Errorf("Class %q", got)
				}
				if got := rfc2865.SessionTimeout_Get(r); got != 3600 {
					t.Errorf("Session-Timeout %d", got)
				}
				// The key decrypts with the NAS's secret (RFC 2548 §2.4.2).
				var q radius.Packet
				copy(q.Authenticator[:], req[4:20])
				if got := microsoft.MSMPPESendKey_Get(r, &q); !bytes.Equal(got, mppeKey) {
					t.Errorf("MS-MPPE-Send-Key for the NAS = %x, want %x", got, mppeKey)
				}
				if got := testutil.ToFloat64(f.m.accepts); got != 1 {
					t.Errorf("accepts metric %v", got)
				}
			}
		})
	}
}

func TestChallengeRelayedWithState(t *testing.T) {
	up, _, stop := fakeUpstream(t)
	defer stop()
	v := &fakeVerifier{outcome: verify.Verified}
	f := startFront(t, v, up, nil)
	n := newNAS(t, f.Addr(), "127.0.0.1:0")
	r := n.exchange(request(t, 1, "eap", "", true))
	if r.Code != radius.CodeAccessChallenge || string(rfc2865.State_Get(r)) != "round-1" {
		t.Fatalf("first round: %v State %q", r.Code, rfc2865.State_Get(r))
	}
	if v.creates.Load() != 0 {
		t.Fatal("a call on a challenge")
	}
	r = n.exchange(request(t, 2, "eap", "", true, &radius.AVP{Type: rfc2865.State_Type, Attribute: []byte("round-1")}))
	if r.Code != radius.CodeAccessAccept || v.creates.Load() != 1 {
		t.Fatalf("second round: %v, %d calls", r.Code, v.creates.Load())
	}
}

// settle sends a Status-Server from n and waits for its answer: the front
// reads packets in order, so every packet sent before it has been handled.
func settle(t *testing.T, n *nas) {
	t.Helper()
	p := radius.New(radius.CodeStatusServer, nasSecret)
	p.Attributes.Add(typeMessageAuthenticator, make(radius.Attribute, 16))
	b, _ := p.MarshalBinary()
	mac := hmac.New(md5.New, nasSecret)
	mac.Write(b)
	copy(b[22:38], mac.Sum(nil))
	if r := n.exchange(b); r.Code != radius.CodeAccessAccept {
		t.Fatalf("Status-Server answered %v", r.Code)
	}
}

func TestDropped(t *testing.T) {
	up, upReqs, stop := fakeUpstream(t)
	defer stop()
	v := &fakeVerifier{outcome: verify.Verified}
	f := startFront(t, v, up, nil)
	n := newNAS(t, f.Addr(), "127.0.0.1:0")
	stranger := newNAS(t, f.Addr(), "127.0.0.2:0")

	noMA := request(t, 1, "alice", "right", false)
	badMA := request(t, 2, "alice", "right", true)
	badMA[len(badMA)-1] ^= 1 // the packet changed after signing
	if _, err := n.conn.Write(noMA); err != nil {
		t.Fatal(err)
	}
	if _, err := n.conn.Write(badMA); err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.conn.Write(request(t, 3, "alice", "right", true)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.conn.Write([]byte{1, 2, 0, 30}); err != nil { // shorter than its length
		t.Fatal(err)
	}
	settle(t, n) // the first answer n reads is the Status-Server's: nothing came for the others
	for reason, want := range map[string]float64{DropNoMessageAuth: 1, DropBadMessageAuth: 1, DropUnknownClient: 1, DropMalformed: 1} {
		if got := testutil.ToFloat64(f.m.dropped.WithLabelValues(reason)); got != want {
			t.Errorf("dropped{%s} = %v, want %v", reason, got, want)
		}
	}
	if upReqs.Load() != 0 || v.creates.Load() != 0 {
		t.Errorf("dropped requests reached the upstream (%d) or placed calls (%d)", upReqs.Load(), v.creates.Load())
	}
}

func TestWithoutRequiredMessageAuthenticator(t *testing.T) {
	up, _, stop := fakeUpstream(t)
	defer stop()
	v := &fakeVerifier{outcome: verify.Verified}
	f := startFront(t, v, up, func(o *Options) { o.RequireMessageAuthenticator = false })
	n := newNAS(t, f.Addr(), "127.0.0.1:0")
	if r := n.exchange(request(t, 1, "alice", "right", false)); r.Code != radius.CodeAccessAccept {
		t.Fatalf("code %v", r.Code)
	}
}

func TestRetransmissionOneCallSameAnswer(t *testing.T) {
	up, upReqs, stop := fakeUpstream(t)
	defer stop()
	v := &fakeVerifier{outcome: verify.Verified, release: make(chan struct{})}
	f := startFront(t, v, up, nil)
	n := newNAS(t, f.Addr(), "127.0.0.1:0")
	req := request(t, 9, "alice", "right", true)
	for range 3 { // the NAS retransmits while the call runs
		if _, err := n.conn.Write(req); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, n)
	close(v.release)
	first := n.read(req)
	again := n.exchange(req) // from the cache
	a, _ := first.Encode()
	b, _ := again.Encode()
	if first.Code != radius.CodeAccessAccept || !bytes.Equal(a, b) {
		t.Errorf("retransmission answered %v, first %v (same bytes: %v)", again.Code, first.Code, bytes.Equal(a, b))
	}
	if v.creates.Load() != 1 || upReqs.Load() != 1 {
		t.Errorf("calls %d, upstream requests %d; want 1 and 1", v.creates.Load(), upReqs.Load())
	}
	if got := testutil.ToFloat64(f.m.dropped.WithLabelValues(DropRetransmit)); got != 2 {
		t.Errorf("retransmissions dropped while running: %v, want 2", got)
	}
}

func TestSecondRequestJoinsRunningCall(t *testing.T) {
	up, _, stop := fakeUpstream(t)
	defer stop()
	v := &fakeVerifier{outcome: verify.Verified, release: make(chan struct{}), created: make(chan struct{})}
	f := startFront(t, v, up, nil)
	n1 := newNAS(t, f.Addr(), "127.0.0.1:0")
	n2 := newNAS(t, f.Addr(), "127.0.0.1:0")
	r1 := request(t, 1, "alice", "right", true)
	r2 := request(t, 2, "Alice@Example.org" /* another form of the same user */, "right", true)
	joined := make(chan struct{})
	f.mu.Lock()
	f.joined = func() { close(joined) }
	f.mu.Unlock()
	if _, err := n1.conn.Write(r1); err != nil {
		t.Fatal(err)
	}
	<-v.created // the first request's call is running
	if _, err := n2.conn.Write(r2); err != nil {
		t.Fatal(err)
	}
	<-joined
	close(v.release)
	if a, b := n1.read(r1), n2.read(r2); a.Code != radius.CodeAccessAccept || b.Code != radius.CodeAccessAccept {
		t.Fatalf("answers %v and %v", a.Code, b.Code)
	}
	if v.creates.Load() != 1 {
		t.Errorf("calls %d, want 1", v.creates.Load())
	}
}

// TestAttackJoinFromAnotherStation: an attacker who has alice's password
// (what the call is there to stop) signs in as her from another device
// while her own sign-in's call is running. Joining on the number alone
// handed the attacker's request the Accept of alice's own #: one press
// approved two sign-ins, and the callee was asked about one. A request
// from another calling station (or none, when hers named one) must get a
// call of its own, never the running one's answer.
func TestAttackJoinFromAnotherStation(t *testing.T) {
	station := func(s string) *radius.AVP {
		return &radius.AVP{Type: rfc2865.CallingStationID_Type, Attribute: radius.Attribute(s)}
	}
	for _, c := range []struct {
		name  string
		extra []*radius.AVP // the attacker's request's, besides the user
	}{
		{"another calling station", []*radius.AVP{station("203.0.113.66")}},
		{"no calling station", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			up, _, stop := fakeUpstream(t)
			defer stop()
			v := &fakeVerifier{outcome: verify.Verified, release: make(chan struct{}), created: make(chan struct{}), each: make(chan struct{}, 2)}
			f := startFront(t, v, up, nil)
			alice := newNAS(t, f.Addr(), "127.0.0.1:0")
			attacker := newNAS(t, f.Addr(), "127.0.0.1:0")
			r1 := request(t, 1, "alice", "right", true, station("198.51.100.7"))
			r2 := request(t, 2, "alice", "right", true, c.extra...)
			if _, err := alice.conn.Write(r1); err != nil {
				t.Fatal(err)
			}
			<-v.created // alice's call is running
			if _, err := attacker.conn.Write(r2); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				select {
				case <-v.each:
				case <-time.After(5 * time.Second):
					t.Fatalf("%d calls placed, want 2: the attacker's request joined alice's call", v.creates.Load())
				}
			}
			close(v.release)
			alice.read(r1)
			attacker.read(r2)
			if got := testutil.ToFloat64(f.m.joined); got != 0 {
				t.Errorf("%v requests joined alice's call, want 0", got)
			}
		})
	}
}

func TestClientLimit(t *testing.T) {
	up, _, stop := fakeUpstream(t)
	defer stop()
	v := &fakeVerifier{outcome: verify.Verified}
	f := startFront(t, v, up, func(o *Options) { o.ClientLimit.N, o.ClientLimit.Per = 1, time.Hour })
	n := newNAS(t, f.Addr(), "127.0.0.1:0")
	if r := n.exchange(request(t, 1, "alice", "right", true)); r.Code != radius.CodeAccessAccept {
		t.Fatalf("first: %v", r.Code)
	}
	r := n.exchange(request(t, 2, "bob", "right", true))
	if r.Code != radius.CodeAccessReject || rfc2865.ReplyMessage_GetString(r) != "hashcall: "+ReasonClientLimit {
		t.Fatalf("second: %v %q", r.Code, rfc2865.ReplyMessage_GetString(r))
	}
	if v.creates.Load() != 1 {
		t.Errorf("calls %d", v.creates.Load())
	}
}

func TestRefusedByService(t *testing.T) {
	up, _, stop := fakeUpstream(t)
	defer stop()
	v := &fakeVerifier{refuse: &service.Error{Status: 429, Code: "rate_limited", Rule: "per_number_limit"}}
	f := startFront(t, v, up, nil)
	n := newNAS(t, f.Addr(), "127.0.0.1:0")
	r := n.exchange(request(t, 1, "alice", "right", true))
	if r.Code != radius.CodeAccessReject || rfc2865.ReplyMessage_GetString(r) != "hashcall: "+ReasonRefused {
		t.Fatalf("%v %q", r.Code, rfc2865.ReplyMessage_GetString(r))
	}
}

func TestUpstreamDown(t *testing.T) {
	// A bound socket that never answers.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	v := &fakeVerifier{outcome: verify.Verified}
	f := startFront(t, v, dead.LocalAddr().String(), func(o *Options) { o.Timeout = 100 * time.Millisecond })
	n := newNAS(t, f.Addr(), "127.0.0.1:0")
	r := n.exchange(request(t, 1, "alice", "right", true))
	if r.Code != radius.CodeAccessReject || rfc2865.ReplyMessage_GetString(r) != "hashcall: "+ReasonUpstreamDown {
		t.Fatalf("%v %q", r.Code, rfc2865.ReplyMessage_GetString(r))
	}
	if f.Ready() || v.creates.Load() != 0 {
		t.Errorf("ready %v, calls %d", f.Ready(), v.creates.Load())
	}
}

func TestFailover(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	up, _, stop := fakeUpstream(t)
	defer stop()
	v := &fakeVerifier{outcome: verify.Verified}
	f := startFront(t, v, up, func(o *Options) {
		o.Timeout = 100 * time.Millisecond
		o.Upstreams = []Upstream{{Addr: dead.LocalAddr().String(), Secret: upstreamSecret}, {Addr: up, Secret: upstreamSecret}}
	})
	n := newNAS(t, f.Addr(), "127.0.0.1:0")
	if r := n.exchange(request(t, 1, "alice", "right", true)); r.Code != radius.CodeAccessAccept {
		t.Fatalf("%v", r.Code)
	}
	if !f.Ready() {
		t.Error("not ready with the second server up")
	}
}

func TestStatusServerProbe(t *testing.T) {
	up, _, stop := fakeUpstream(t)
	v := &fakeVerifier{outcome: verify.Verified}
	logs := &testwait.Output{}
	f := startFront(t, v, up, func(o *Options) {
		o.StatusInterval = 20 * time.Millisecond
		o.Timeout = 50 * time.Millisecond
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	// The prober logs each change of the upstream's state once it made it.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := logs.WaitContains(ctx, "up=true"); err != nil {
		t.Fatalf("the probe never found the upstream up: %v\n%s", err, logs)
	}
	if !f.Ready() {
		t.Fatal("not ready with the upstream up")
	}
	stop()
	if err := logs.WaitContains(ctx, "up=false"); err != nil {
		t.Fatalf("the probe never found the upstream down: %v\n%s", err, logs)
	}
	if f.Ready() {
		t.Fatal("ready with the upstream down")
	}
}

func TestMaskUser(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.org": "a****@example.org",
		`CORP\alice`:        `CORP\a****`,
		"bob":               "b****",
		"":                  "",
	} {
		if got := maskUser(in); got != want {
			t.Errorf("maskUser(%q) = %q, want %q", in, got, want)
		}
	}
}

// forger answers every request at once with an Access-Accept that is wrong
// in one way.
func forger(t *testing.T, mutate func(resp []byte, req []byte)) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			req, err := radius.Parse(buf[:n], upstreamSecret)
			if err != nil {
				continue
			}
			resp := req.Response(radius.CodeAccessAccept)
			for _, a := range req.Attributes {
				if a.Type == typeProxyState {
					resp.Attributes.Add(a.Type, a.Attribute)
				}
			}
			b, err := encode(resp, true)
			if err != nil {
				continue
			}
			mutate(b, buf[:n])
			_, _ = conn.WriteTo(b, from)
		}
	}()
	return conn.LocalAddr().String()
}

func TestForgedUpstreamAnswersDropped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(resp, req []byte)
	}{
		// A byte changed after signing: the Response Authenticator no
		// longer matches (RFC 2865 §3).
		{"response_authenticator", func(resp, _ []byte) { resp[len(resp)-1] ^= 1 }},
		// Signed as an answer to another request.
		{"other_request", func(resp, _ []byte) { resp[4] ^= 1 }},
		// Message-Authenticator wrong but Response Authenticator right.
		{"message_authenticator", func(resp, req []byte) {
			resp[22] ^= 1
			h := md5.New()
			h.Write(resp[:4])
			h.Write(req[4:20])
			h.Write(resp[20:])
			h.Write(upstreamSecret)
			copy(resp[4:20], h.Sum(nil))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &fakeVerifier{outcome: verify.Verified}
			f := startFront(t, v, forger(t, tc.mutate), func(o *Options) { o.Timeout = 200 * time.Millisecond })
			n := newNAS(t, f.Addr(), "127.0.0.1:0")
			r := n.exchange(request(t, 1, "alice", "right", true))
			if r.Code != radius.CodeAccessReject || rfc2865.ReplyMessage_GetString(r) != "hashcall: "+ReasonUpstreamDown {
				t.Fatalf("a forged Accept gave %v %q", r.Code, rfc2865.ReplyMessage_GetString(r))
			}
			if v.creates.Load() != 0 {
				t.Error("a forged Accept placed a call")
			}
			if got := testutil.ToFloat64(f.m.upstreamFailures.WithLabelValues(f.pool.servers[0].addr, "bad_authenticator")); got != 1 {
				t.Errorf("bad_authenticator failures %v, want 1", got)
			}
		})
	}
}

func TestAnswerCacheExpires(t *testing.T) {
	up, upReqs, stop := fakeUpstream(t)
	defer stop()
	var mu sync.Mutex
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	v := &fakeVerifier{outcome: verify.Verified}
	f := startFront(t, v, up, func(o *Options) { o.Now = clock; o.AnswerCache = 30 * time.Second })
	n := newNAS(t, f.Addr(), "127.0.0.1:0")
	req := request(t, 3, "alice", "right", true)
	for _, tc := range []struct {
		name      string
		advance   time.Duration
		wantCalls int64
	}{
		{"first", 0, 1},
		{"retransmitted_within_30s", 29 * time.Second, 1},
		{"after_30s_a_new_request", 2 * time.Second, 2},
	} {
		advance(tc.advance)
		if r := n.exchange(req); r.Code != radius.CodeAccessAccept {
			t.Fatalf("%s: %v", tc.name, r.Code)
		}
		if got := v.creates.Load(); got != tc.wantCalls {
			t.Errorf("%s: %d calls, want %d", tc.name, got, tc.wantCalls)
		}
	}
	if upReqs.Load() != 2 {
		t.Errorf("upstream requests %d, want 2", upReqs.Load())
	}
}
