// Package sip is hashcall's SIP user agent: it places verification calls
// through the organisation's trunk or PBX on github.com/emiago/sipgo.
//
// It binds one listener (UDP, TCP or TLS) and sends every request from it, so
// trunks that answer to the Via/Contact address reach us. It answers digest
// challenges (401/407, MD5 and SHA-256, one re-challenge for a stale nonce),
// optionally registers, pings the trunk with OPTIONS, cancels a call that
// rings too long, maps every final response to an outcome with its SIP code,
// reason phrase and Q.850 cause, and inside a dialog answers re-INVITE and
// UPDATE, reads SIP INFO DTMF and handles BYE both ways.
//
// Only the callee's dialog acts on a call: requests are taken from the
// trunk, the outbound proxy and Config.TrustedSources only (403 otherwise,
// trust.go), and an in-dialog request must match the call's Call-ID, both
// tags and a rising CSeq (481 or 500 otherwise, dialog.go, RFC 3261
// §12.2.2). Call-IDs, tags and branches come from crypto/rand (ids.go).
// Stats counts what was refused.
//
// It knows SDP only as bytes: the media package makes offers and answers.
package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/hashcall/hashcall/internal/redact"
	"github.com/hashcall/hashcall/internal/sockopt"
)

// Config is what the user agent needs. Durations of zero take the defaults.
type Config struct {
	Listen        string // host:port to bind; the host must be an IP
	Transport     string // "udp" (default), "tcp" or "tls"
	PublicAddress string // host or host:port put in Contact and Via behind NAT

	Trunk Trunk

	From              string // user or full SIP URI for From
	DisplayName       string
	PAssertedIdentity string // optional user or URI for P-Asserted-Identity

	RingTimeout time.Duration // default 30 s

	// UDPReadBuffer is the receive buffer in bytes asked for the UDP
	// socket; 0 keeps the kernel's default.
	UDPReadBuffer int

	// TrustedSources are networks besides the trunk's and the outbound
	// proxy's addresses that may send us requests (see trust.go); requests
	// from anywhere else get 403.
	TrustedSources []netip.Prefix

	// TLS is the client configuration for transport "tls" (CA, SNI,
	// optional client certificate); ServerTLS, when set, serves TLS on
	// Listen too.
	TLS       *tls.Config
	ServerTLS *tls.Config

	UserAgent string
	Logger    *slog.Logger
}

// Trunk is the far side: the organisation's PBX, SBC or carrier.
type Trunk struct {
	Address         string // host:port
	OutboundProxy   string // optional host:port requests are sent through
	Username        string
	Password        string
	Realm           string // when set, digest challenges for any other realm are refused
	Register        bool
	RegisterExpiry  time.Duration // default 600 s
	OptionsInterval time.Duration // period of OPTIONS pings; 0 (or negative): none, as sip.trunk.options_interval
}

// Header values from configuration and requests must be single-line and
// bounded: sipgo does not check them, and a CR/LF would inject headers.
const maxHeaderValue = 256

// CheckHeaderValue reports whether v can go into a SIP header as is.
func CheckHeaderValue(name, v string) error {
	if len(v) > maxHeaderValue {
		return fmt.Errorf("%s is %d bytes long, at most %d allowed", name, len(v), maxHeaderValue)
	}
	if strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("%s contains a line break or NUL", name)
	}
	return nil
}

// UA is a SIP user agent bound to one listener.
type UA struct {
	cfg    Config
	log    *slog.Logger
	ua     *sipgo.UserAgent
	client *sipgo.Client
	server *sipgo.Server
	dialog *sipgo.DialogUA

	network   string // "udp" or "tcp" (tls rides on tcp listeners)
	transport string
	laddr     net.Addr
	closer    func() error
	serveFn   func() error
	ready     *sockopt.ReadyConn // the UDP listener, to know when sipgo reads it
	host      string             // Contact/Via host
	port      int                // Contact/Via port
	trunkHost string
	trunkPort int

	mu    sync.Mutex
	calls map[string]*Call // by Call-ID
	// late holds, by Call-ID and for 64*T1, the dialogs of calls we
	// cancelled, for a 2xx that comes after the INVITE transaction is
	// gone (see lateAnswer).
	late   map[string]lateDialog
	lateWG sync.WaitGroup // the late dialogs' timers that are due
	closed bool           // Close began: no more late dialogs

	trust  atomic.Pointer[trustSet]
	counts counters

	registered atomic.Bool
	trunkUp    atomic.Bool
	trunkSeen  atomic.Int64 // unix nanos of the last OPTIONS answer

	stop context.CancelFunc
	wg   sync.WaitGroup // the listener
	bg   sync.WaitGroup // registration and OPTIONS loops
}

