//go:build linux

package media

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchConn moves many datagrams per system call on one UDP socket:
// recvmmsg(2) and sendmmsg(2). Its headers, addresses and I/O vectors are
// allocated once, so that reading and writing a batch allocates nothing.
// A batchConn is used by one goroutine at a time.
type batchConn struct {
	rc    syscall.RawConn
	v6    bool // the socket is AF_INET6: addresses go out as sockaddr_in6
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names [][unix.SizeofSockaddrInet6]byte

	// The operation in progress, for the closures handed to rc.
	count, done int
	errno       syscall.Errno
	readFn      func(fd uintptr) bool
	writeFn     func(fd uintptr) bool
}

func newBatchConn(c *net.UDPConn, size int) (*batchConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batchConn{
		rc:    rc,
		v6:    c.LocalAddr().(*net.UDPAddr).IP.To4() == nil,
		hdrs:  make([]unix.Mmsghdr, size),
		iovs:  make([]unix.Iovec, size),
		names: make([][unix.SizeofSockaddrInet6]byte, size),
	}
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
		b.hdrs[i].Hdr.Name = &b.names[i][0]
	}
	b.readFn = b.recv
	b.writeFn = b.send
	return b, nil
}

// read receives up to len(bufs) datagrams (at most the batch size) into
// bufs, waiting for the first one (the socket's read deadline applies), and
// returns how many arrived; lens and froms get each one's length and
// source.
func (b *batchConn) read(bufs [][]byte, lens []int, froms []netip.AddrPort) (int, error) {
	n := min(len(bufs), len(b.hdrs))
	for i := range n {
		b.iovs[i].Base = &bufs[i][0]
		b.iovs[i].SetLen(len(bufs[i]))
		b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.hdrs[i].Hdr.Flags = 0
		b.hdrs[i].Len = 0
	}
	b.count, b.done, b.errno = n, 0, 0
	if err := b.rc.Read(b.readFn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, b.errno
	}
	for i := range b.done {
		lens[i] = int(b.hdrs[i].Len)
		froms[i] = sockaddrAddrPort(&b.names[i])
	}
	return b.done, nil
}

func (b *batchConn) recv(fd uintptr) bool { return b.mmsg(unix.SYS_RECVMMSG, fd) }

func (b *batchConn) send(fd uintptr) bool { return b.mmsg(unix.SYS_SENDMMSG, fd) }

// mmsg runs recvmmsg or sendmmsg (trap) on the prepared headers; false
// (EAGAIN) makes the RawConn wait until the socket is ready.
func (b *batchConn) mmsg(trap, fd uintptr) bool {
	r, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(b.count), unix.MSG_DONTWAIT, 0, 0)
	switch {
	case e == unix.EAGAIN || e == unix.EINTR:
		return false
	case e != 0:
		b.errno = e
	default:
		b.done = int(r)
	}
	return true
}

// write sends datagrams pkts[i] to dests[i] (at most the batch size per
// system call, as many calls as needed) and sets errs[i] for each one the
// kernel refused; the others left.
func (b *batchConn) write(pkts [][]byte, dests []netip.AddrPort, errs []error) error {
	for off := 0; off < len(pkts); {
		n := min(len(pkts)-off, len(b.hdrs))
		for i := range n {
			p := pkts[off+i]
			b.iovs[i].Base = &p[0]
			b.iovs[i].SetLen(len(p))
			b.hdrs[i].Hdr.Namelen = putSockaddr(&b.names[i], dests[off+i], b.v6)
			b.hdrs[i].Len = 0
		}
		b.count, b.done, b.errno = n, 0, 0
		if err := b.rc.Write(b.writeFn); err != nil {
			for i := range n {
				errs[off+i] = err
			}
			return err
		}
		for i := range b.done {
			errs[off+i] = nil
		}
		off += b.done
		if b.errno != 0 {
			// sendmmsg fails only on its first message: that one is
			// refused (an unreachable address, a full buffer), the rest
			// are tried again.
			errs[off] = b.errno
			off++
		}
	}
	return nil
}

// sockaddrAddrPort reads a sockaddr_in or sockaddr_in6 as the kernel wrote
// it: the family in host order, the port in network order.
func sockaddrAddrPort(sa *[unix.SizeofSockaddrInet6]byte) netip.AddrPort {
	port := binary.BigEndian.Uint16(sa[2:4])
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])).Unmap(), port)
	}
	return netip.AddrPort{}
}

// putSockaddr writes ap as the socket's family wants it and returns the
// address length.
func putSockaddr(sa *[unix.SizeofSockaddrInet6]byte, ap netip.AddrPort, v6 bool) uint32 {
	*sa = [unix.SizeofSockaddrInet6]byte{}
	binary.BigEndian.PutUint16(sa[2:4], ap.Port())
	if !v6 {
		binary.NativeEndian.PutUint16(sa[0:2], unix.AF_INET)
		a := ap.Addr().Unmap().As4()
		copy(sa[4:8], a[:])
		return unix.SizeofSockaddrInet4
	}
	binary.NativeEndian.PutUint16(sa[0:2], unix.AF_INET6)
	a := ap.Addr().As16()
	copy(sa[8:24], a[:])
	return unix.SizeofSockaddrInet6
}
