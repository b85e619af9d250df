package radius

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
)

// Upstream is one RADIUS server the front forwards to.
type Upstream struct {
	// Addr is its HOST:PORT.
	Addr string
	// Secret is the shared secret hashcall and it share.
	Secret []byte
}

// Errors of an upstream exchange; matched with errors.Is.
var (
	// ErrUpstreamDown is returned when no upstream answered.
	ErrUpstreamDown = errors.New("radius: no upstream server answered")
	// ErrUpstreamBusy is returned when all 256 Identifiers of a server are
	// in use.
	ErrUpstreamBusy = errors.New("radius: no free Identifier for the upstream")
)

// upstream is one server: a connected UDP socket (so only its address can
// answer), the Identifiers in use and whether it answered last.
type upstream struct {
	addr      string
	secret    []byte
	conn      *net.UDPConn
	log       *slog.Logger
	m         *metrics
	requireMA bool

	mu      sync.Mutex
	next    byte
	pending map[byte]*exchange
	up      atomic.Bool
}

// exchange is one request in flight to an upstream.
type exchange struct {
	auth  [16]byte
	eap   bool // the request carries EAP: the answer needs a Message-Authenticator (RFC 3579 §3.2)
	reply chan []byte
}

func dialUpstream(u Upstream, log *slog.Logger, m *metrics, requireMA bool) (*upstream, error) {
	ra, err := net.ResolveUDPAddr("udp", u.Addr)
	if err != nil {
		return nil, fmt.Errorf("radius.upstream.servers %s: %w", u.Addr, err)
	}
	conn, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		return nil, fmt.Errorf("radius.upstream.servers %s: %w", u.Addr, err)
	}
	return &upstream{addr: u.Addr, secret: u.Secret, conn: conn, log: log, m: m, requireMA: requireMA,
		pending: map[byte]*exchange{}}, nil
}

// read hands each response to the exchange of its Identifier; responses
// that match none, or whose authenticators are wrong, are dropped and
// counted. It returns when the socket is closed.
func (u *upstream) read() {
	buf := make([]byte, radius.MaxPacketLength+1)
	for {
		n, err := u.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n < 20 || n > radius.MaxPacketLength {
			u.m.upstreamFailures.WithLabelValues(u.addr, "malformed").Inc()
			continue
		}
		u.mu.Lock()
		ex := u.pending[buf[1]]
		u.mu.Unlock()
		if ex == nil {
			u.m.upstreamFailures.WithLabelValues(u.addr, "unexpected").Inc()
			continue
		}
		b := append([]byte(nil), buf[:n]...)
		if err := checkResponse(b, &ex.auth, u.secret, u.requireMA || ex.eap); err != nil {
			// A forged or corrupted answer: wait for the real one.
			u.m.upstreamFailures.WithLabelValues(u.addr, "bad_authenticator").Inc()
			u.log.Warn("radius: upstream response dropped", "upstream", u.addr, "err", err)
			continue
		}
		select {
		case ex.reply <- b:
		default:
		}
	}
}

// claim reserves an Identifier.
func (u *upstream) claim(auth [16]byte) (byte, *exchange, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for range 256 {
		id := u.next
		u.next++
		if _, busy := u.pending[id]; !busy {
			ex := &exchange{auth: auth, reply: make(chan []byte, 1)}
			u.pending[id] = ex
			return id, ex, nil
		}
	}
	return 0, nil, ErrUpstreamBusy
}

func (u *upstream) release(id byte) {
	u.mu.Lock()
	delete(u.pending, id)
	u.mu.Unlock()
}

// exchange sends p (its Identifier set here) up to tries times, each
// waiting timeout, and returns the verified response.
func (u *upstream) exchange(ctx context.Context, p *radius.Packet, timeout time.Duration, tries int) ([]byte, error) {
	id, ex, err := u.claim(p.Authenticator)
	if err != nil {
		return nil, err
	}
	defer u.release(id)
	_, ex.eap = p.Attributes.Lookup(typeEAPMessage)
	p.Identifier = id
	p.Secret = u.secret
	b, err := encode(p, false)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for try := 0; try < tries; try++ {
		if _, err := u.conn.Write(b); err != nil {
			u.m.upstreamFailures.WithLabelValues(u.addr, "send").Inc()
			return nil, fmt.Errorf("radius: upstream %s: %w", u.addr, err)
		}
		timer := time.NewTimer(timeout)
		select {
		case r := <-ex.reply:
			timer.Stop()
			u.m.upstreamLatency.WithLabelValues(u.addr).Observe(time.Since(start).Seconds())
			u.setUp(true)
			return r, nil
		case <-timer.C:
			u.m.upstreamFailures.WithLabelValues(u.addr, "timeout").Inc()
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
	}
	u.setUp(false)
	return nil, fmt.Errorf("%w: %s after %d tries of %v", ErrUpstreamDown, u.addr, tries, timeout)
}

func (u *upstream) setUp(up bool) {
	if u.up.Swap(up) != up {
		v := 0.0
		if up {
			v = 1
		}
		u.m.upstreamUp.WithLabelValues(u.addr).Set(v)
		u.log.Info("radius: upstream state", "upstream", u.addr, "up", up)
	}
}

// status sends a Status-Server (RFC 5997 §3) and reports whether the server
// answered with an authentic Access-Accept.
func (u *upstream) status(ctx context.Context, timeout time.Duration) bool {
	p := &radius.Packet{Code: radius.CodeStatusServer}
	if _, err := rand.Read(p.Authenticator[:]); err != nil {
		return false
	}
	r, err := u.exchange(ctx, p, timeout, 1)
	return err == nil && radius.Code(r[0]) == radius.CodeAccessAccept
}

// pool is the upstream servers in order of preference: a request goes to
// the first that is up, then fails over to the next.
type pool struct {
	servers []*upstream
	timeout time.Duration
	tries   int
}

// exchange forwards p to the servers in turn, starting with those that
// answered last; it returns the response and the server that gave it.
// A User-Password hidden with nasSecret is re-hidden for each server.
func (pl *pool) exchange(ctx context.Context, p *radius.Packet, nasSecret []byte) ([]byte, *upstream, error) {
	order := make([]*upstream, 0, len(pl.servers))
	for _, u := range pl.servers {
		if u.up.Load() {
			order = append(order, u)
		}
	}
	for _, u := range pl.servers {
		if !u.up.Load() {
			order = append(order, u)
		}
	}
	var errs []error
	for _, u := range order {
		q := *p
		q.Attributes = cloneAttrs(p.Attributes)
		if nasSecret != nil {
			if err := rehideUserPassword(q.Attributes, p.Authenticator, nasSecret, u.secret); err != nil {
				return nil, nil, err
			}
		}
		r, err := u.exchange(ctx, &q, pl.timeout, pl.tries)
		if err == nil {
			return r, u, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		errs = append(errs, err)
	}
	return nil, nil, errors.Join(append([]error{ErrUpstreamDown}, errs...)...)
}

// ready reports whether any server answered its last exchange.
func (pl *pool) ready() bool {
	for _, u := range pl.servers {
		if u.up.Load() {
			return true
		}
	}
	return false
}

func cloneAttrs(a radius.Attributes) radius.Attributes {
	out := make(radius.Attributes, len(a))
	for i, v := range a {
		out[i] = &radius.AVP{Type: v.Type, Attribute: append(radius.Attribute(nil), v.Attribute...)}
	}
	return out
}