// Errors returned by NewUA and Dial.
var (
	ErrClosed = errors.New("sip: user agent closed")
)

// NewUA validates cfg, binds the listener and starts serving. Close stops it.
func NewUA(ctx context.Context, cfg Config) (*UA, error) {
	if cfg.Transport == "" {
		cfg.Transport = "udp"
	}
	if cfg.RingTimeout <= 0 {
		cfg.RingTimeout = 30 * time.Second
	}
	if cfg.Trunk.RegisterExpiry <= 0 {
		cfg.Trunk.RegisterExpiry = 600 * time.Second
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hashcall"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for name, v := range map[string]string{
		"sip.from": cfg.From, "sip.display_name": cfg.DisplayName, "sip.p_asserted_identity": cfg.PAssertedIdentity,
		"sip.trunk.username": cfg.Trunk.Username, "user agent": cfg.UserAgent,
	} {
		if err := CheckHeaderValue(name, v); err != nil {
			return nil, fmt.Errorf("sip: %w", err)
		}
	}
	u := &UA{cfg: cfg, log: cfg.Logger.With("component", "sip"), calls: map[string]*Call{}, late: map[string]lateDialog{}}
	switch cfg.Transport {
	case "udp":
		u.network, u.transport = "udp", "udp"
	case "tcp":
		u.network, u.transport = "tcp", "tcp"
	case "tls":
		u.network, u.transport = "tcp", "tls"
	default:
		return nil, fmt.Errorf("sip: transport %q: want udp, tcp or tls", cfg.Transport)
	}
	if cfg.Trunk.Address != "" {
		h, p, err := splitHostPort(cfg.Trunk.Address, defaultPort(u.transport))
		if err != nil {
			return nil, fmt.Errorf("sip: trunk address %q: %w", cfg.Trunk.Address, err)
		}
		u.trunkHost, u.trunkPort = uriHost(h), p
	}
	if err := u.listen(ctx); err != nil {
		return nil, err
	}
	uaOpts := []sipgo.UserAgentOption{sipgo.WithUserAgent(cfg.UserAgent), sipgo.WithUserAgentHostname(u.host),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerUnhandledResponseHandler(u.lateAnswer)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(u.readFilter))}
	if cfg.TLS != nil {
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(cfg.TLS))
	}
	var err error
	if u.ua, err = sipgo.NewUA(uaOpts...); err != nil {
		u.closer()
		return nil, fmt.Errorf("sip: %w", err)
	}
	if u.server, err = sipgo.NewServer(u.ua); err != nil {
		u.close()
		return nil, fmt.Errorf("sip: %w", err)
	}
	clientOpts := []sipgo.ClientOption{sipgo.WithClientHostname(u.host), sipgo.WithClientPort(u.port), sipgo.WithClientNAT()}
	if u.network == "udp" {
		// Requests leave from the bound socket only when the client's
		// connection address matches the listener exactly.
		clientOpts = append(clientOpts, sipgo.WithClientConnectionAddr(u.laddr.String()))
	}
	// Two clients of one user agent: u.client builds requests and hands
	// them to branchRewriter, which gives them branches of ours and sends
	// them with inner.
	inner, err := sipgo.NewClient(u.ua, clientOpts...)
	if err != nil {
		u.close()
		return nil, fmt.Errorf("sip: %w", err)
	}
	if u.client, err = sipgo.NewClient(u.ua, clientOpts...); err != nil {
		u.close()
		return nil, fmt.Errorf("sip: %w", err)
	}
	u.client.TxRequester = branchRewriter{inner: inner}
	t, err := u.resolveTrust(ctx, cfg.TrustedSources)
	u.trust.Store(t)
	if err != nil {
		u.log.Warn("requests from a trunk address that does not resolve are refused until it does (a reload resolves again)", "err", err)
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "hashcall", Host: u.host, Port: u.port}}
	if u.transport != "udp" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", u.transport)
	}
	u.dialog = &sipgo.DialogUA{Client: u.client, ContactHDR: contact}
	u.handlers()

	startCtx := ctx
	ctx, u.stop = context.WithCancel(context.WithoutCancel(ctx))
	served := u.serve()
	if u.ready != nil {
		// sipgo adds the listener to its connection pool in the serving
		// goroutine, just before its first read; until then a request
		// would try to bind the same address again.
		if err := u.ready.Wait(startCtx, served); err != nil {
			u.Close()
			return nil, fmt.Errorf("sip: listener did not start: %w", err)
		}
	}

	if cfg.Trunk.Register && u.trunkHost != "" {
		u.bg.Add(1)
		go func() { defer u.bg.Done(); u.registerLoop(ctx) }()
	}
	if cfg.Trunk.OptionsInterval > 0 && u.trunkHost != "" {
		u.bg.Add(1)
		go func() { defer u.bg.Done(); u.optionsLoop(ctx) }()
	}
	return u, nil
}

