// Package phone is a simulated telephone for `hashcall demo` and tests: a
// SIP user agent (sipgo) that answers calls on 127.0.0.1 with real RTP
// (media.Session), listens a moment into the prompt, and presses a key by
// RFC 4733 telephone-events, in-band tones or SIP INFO.
package phone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/internal/sockopt"
	"github.com/hashcall/hashcall/media"
)

// Methods of pressing a key.
const (
	MethodRFC4733 = "rfc4733"
	MethodInband  = "inband"
	MethodInfo    = "info"
	MethodNone    = "none" // answer and stay silent
)

// Config is how the phone behaves.
type Config struct {
	Listen string // UDP host:port; default 127.0.0.1:0
	Method string // default rfc4733
	Key    dtmf.Key
	// After is how long after answering the key is pressed; default 1.5 s
	// (a moment into the prompt).
	After time.Duration
	// Hold is how long the key is held; default 160 ms.
	Hold time.Duration
	// Keys, when set, are pressed in turn instead of Key (a code and #),
	// Gap apart (default 200 ms).
	Keys   string
	Gap    time.Duration
	Codecs []media.Codec // what the phone accepts, in preference order; default PCMU, PCMA
	// Greeting, when set, is played from the answer on, as an answering
	// machine plays its greeting (the key, if any, comes After as usual).
	Greeting []int16
	// AnswerHeaders are added to the 200 OK (a Diversion header, say).
	AnswerHeaders []sip.Header
	Ports         media.PortRange
	Logger        *slog.Logger
}

// Phone is a running simulated phone.
type Phone struct {
	cfg    Config
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	dialog *sipgo.DialogUA
	conn   net.PacketConn
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	calls map[string]*call

	answered atomic.Int32
}

type call struct {
	sess  *sipgo.DialogServerSession
	media *media.Session
	done  chan struct{}
	once  sync.Once
}

func (c *call) end() { c.once.Do(func() { close(c.done) }) }

// Start binds the phone's SIP socket and starts answering.
func Start(ctx context.Context, cfg Config) (*Phone, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Method == "" {
		cfg.Method = MethodRFC4733
	}
	switch cfg.Method {
	case MethodRFC4733, MethodInband, MethodInfo, MethodNone:
	default:
		return nil, fmt.Errorf("phone: method %q: want rfc4733, inband, info or none", cfg.Method)
	}
	if cfg.Key == 0 {
		cfg.Key = dtmf.KeyHash
	}
	if !cfg.Key.Valid() {
		return nil, fmt.Errorf("phone: %v is not a DTMF key", cfg.Key)
	}
	for i := range len(cfg.Keys) {
		if !dtmf.Key(cfg.Keys[i]).Valid() {
			return nil, fmt.Errorf("phone: %q in Keys is not a DTMF key", cfg.Keys[i])
		}
	}
	if cfg.Gap <= 0 {
		cfg.Gap = 200 * time.Millisecond
	}
	if cfg.After <= 0 {
		cfg.After = 1500 * time.Millisecond
	}
	if cfg.Hold <= 0 {
		cfg.Hold = 160 * time.Millisecond
	}
	if len(cfg.Codecs) == 0 {
		cfg.Codecs = []media.Codec{media.PCMU, media.PCMA}
	}
	if cfg.Ports == (media.PortRange{}) {
		cfg.Ports = media.PortRange{Low: 30000, High: 30999}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	conn, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("phone: %w", err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("hashcall-phone"))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("phone: %w", err)
	}
	srv, _ := sipgo.NewServer(ua)
	la := conn.LocalAddr().(*net.UDPAddr)
	client, _ := sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(la.String()), sipgo.WithClientHostname(la.IP.String()), sipgo.WithClientPort(la.Port))
	p := &Phone{
		cfg: cfg, ua: ua, srv: srv, conn: conn, log: cfg.Logger.With("component", "phone"),
		dialog: &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "phone", Host: la.IP.String(), Port: la.Port}}},
		calls:  map[string]*call{},
	}
	p.ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	srv.OnInvite(p.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if c := p.call(req); c != nil {
			_ = c.sess.ReadAck(req, tx)
		}
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		c := p.call(req)
		if c == nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		_ = c.sess.ReadBye(req, tx)
		c.end()
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	rc := sockopt.NewReadyConn(conn)
	served := make(chan struct{})
	p.wg.Add(1)
	go func() { defer p.wg.Done(); defer close(served); _ = srv.ServeUDP(rc) }()
	// sipgo pools the listener just before its first read; a request sent
	// before would bind the address again.
	if err := rc.Wait(ctx, served); err != nil {
		p.Close()
		return nil, fmt.Errorf("phone: listener did not start: %w", err)
	}
	return p, nil
}

// Addr is the phone's SIP address (host:port).
func (p *Phone) Addr() string { return p.conn.LocalAddr().String() }

// Answered is how many calls the phone answered.
func (p *Phone) Answered() int { return int(p.answered.Load()) }

