package radius

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/hashcall/hashcall/internal/directory"
	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/internal/service"
	"github.com/hashcall/hashcall/verify"
)

// Scope is the caller scope the front creates verifications under.
const Scope = "radius"

// Client is a NAS allowed to send requests: any source address in Prefix,
// with its shared secret.
type Client struct {
	Name   string
	Prefix netip.Prefix
	Secret []byte
}

// Options configure the front.
type Options struct {
	// Listen is the UDP HOST:PORT to bind (radius.listen).
	Listen string
	// Clients are the NASes allowed to ask (radius.clients).
	Clients []Client
	// Upstreams are the RADIUS servers that check passwords, in order of
	// preference (radius.upstream.servers).
	Upstreams []Upstream
	// Timeout is how long one try to an upstream waits; default 3 s.
	Timeout time.Duration
	// Tries is how many times a request is sent to one upstream before
	// the next is tried; default 2.
	Tries int
	// StatusInterval is the period of Status-Server probes (RFC 5997); 0
	// turns them off, and a server then counts as up until an exchange
	// with it fails.
	StatusInterval time.Duration
	// RequireMessageAuthenticator drops Access-Requests without a valid
	// Message-Authenticator (RFC 3579 §3.2); Status-Server always needs one.
	RequireMessageAuthenticator bool
	// UpstreamRequireMessageAuthenticator refuses upstream responses
	// without one (BlastRADIUS); with it off, one that is present is still
	// checked, and responses to EAP always need one (RFC 3579 §3.2).
	UpstreamRequireMessageAuthenticator bool
	// AnswerCache is how long an answer is kept for retransmissions;
	// default 30 s.
	AnswerCache time.Duration
	// CallTimeout bounds the wait for a call's outcome; default 50 s (the
	// NAS's timeout should be 60 s or more).
	CallTimeout time.Duration
	// ClientLimit caps the calls placed for one client; zero: no cap.
	ClientLimit policy.Rate
	// Directory finds users' numbers.
	Directory directory.Directory
	// Locale of the prompts; "" is the service's default.
	Locale     string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock of the answer cache; default time.Now.
	Now func() time.Time
}

// Server is a running RADIUS front.
type Server struct {
	opts    Options
	v       service.Verifications
	conn    *net.UDPConn
	pool    *pool
	m       *metrics
	log     *slog.Logger
	limiter *policy.Limiter

	mu    sync.Mutex
	txns  map[txnKey]*txn
	calls map[string]*call

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// joined, when set (by tests), is called when a request joins a call.
	joined func()
}

// txnKey identifies a request for retransmission detection: RFC 2865 §3
// (Identifier) and RFC 5080 §2.2.2 (source, Identifier and Request
// Authenticator).
type txnKey struct {
	src  netip.AddrPort
	id   byte
	auth [16]byte
}

type txn struct {
	resp    []byte // nil while the request is being handled
	expires time.Time
}

// call is a verification running for one user, which later requests for
// the same user join.
type call struct {
	done   chan struct{}
	reason string // "" when verified
	id     string
}