func defaultPort(transport string) int {
	if transport == "tls" {
		return 5061
	}
	return 5060
}

// missingPort reports whether hp is a host without a port: a name or IPv4
// address without a colon, or one bracketed IPv6 address.
func missingPort(hp string) bool {
	if strings.HasPrefix(hp, "[") {
		return strings.HasSuffix(hp, "]") && strings.Count(hp, "[") == 1 && strings.Count(hp, "]") == 1
	}
	return !strings.Contains(hp, ":")
}

// uriHost is host as SIP URIs and Via carry it: an IPv6 address in
// brackets (RFC 3261 §25.1 IPv6reference, RFC 5118), which is also how
// sipgo parses and resolves one.
func uriHost(host string) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return "[" + host + "]"
	}
	return host
}

func splitHostPort(hp string, def int) (string, int, error) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		if missingPort(hp) {
			return strings.Trim(hp, "[]"), def, nil
		}
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, p, nil
}

// listen binds the configured socket; a port of 0 picks a free one.
func (u *UA) listen(ctx context.Context) error {
	var lc net.ListenConfig
	switch u.network {
	case "udp":
		pc, err := lc.ListenPacket(ctx, "udp", u.cfg.Listen)
		if err != nil {
			return fmt.Errorf("sip: listen udp %s: %w", u.cfg.Listen, err)
		}
		if uc, ok := pc.(*net.UDPConn); ok && u.cfg.UDPReadBuffer > 0 {
			sockopt.SizeReadBuffer(uc, u.cfg.UDPReadBuffer, u.log, "sip.udp_read_buffer")
		}
		u.ready = sockopt.NewReadyConn(pc)
		u.laddr, u.closer = pc.LocalAddr(), pc.Close
		u.serveFn = func() error { return u.server.ServeUDP(u.ready) }
	default:
		l, err := lc.Listen(ctx, "tcp", u.cfg.Listen)
		if err != nil {
			return fmt.Errorf("sip: listen tcp %s: %w", u.cfg.Listen, err)
		}
		if u.transport == "tls" {
			if u.cfg.ServerTLS == nil {
				// Without a certificate of our own we only connect out; the
				// trunk sends in-dialog requests back over our connection
				// (sipgo reads requests on client connections too).
				u.laddr, u.closer = l.Addr(), func() error { return nil }
				l.Close()
				break
			}
			tl := tls.NewListener(l, u.cfg.ServerTLS)
			u.laddr, u.closer = l.Addr(), tl.Close
			u.serveFn = func() error { return u.server.ServeTLS(tl) }
		} else {
			u.laddr, u.closer = l.Addr(), l.Close
			u.serveFn = func() error { return u.server.ServeTCP(l) }
		}
	}
	ap, err := addrPort(u.laddr)
	if err != nil {
		u.closer()
		return err
	}
	u.host, u.port = uriHost(ap.host), ap.port
	if pub := u.cfg.PublicAddress; pub != "" {
		h, p, err := splitHostPort(pub, u.port)
		if err != nil {
			u.closer()
			return fmt.Errorf("sip: public address %q: %w", pub, err)
		}
		u.host, u.port = uriHost(h), p
	}
	return nil
}

