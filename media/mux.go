package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/internal/sockopt"
)

// A Mux is one UDP socket that carries the RTP of many sessions
// (media.rtp_mux): every call advertises the same port in its SDP, sends
// from it (symmetric RTP, RFC 4961) and receives on it. One goroutine reads
// the socket in batches (recvmmsg on Linux) and hands each datagram to the
// session that expects its source: the address and port of the far end's
// SDP, the same rule a session's own socket applies (Stream: the lock after
// three in-order packets of one SSRC). A datagram from an address no
// session expects is dropped and counted (MuxStats.Unknown) before it is
// parsed; so are those that arrive before a call is answered, since the
// far end's address is only routed from Start.
//
// The far end's address must name one call. When two live calls' SDP name
// the same far end address (a media server answering every call on one
// port, as SIPp's -mp does), nothing the far end signalled tells their
// packets apart: with a port per call our port does, on a shared port a
// guess by SSRC or by order could hand one callee's # to another's call.
// Packets from such an address are dropped and counted
// (MuxStats.Ambiguous), and a warning says to turn media.rtp_mux off for
// that trunk; the calls end without a key.
//
// The pacers send the sessions' packets of each millisecond together, in
// one sendmmsg per pacer and tick, instead of one sendto each.
//
// Symmetric latching (sending to wherever the RTP comes from, for far ends
// behind NAT) needs a socket per call: a shared port cannot tell whose
// call a packet from an unknown address is. Listen refuses a session with
// both.
type Mux struct {
	conn *net.UDPConn
	addr netip.AddrPort
	log  *slog.Logger
	bc   *batchConn

	mu     sync.Mutex
	routes map[netip.AddrPort][]*Session
	all    map[*Session]struct{}
	closed bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	received, unknown, ambiguous atomic.Uint64
	warnedShared                 atomic.Bool
}

// MuxConfig configures [ListenMux].
type MuxConfig struct {
	// Addr is the shared RTP address to bind and advertise; its port
	// should be even (RFC 3550 §11).
	Addr netip.AddrPort
	// ReadBuffer is the socket's receive buffer in bytes (0: the kernel's
	// default); every call's packets queue there.
	ReadBuffer int
	// Logger receives the mux's logs; nil means slog.Default().
	Logger *slog.Logger
}

// MuxStats counts what a [Mux] received.
type MuxStats struct {
	Received uint64 // datagrams read
	Routed   uint64 // handed to a session: the rest
	Unknown  uint64 // from an address no answered call expects: dropped
	// Ambiguous: from a far end address that several live calls' SDP
	// named; dropped, since nothing tells whose call they are.
	Ambiguous uint64
	Sessions  int // sessions routed now
}

// muxBatch is how many datagrams one system call moves at most.
const muxBatch = 64

// ListenMux binds the shared RTP socket and starts its reader. Close it
// after the sessions that use it.
func ListenMux(ctx context.Context, cfg MuxConfig) (*Mux, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("media: mux: no address to listen on")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	addr := netip.AddrPortFrom(cfg.Addr.Addr().Unmap(), cfg.Addr.Port())
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("media: mux: listen on %s: %w", addr, err)
	}
	log := cfg.Logger.With("rtp_mux", addr)
	if cfg.ReadBuffer > 0 {
		sockopt.SizeReadBuffer(conn, cfg.ReadBuffer, log, "media.rtp_mux_read_buffer")
	}
	bc, err := newBatchConn(conn, muxBatch)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("media: mux: %w", err)
	}
	m := &Mux{
		conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), log: log, bc: bc,
		routes: map[netip.AddrPort][]*Session{}, all: map[*Session]struct{}{},
	}
	m.ctx, m.cancel = context.WithCancel(ctx)
	m.wg.Add(1)
	go m.receive()
	context.AfterFunc(m.ctx, func() { m.conn.Close() })
	log.Info("rtp mux listening", "addr", m.addr)
	return m, nil
}

// Addr returns the shared socket's address.
func (m *Mux) Addr() netip.AddrPort { return m.addr }

// Stats returns the mux's counters.
func (m *Mux) Stats() MuxStats {
	m.mu.Lock()
	n := len(m.all)
	m.mu.Unlock()
	st := MuxStats{Unknown: m.unknown.Load(), Ambiguous: m.ambiguous.Load(), Sessions: n}
	st.Received = m.received.Load() // read after the drops, counted before them
	st.Routed = st.Received - st.Unknown - st.Ambiguous
	return st
}

// Close stops the reader, waits for it and closes the socket. Sessions
// still using the mux can neither send nor receive any more.
func (m *Mux) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// join registers s (its packets are read by the mux).
func (m *Mux) join(s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.all[s] = struct{}{}
	return nil
}

// route makes packets from remote go to s instead of from its previous
// route (none when remote is not an address to receive from: hold).
func (m *Mux) route(s *Session, remote netip.AddrPort) {
	remote = unmap(remote)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.all[s]; !ok || remote == s.muxRoute {
		return // left already, or no change
	}
	m.unroute(s)
	if routable(remote) {
		m.routes[remote] = append(m.routes[remote], s)
		s.muxRoute = remote
		if len(m.routes[remote]) == 2 && !m.warnedShared.Swap(true) {
			m.log.Warn("two calls name the same far end RTP address: a shared RTP port cannot tell their packets apart, they are dropped; turn media.rtp_mux off for this trunk",
				"remote", remote)
		}
	}
}