// Listen binds opts.Listen and serves until Close.
func Listen(opts Options, v service.Verifications) (*Server, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second
	}
	if opts.Tries <= 0 {
		opts.Tries = 2
	}
	if opts.AnswerCache <= 0 {
		opts.AnswerCache = 30 * time.Second
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 50 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Directory == nil {
		return nil, errors.New("radius: no directory to find users' numbers in")
	}
	if len(opts.Upstreams) == 0 {
		return nil, errors.New("radius: no upstream servers")
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("component", "radius")
	pl := &pool{timeout: opts.Timeout, tries: opts.Tries}
	closeAll := func() {
		for _, u := range pl.servers {
			u.conn.Close()
		}
	}
	for _, up := range opts.Upstreams {
		u, err := dialUpstream(up, log, m, opts.UpstreamRequireMessageAuthenticator)
		if err != nil {
			closeAll()
			return nil, err
		}
		if opts.StatusInterval <= 0 {
			u.up.Store(true)
			m.upstreamUp.WithLabelValues(u.addr).Set(1)
		} else {
			m.upstreamUp.WithLabelValues(u.addr).Set(0)
		}
		pl.servers = append(pl.servers, u)
	}
	la, err := net.ResolveUDPAddr("udp", opts.Listen)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("radius.listen %s: %w", opts.Listen, err)
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("radius.listen %s: %w", opts.Listen, err)
	}
	s := &Server{
		opts: opts, v: v, conn: conn, pool: pl, m: m, log: log,
		limiter: policy.NewLimiter(policy.Rules{PerNumber: opts.ClientLimit}, opts.Now),
		txns:    map[txnKey]*txn{}, calls: map[string]*call{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, u := range pl.servers {
		s.wg.Go(u.read)
	}
	if opts.StatusInterval > 0 {
		s.wg.Go(s.probe)
	}
	s.wg.Go(s.serve)
	s.wg.Go(s.purge)
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Ready reports whether an upstream server answered its last exchange or
// Status-Server.
func (s *Server) Ready() bool { return s.pool.ready() }

// Close stops serving and waits for the requests being handled; their calls
// are cancelled.
func (s *Server) Close() error {
	s.cancel()
	err := s.conn.Close()
	for _, u := range s.pool.servers {
		u.conn.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) probe() {
	t := time.NewTicker(s.opts.StatusInterval)
	defer t.Stop()
	for {
		for _, u := range s.pool.servers {
			if !u.status(s.ctx, s.opts.Timeout) {
				u.setUp(false)
			}
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) purge() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		now := s.opts.Now()
		s.mu.Lock()
		for k, x := range s.txns {
			if x.resp != nil && now.After(x.expires) {
				delete(s.txns, k)
			}
		}
		s.mu.Unlock()
	}
}

// client returns the client that src belongs to: the longest prefix.
func (s *Server) client(src netip.Addr) *Client {
	var best *Client
	for i := range s.opts.Clients {
		c := &s.opts.Clients[i]
		if c.Prefix.Contains(src.Unmap()) && (best == nil || c.Prefix.Bits() > best.Prefix.Bits()) {
			best = c
		}
	}
	return best
}

func (s *Server) serve() {
	buf := make([]byte, radius.MaxPacketLength+1)
	for {
		n, src, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.packet(buf[:n], src)
	}
}

// packet checks one datagram and starts handling it, or answers a
// retransmission from the cache, or drops it.
func (s *Server) packet(b []byte, src netip.AddrPort) {
	c := s.client(src.Addr())
	if c == nil {
		s.m.dropped.WithLabelValues(DropUnknownClient).Inc()
		s.log.Debug("radius: packet from an unknown source dropped", "src", src.String())
		return
	}
	p, err := parse(b)
	if err != nil {
		s.m.dropped.WithLabelValues(DropMalformed).Inc()
		return
	}
	b = b[:binary.BigEndian.Uint16(b[2:4])] // parse checked it
	if p.Code != radius.CodeAccessRequest && p.Code != radius.CodeStatusServer {
		s.m.dropped.WithLabelValues(DropCode).Inc()
		return
	}
	switch err := checkMessageAuth(b, nil, c.Secret); {
	case err == nil:
	case errors.Is(err, ErrNoMessageAuth) && !s.opts.RequireMessageAuthenticator && p.Code == radius.CodeAccessRequest:
	case errors.Is(err, ErrNoMessageAuth):
		s.m.dropped.WithLabelValues(DropNoMessageAuth).Inc()
		s.log.Warn("radius: Access-Request without Message-Authenticator dropped", "client", c.Name, "src", src.String())
		return
	default:
		s.m.dropped.WithLabelValues(DropBadMessageAuth).Inc()
		s.log.Warn("radius: request with a wrong Message-Authenticator dropped (wrong secret?)", "client", c.Name, "src", src.String())
		return
	}
	p.Secret = c.Secret
	if p.Code == radius.CodeStatusServer {
		// RFC 5997 §3: answer with Access-Accept.
		s.m.requests.WithLabelValues("status_server").Inc()
		r := &radius.Packet{Code: radius.CodeAccessAccept, Identifier: p.Identifier, Authenticator: p.Authenticator, Secret: c.Secret}
		if out, err := encode(r, true); err == nil {
			_, _ = s.conn.WriteToUDPAddrPort(out, src)
		}
		return
	}
	key := txnKey{src: src, id: p.Identifier, auth: p.Authenticator}
	s.mu.Lock()
	if x, ok := s.txns[key]; ok && (x.resp == nil || !s.opts.Now().After(x.expires)) {
		resp := x.resp
		s.mu.Unlock()
		if resp == nil {
			s.m.dropped.WithLabelValues(DropRetransmit).Inc()
			return
		}
		s.m.cached.Inc()
		_, _ = s.conn.WriteToUDPAddrPort(resp, src)
		return
	}
	x := &txn{}
	s.txns[key] = x
	s.mu.Unlock()
	s.m.requests.WithLabelValues("access_request").Inc()
	s.wg.Go(func() {
		r := s.answer(s.ctx, p, c)
		if r == nil || s.ctx.Err() != nil {
			s.mu.Lock()
			delete(s.txns, key)
			s.mu.Unlock()
			return
		}
		out, err := encode(r, true)
		if err != nil {
			s.log.Error("radius: encoding the answer", "err", err)
			out, _ = encode(s.reject(p, c, ReasonBadUpstream), true)
		}
		s.mu.Lock()
		x.resp, x.expires = out, s.opts.Now().Add(s.opts.AnswerCache)
		s.mu.Unlock()
		if out != nil {
			_, _ = s.conn.WriteToUDPAddrPort(out, src)
		}
	})
}

// answer forwards the request and decides the answer.
func (s *Server) answer(ctx context.Context, p *radius.Packet, c *Client) *radius.Packet {
	user := rfc2865.UserName_GetString(p)
	nas := nasID(p, c)
	fwd := &radius.Packet{Code: radius.CodeAccessRequest, Authenticator: p.Authenticator}
	for _, a := range p.Attributes {
		if a.Type != typeMessageAuthenticator {
			fwd.Attributes = append(fwd.Attributes, &radius.AVP{Type: a.Type, Attribute: a.Attribute})
		}
	}
	// RFC 2865 §5.33: a proxy appends its own Proxy-State and removes it
	// from the answer; the NAS's own Proxy-States come back untouched.
	var ps [12]byte
	_, _ = rand.Read(ps[:])
	fwd.Attributes.Add(typeProxyState, ps[:])
	raw, u, err := s.pool.exchange(ctx, fwd, c.Secret)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("radius: upstream exchange failed", "client", c.Name, "err", err)
		return s.decide(p, c, nas, user, ReasonUpstreamDown, "")
	}
	up, err := parse(raw)
	if err == nil {
		err = stripProxyState(up, ps[:])
	}
	if err == nil {
		err = reencryptKeys(up.Attributes, u.secret, p.Authenticator, c.Secret, p.Authenticator)
	}
	if err != nil {
		s.log.Warn("radius: upstream answer not relayed", "upstream", u.addr, "err", err)
		return s.decide(p, c, nas, user, ReasonBadUpstream, "")
	}
	relay := &radius.Packet{Code: up.Code, Identifier: p.Identifier, Authenticator: p.Authenticator, Secret: c.Secret, Attributes: up.Attributes}
	switch up.Code {
	case radius.CodeAccessChallenge:
		s.m.challenges.Inc()
		return relay
	case radius.CodeAccessReject:
		s.m.rejects.WithLabelValues(ReasonUpstreamReject).Inc()
		s.audit(c, nas, user, ReasonUpstreamReject, "")
		return relay
	case radius.CodeAccessAccept:
	default:
		return s.decide(p, c, nas, user, ReasonBadUpstream, "")
	}
	// The identity the upstream authenticated: its User-Name if it sends
	// one (the inner identity of PEAP), else the request's.
	if n := rfc2865.UserName_GetString(up); n != "" {
		user = n
	}
	reason, id := s.verify(ctx, c, nas, rfc2865.CallingStationID_GetString(p), user)
	if ctx.Err() != nil {
		return nil
	}
	if reason != "" {
		return s.decide(p, c, nas, user, reason, id)
	}
	s.m.accepts.Inc()
	s.audit(c, nas, user, "accept", id)
	return relay
}

// verify runs (or joins) the call to user's number and returns "" when it
// was verified, else the reason to reject. A request joins a running call
// only when it is the same sign-in: the number the directory gives (so
// alice@example.org and CORP\alice share one call), the same NAS client
// and NAS, and the same Calling-Station-Id (RFC 2865 §5.31: the user's
// device; none matches only none). Joining on the number alone let anyone
// with the user's password, signing in from another device or NAS while
// the user's own call ran, take the Accept of the user's own #.
func (s *Server) verify(ctx context.Context, c *Client, nas, station, user string) (reason, id string) {
	e, err := s.opts.Directory.Lookup(ctx, user)
	if err != nil {
		if !errors.Is(err, directory.ErrNotFound) {
			s.log.Warn("radius: directory lookup failed", "user", maskUser(user), "err", err)
		}
		return ReasonNoNumber, ""
	}
	key := strings.Join([]string{e.Number, c.Name, nas, station}, "\x00")
	s.mu.Lock()
	if cl := s.calls[key]; cl != nil {
		s.mu.Unlock()
		s.m.joined.Inc()
		if s.joined != nil {
			s.joined()
		}
		select {
		case <-cl.done:
			return cl.reason, cl.id
		case <-ctx.Done():
			return ReasonTimeout, cl.id
		}
	}
	cl := &call{done: make(chan struct{})}
	s.calls[key] = cl
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.calls, key)
		s.mu.Unlock()
		close(cl.done)
	}()
	cl.reason, cl.id = s.place(ctx, c, nas, user, e.Number)
	return cl.reason, cl.id
}

// place asks the service for the call to number and waits for its outcome.
func (s *Server) place(ctx context.Context, c *Client, nas, user, number string) (reason, id string) {
	if s.opts.ClientLimit.N > 0 {
		if ref := s.limiter.Allow(c.Name); ref != nil {
			s.log.Info("radius: client limit reached", "client", c.Name, "limit", ref.Message)
			return ReasonClientLimit, ""
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
	defer cancel()
	v, err := s.v.Create(ctx, Scope, "", service.CreateRequest{To: number, Locale: s.opts.Locale, Reference: "radius " + nas})
	if err != nil {
		var se *service.Error
		if errors.As(err, &se) {
			s.log.Info("radius: verification refused", "user", maskUser(user), "code", se.Code, "rule", se.Rule)
		}
		return ReasonRefused, ""
	}
	for v.Status != service.StatusCompleted {
		v, err = s.v.Wait(ctx, Scope, v.ID, time.Until(deadline(ctx)))
		if err != nil || (v.Status != service.StatusCompleted && ctx.Err() != nil) {
			// The NAS has given up by now: end the call.
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _, _ = s.v.Cancel(cctx, Scope, v.ID)
			ccancel()
			return ReasonTimeout, v.ID
		}
	}
	if v.Result == nil || v.Result.Outcome != verify.Verified {
		o := "failed"
		if v.Result != nil {
			o = string(v.Result.Outcome)
		}
		return o, v.ID
	}
	return "", v.ID
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// decide builds our Access-Reject for reason, counts and audits it.
func (s *Server) decide(p *radius.Packet, c *Client, nas, user, reason, id string) *radius.Packet {
	s.m.rejects.WithLabelValues(reason).Inc()
	s.audit(c, nas, user, reason, id)
	return s.reject(p, c, reason)
}

// reject is an Access-Reject with a Reply-Message naming the reason and
// the request's Proxy-States (RFC 2865 §5.33).
func (s *Server) reject(p *radius.Packet, c *Client, reason string) *radius.Packet {
	r := &radius.Packet{Code: radius.CodeAccessReject, Identifier: p.Identifier, Authenticator: p.Authenticator, Secret: c.Secret}
	r.Attributes.Add(rfc2865.ReplyMessage_Type, radius.Attribute("hashcall: "+reason))
	for _, a := range p.Attributes {
		if a.Type == typeProxyState {
			r.Attributes.Add(typeProxyState, a.Attribute)
		}
	}
	return r
}

func (s *Server) audit(c *Client, nas, user, outcome, id string) {
	s.log.Info("audit: radius decision", "nas", nas, "client", c.Name, "user", maskUser(user), "outcome", outcome, "verification", id)
}

// stripProxyState removes the last Proxy-State of p, which must be ours
// (RFC 2865 §5.33).
func stripProxyState(p *radius.Packet, ours []byte) error {
	for i := len(p.Attributes) - 1; i >= 0; i-- {
		if p.Attributes[i].Type != typeProxyState {
			continue
		}
		if string(p.Attributes[i].Attribute) != string(ours) {
			break
		}
		p.Attributes = append(p.Attributes[:i], p.Attributes[i+1:]...)
		return nil
	}
	return fmt.Errorf("%w: the upstream did not return our Proxy-State", ErrMalformed)
}

// nasID names the NAS in the audit log: NAS-Identifier, else
// NAS-IP-Address, else the client's name.
func nasID(p *radius.Packet, c *Client) string {
	if id := rfc2865.NASIdentifier_GetString(p); id != "" {
		return id
	}
	if ip := rfc2865.NASIPAddress_Get(p); ip != nil {
		return ip.String()
	}
	return c.Name
}

// maskUser keeps a user name's first character and its domain:
// "alice@example.org" is "a****@example.org", `CORP\alice` is `CORP\a****`.
func maskUser(u string) string {
	prefix, name, suffix := "", u, ""
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		prefix, name = name[:i+1], name[i+1:]
	}
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		name, suffix = name[:i], name[i:]
	}
	if name == "" {
		return prefix + suffix
	}
	r := []rune(name)
	return prefix + string(r[0]) + "****" + suffix
}