// Close hangs up calls in progress, stops the phone and waits for it.
func (p *Phone) Close() error {
	p.cancel()
	p.mu.Lock()
	for _, c := range p.calls {
		c.end()
	}
	p.mu.Unlock()
	p.ua.Close()
	err := p.conn.Close()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (p *Phone) call(req *sip.Request) *call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[req.CallID().Value()]
}

func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// re-INVITE: accept with our current SDP.
		if c := p.call(req); c != nil {
			b, _ := c.media.Local().Current()
			_ = tx.Respond(sip.NewSDPResponseFromRequest(req, b))
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	p.wg.Add(1)
	defer p.wg.Done()
	ds, err := p.dialog.ReadInvite(req, tx)
	if err != nil {
		p.log.Info("bad INVITE", "err", err)
		return
	}
	ip, err := netip.ParseAddr(p.conn.LocalAddr().(*net.UDPAddr).IP.String())
	if err != nil {
		_ = ds.Respond(500, "Server Internal Error", nil)
		return
	}
	var playing sync.WaitGroup
	defer playing.Wait() // after sess.Close (deferred below) ends the greeting
	sess, err := media.Listen(p.ctx, media.SessionConfig{IP: ip, Ports: p.cfg.Ports, Codecs: p.cfg.Codecs, Logger: p.cfg.Logger})
	if err != nil {
		_ = ds.Respond(500, "Server Internal Error", nil)
		return
	}
	defer sess.Close()
	answer, neg, err := sess.Local().Answer(req.Body())
	if err != nil {
		p.log.Info("cannot answer offer", "err", err)
		_ = ds.Respond(488, "Not Acceptable Here", nil)
		return
	}
	c := &call{sess: ds, media: sess, done: make(chan struct{})}
	p.mu.Lock()
	p.calls[req.CallID().Value()] = c
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.calls, req.CallID().Value())
		p.mu.Unlock()
	}()
	if err := ds.Respond(180, "Ringing", nil); err != nil {
		return
	}
	select {
	case <-time.After(200 * time.Millisecond):
	case <-p.ctx.Done():
		return
	}
	if err := sess.Start(neg); err != nil {
		_ = ds.Respond(500, "Server Internal Error", nil)
		return
	}
	ok := sip.NewSDPResponseFromRequest(ds.InviteRequest, answer)
	for _, h := range p.cfg.AnswerHeaders {
		ok.AppendHeader(h)
	}
	if err := ds.WriteResponse(ok); err != nil {
		p.log.Info("answer not acknowledged", "err", err)
		return
	}
	if len(p.cfg.Greeting) > 0 {
		playing.Add(1)
		go func() {
			defer playing.Done()
			_ = sess.Play(p.ctx, p.cfg.Greeting)
		}()
	}
	p.answered.Add(1)
	p.log.Info("answered", "codec", neg.Codec.Name, "events", neg.HaveEvents)
	select {
	case <-time.After(p.cfg.After):
		p.press(c, neg)
	case <-c.done:
		return
	case <-p.ctx.Done():
	}
	// Stay on the line until the caller hangs up (or 30 s pass).
	select {
	case <-c.done:
	case <-p.ctx.Done():
		p.bye(ds)
	case <-time.After(30 * time.Second):
		p.bye(ds)
	}
}

func (p *Phone) bye(ds *sipgo.DialogServerSession) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = ds.Bye(ctx)
}

func (p *Phone) press(c *call, neg media.Negotiated) {
	if p.cfg.Keys == "" {
		p.pressKey(c, p.cfg.Key)
		return
	}
	for i := range len(p.cfg.Keys) {
		if i > 0 {
			select {
			case <-time.After(p.cfg.Gap): // the callee's keying pace
			case <-p.ctx.Done():
				return
			}
		}
		if !p.pressKey(c, dtmf.Key(p.cfg.Keys[i])) {
			return
		}
	}
}

// pressKey presses key once and reports whether it went out.
func (p *Phone) pressKey(c *call, key dtmf.Key) bool {
	var err error
	switch p.cfg.Method {
	case MethodNone:
		return false
	case MethodRFC4733, MethodInband:
		err = c.media.SendDTMF(p.ctx, key, p.cfg.Hold, media.DTMFMethod(p.cfg.Method))
	case MethodInfo:
		inv := c.sess.InviteRequest
		req := sip.NewRequest(sip.INFO, inv.Contact().Address)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
		req.SetBody(fmt.Appendf(nil, "Signal=%s\r\nDuration=%d\r\n", key, p.cfg.Hold.Milliseconds()))
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		var res *sip.Response
		res, err = c.sess.Do(ctx, req)
		cancel()
		if err == nil && res.StatusCode != 200 {
			err = fmt.Errorf("INFO answered %d %s", res.StatusCode, res.Reason)
		}
	}
	if err != nil {
		p.log.Info("pressing key failed", "method", p.cfg.Method, "err", err)
		return false
	}
	p.log.Info("pressed", "key", key.Redacted(), "method", p.cfg.Method)
	return true
}