// unroute takes s off its route; m.mu is held.
func (m *Mux) unroute(s *Session) {
	if !s.muxRoute.IsValid() {
		return
	}
	r := m.routes[s.muxRoute]
	for i, x := range r {
		if x == s {
			r = append(r[:i], r[i+1:]...)
			break
		}
	}
	if len(r) == 0 {
		delete(m.routes, s.muxRoute)
	} else {
		m.routes[s.muxRoute] = r
	}
	s.muxRoute = netip.AddrPort{}
}

// leave takes s off the mux: no packet reaches it after leave returns but
// one the reader took before (Session.packet drops it once closed).
func (m *Mux) leave(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unroute(s)
	delete(m.all, s)
}

func routable(a netip.AddrPort) bool {
	return a.IsValid() && !a.Addr().IsUnspecified() && a.Port() != 0
}

// lookup returns the session expecting datagrams from from, or nil for
// none; ambiguous when several do.
func (m *Mux) lookup(from netip.AddrPort) (s *Session, ambiguous bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch r := m.routes[from]; len(r) {
	case 0:
		return nil, false
	case 1:
		return r[0], false
	}
	return nil, true
}

// receive is the reader goroutine.
func (m *Mux) receive() {
	defer m.wg.Done()
	var (
		bufs  [muxBatch][]byte
		lens  [muxBatch]int
		froms [muxBatch]netip.AddrPort
		store = make([]byte, muxBatch*maxDatagram)
		evs   = make([]dtmf.Event, 0, 16)
		ticks []*Session
	)
	for i := range bufs {
		bufs[i] = store[i*maxDatagram : (i+1)*maxDatagram : (i+1)*maxDatagram]
	}
	lastTick := time.Now()
	// Every tickInterval the sessions are ticked for RFC 4733 timeouts, as
	// a session's own receiver does when its packets stop.
	_ = m.conn.SetReadDeadline(lastTick.Add(tickInterval))
	for {
		n, err := m.bc.read(bufs[:], lens[:], froms[:])
		if err != nil {
			if m.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				m.log.Warn("rtp mux receive", "err", err)
			}
		}
		m.received.Add(uint64(n)) // before the drops: Stats reads them first
		for i := range n {
			b := bufs[i][:lens[i]]
			s, ambiguous := m.lookup(froms[i])
			switch {
			case ambiguous:
				m.ambiguous.Add(1)
				continue
			case s == nil:
				m.unknown.Add(1)
				continue
			}
			evs = s.packet(evs, froms[i], b)
		}
		if now := time.Now(); now.Sub(lastTick) >= tickInterval {
			lastTick = now
			_ = m.conn.SetReadDeadline(now.Add(tickInterval))
			m.mu.Lock()
			ticks = ticks[:0]
			for s := range m.all {
				ticks = append(ticks, s)
			}
			m.mu.Unlock()
			for _, s := range ticks {
				s.tick(evs)
			}
			clear(ticks)
		}
	}
}

// sendBatch is a pacer's packets of one tick for the sessions of one Mux,
// sent together by flush: one sendmmsg instead of one sendto each.
type sendBatch struct {
	mux   *Mux
	bc    *batchConn
	n     int
	bufs  [muxBatch][sendBufSize]byte
	pkts  [muxBatch][]byte
	dests [muxBatch]netip.AddrPort
	errs  [muxBatch]error
	from  [muxBatch]*Session
}

// sendBufSize holds an RTP header and a 20 ms G.711 frame or an event.
const sendBufSize = 256

// batch returns sc's batch for m's socket, flushing what another mux's
// sessions queued.
func (sc *sendScratch) batch(m *Mux) *sendBatch {
	b := sc.out
	if b == nil {
		b = new(sendBatch)
		sc.out = b
	}
	if b.mux != m {
		sc.flush()
		bc, err := newBatchConn(m.conn, muxBatch)
		if err != nil {
			return nil
		}
		b.mux, b.bc = m, bc
	}
	if b.n == muxBatch {
		sc.flush()
	}
	return b
}

// next is the buffer of the next packet.
func (b *sendBatch) next() []byte { return b.bufs[b.n][:] }

// push queues the packet just built in next, n bytes for dest.
func (b *sendBatch) push(s *Session, n int, dest netip.AddrPort) {
	b.pkts[b.n] = b.bufs[b.n][:n]
	b.dests[b.n], b.from[b.n] = dest, s
	b.n++
}

// flush sends the queued packets and counts each in its session.
func (sc *sendScratch) flush() {
	b := sc.out
	if b == nil || b.n == 0 {
		return
	}
	_ = b.bc.write(b.pkts[:b.n], b.dests[:b.n], b.errs[:b.n])
	for i := range b.n {
		b.from[i].sent1(b.errs[i], b.dests[i])
		b.from[i], b.errs[i], b.pkts[i] = nil, nil, nil
	}
	b.n = 0
}
