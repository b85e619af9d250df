//go:build !linux

package media

import (
	"net"
	"net/netip"
)

// batchConn reads and writes one datagram per system call where
// recvmmsg/sendmmsg are not available.
type batchConn struct{ c *net.UDPConn }

func newBatchConn(c *net.UDPConn, size int) (*batchConn, error) { return &batchConn{c}, nil }

func (b *batchConn) read(bufs [][]byte, lens []int, froms []netip.AddrPort) (int, error) {
	n, from, err := b.c.ReadFromUDPAddrPort(bufs[0])
	if err != nil {
		return 0, err
	}
	lens[0], froms[0] = n, from
	return 1, nil
}

func (b *batchConn) write(pkts [][]byte, dests []netip.AddrPort, errs []error) error {
	for i, p := range pkts {
		_, errs[i] = b.c.WriteToUDPAddrPort(p, dests[i])
	}
	return nil
}
