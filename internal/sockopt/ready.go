package sockopt

import (
	"context"
	"errors"
	"net"
	"sync"
)

// ErrNotServed: the server stopped before its first read.
var ErrNotServed = errors.New("the listener stopped before it served")

// ReadyConn is a PacketConn that closes Ready at its first ReadFrom. A
// server that reads a socket in a goroutine of its own does its set-up
// first: sipgo adds a UDP listener to its connection pool just before it
// reads, and a request sent before that would bind the address again. The
// first read is the signal that the set-up is done, with no polling.
type ReadyConn struct {
	net.PacketConn
	once  sync.Once
	ready chan struct{}
}

// NewReadyConn wraps c.
func NewReadyConn(c net.PacketConn) *ReadyConn {
	return &ReadyConn{PacketConn: c, ready: make(chan struct{})}
}

// Ready is closed once ReadFrom has been called.
func (c *ReadyConn) Ready() <-chan struct{} { return c.ready }

// ReadFrom signals Ready, then reads as the wrapped conn does.
func (c *ReadyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	return c.PacketConn.ReadFrom(b)
}

// Wait returns nil once Ready is closed, [ErrNotServed] if served (closed
// when the server's goroutine returns) is closed first, or ctx's cause.
func (c *ReadyConn) Wait(ctx context.Context, served <-chan struct{}) error {
	select {
	case <-c.ready:
		return nil
	case <-served:
		return ErrNotServed
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
