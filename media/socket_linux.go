//go:build linux

package media

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// socket is the session's UDP socket as a bare descriptor, outside the
// runtime's poller: the readers (reader_linux.go) wait for it with their
// own epoll sets and the pacers send on it with one non-blocking sendto per
// packet. In the poller, every datagram would also wake the runtime's
// netpoll for nobody, and a send would go through its locks. A full send
// buffer drops the packet and counts it as a send error rather than
// stalling the pacer, which sends for hundreds of other calls.
type socket struct {
	fd  int
	fam int // unix.AF_INET or unix.AF_INET6
}

// newSocket takes over c's socket (c is closed; the duplicate keeps the
// port) bound on ip.
func newSocket(c *net.UDPConn, ip netip.Addr) (socket, error) {
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		return socket{}, fmt.Errorf("media: socket: %w", err)
	}
	fd, derr := -1, error(nil)
	if err := raw.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return socket{}, fmt.Errorf("media: socket: %w", err)
	}
	if derr != nil {
		return socket{}, fmt.Errorf("media: socket: %w", derr)
	}
	// O_NONBLOCK is on the shared file description, set by the net package.
	k := socket{fd: fd, fam: unix.AF_INET6}
	if ip.Is4() {
		k.fam = unix.AF_INET
	}
	return k, nil
}

// writeTo sends b to to without blocking and without allocating.
func (k socket) writeTo(b []byte, to netip.AddrPort) error {
	var (
		sa4 unix.RawSockaddrInet4
		sa6 unix.RawSockaddrInet6
		sa  unsafe.Pointer
		l   uintptr
	)
	a := to.Addr()
	switch {
	case k.fam == unix.AF_INET:
		if !a.Unmap().Is4() {
			return fmt.Errorf("media: send to %v from an IPv4 socket", to)
		}
		sa4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], to.Port())
		sa4.Addr = a.Unmap().As4()
		sa, l = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	default:
		sa6.Family = unix.AF_INET6
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa6.Port))[:], to.Port())
		sa6.Addr = a.As16() // an IPv4 address as IPv4-mapped
		if z := a.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa6.Scope_id = uint32(ifi.Index)
			}
		}
		sa, l = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	}
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(k.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_DONTWAIT, uintptr(sa), l)
	if e != 0 {
		return fmt.Errorf("media: send to %v: %w", to, e)
	}
	return nil
}

func (k socket) close() error {
	if err := unix.Close(k.fd); err != nil {
		return fmt.Errorf("media: close socket: %w", err)
	}
	return nil
}