type hostPort struct {
	host string
	port int
}

func addrPort(a net.Addr) (hostPort, error) {
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return hostPort{}, fmt.Errorf("sip: local address %v: %w", a, err)
	}
	n, _ := strconv.Atoi(p)
	return hostPort{h, n}, nil
}

// serve serves the listener on a goroutine of its own; the channel it
// returns is closed when serving stops.
func (u *UA) serve() <-chan struct{} {
	done := make(chan struct{})
	if u.serveFn == nil {
		close(done)
		return done
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer close(done)
		if err := u.serveFn(); err != nil && !errors.Is(err, net.ErrClosed) {
			u.log.Debug("sip listener stopped", "err", err)
		}
	}()
	return done
}

// Addr is the bound listener address.
func (u *UA) Addr() net.Addr { return u.laddr }

// Close unregisters (when registered), stops the listener and every
// goroutine the UA started, and waits for them. Calls still up are not
// hung up: their owners do that before.
func (u *UA) Close() error {
	u.stop()
	u.bg.Wait() // registration and pings: they unregister over the open socket
	err := u.close()
	u.wg.Wait()
	u.mu.Lock()
	u.closed = true
	for id := range u.late {
		u.forgetLateLocked(id)
	}
	u.mu.Unlock()
	u.lateWG.Wait()
	return err
}

func (u *UA) close() error {
	var errs []error
	if u.ua != nil {
		errs = append(errs, u.ua.Close())
	}
	if err := u.closer(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// TrunkState reports whether the trunk answered our last OPTIONS ping (or,
// with registration, whether we are registered).
func (u *UA) TrunkState() (up, registered bool) {
	return u.trunkUp.Load(), u.registered.Load()
}

// Ready reports whether calls can be placed: the trunk answers OPTIONS, or
// we are registered, or (with pings off and no registration) always.
func (u *UA) Ready() bool {
	if u.cfg.Trunk.Register {
		return u.registered.Load()
	}
	if u.cfg.Trunk.OptionsInterval <= 0 {
		return true
	}
	return u.trunkUp.Load()
}

func (u *UA) trunkURI(user string) sip.Uri {
	uri := sip.Uri{Scheme: "sip", User: user, Host: u.trunkHost, Port: u.trunkPort}
	if u.transport != "udp" {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", u.transport)
	}
	return uri
}

// route applies the outbound proxy, if any: the request goes to the proxy
// with a loose Route to it, and the Request-URI stays the trunk's.
func (u *UA) route(req *sip.Request) error {
	p := u.cfg.Trunk.OutboundProxy
	if p == "" {
		return nil
	}
	h, port, err := splitHostPort(p, defaultPort(u.transport))
	if err != nil {
		return fmt.Errorf("outbound proxy %q: %w", p, err)
	}
	hp := net.JoinHostPort(h, strconv.Itoa(port))
	req.AppendHeader(sip.NewHeader("Route", "<sip:"+hp+";lr>"))
	req.SetDestination(hp)
	return nil
}

// logMsg logs a SIP message at debug level with phone numbers masked and
// the body of a SIP INFO DTMF request left out: its key may be a digit of
// a code (verify mode code), a secret; the "SIP INFO DTMF" line after it
// shows the key as the call allows.
func (u *UA) logMsg(dir string, m fmt.Stringer) {
	if !u.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	text := m.String()
	if req, ok := m.(*sip.Request); ok && req.Method == sip.INFO && len(req.Body()) > 0 {
		if ct := req.ContentType(); ct != nil && strings.HasPrefix(strings.ToLower(ct.Value()), "application/dtmf") {
			if i := strings.Index(text, "\r\n\r\n"); i >= 0 {
				text = text[:i+4] + "[DTMF body not logged]"
			}
		}
	}
	u.log.Debug("sip "+dir, "msg", redact.Numbers(text))
}
