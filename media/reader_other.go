//go:build !linux

package media

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/hashcall/hashcall/dtmf"
)

// receiverState is empty: the session's own goroutine reads its socket.
type receiverState struct{}

// socket is the session's UDP socket: off Linux the net package's.
type socket struct{ c *net.UDPConn }

func newSocket(c *net.UDPConn, _ netip.Addr) (socket, error) { return socket{c}, nil }

func (k socket) writeTo(b []byte, to netip.AddrPort) error {
	_, err := k.c.WriteToUDPAddrPort(b, to)
	return err
}

func (k socket) close() error { return k.c.Close() }

// startReceiving starts the session's receive goroutine: off Linux each
// session reads its own socket.
func (s *Session) startReceiving() error {
	s.wg.Add(1)
	go s.receive()
	return nil
}

// stopReceiving is a no-op: closing the socket ends the goroutine.
func (s *Session) stopReceiving() {}

// receive is the receive goroutine: it drains the socket from Listen to
// Close.
func (s *Session) receive() {
	defer s.wg.Done()
	buf := make([]byte, maxDatagram)
	evs := make([]dtmf.Event, 0, 16)
	var deadline time.Time
	for {
		// The read deadline is refreshed lazily, not per packet; it only
		// wakes the loop to tick RFC 4733 timeouts when packets stop.
		if t := time.Now(); deadline.Sub(t) < tickInterval/2 {
			deadline = t.Add(tickInterval)
			_ = s.sock.c.SetReadDeadline(deadline)
		}
		n, from, err := s.sock.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				deadline = time.Time{}
				s.tick(evs)
				continue
			}
			s.log.Warn("rtp receive", "err", err)
			continue
		}
		evs = s.packet(evs, from, buf[:n])
	}
}
