//go:build !linux

package sockopt

import "net"

// sizeReadBuffer asks for a receive buffer of want bytes; other systems
// don't say what they granted, so it reports want.
func sizeReadBuffer(c *net.UDPConn, want int) (int, error) {
	return want, c.SetReadBuffer(want)
}
