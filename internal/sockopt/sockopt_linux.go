package sockopt

import (
	"net"

	"golang.org/x/sys/unix"
)

// sizeReadBuffer asks for a receive buffer of want bytes on c and returns
// what the kernel granted. SO_RCVBUF is capped at net.core.rmem_max;
// with CAP_NET_ADMIN, SO_RCVBUFFORCE is not, so that is tried first
// (socket(7)). The kernel reports twice the usable size it books (it
// counts its own overhead), hence the halving.
func sizeReadBuffer(c *net.UDPConn, want int) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var got int
	var serr error
	err = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, want) != nil {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, want); serr != nil {
				return
			}
		}
		var v int
		v, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		got = v / 2
	})
	if err != nil {
		return 0, err
	}
	return got, serr
}
