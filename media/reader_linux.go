//go:build linux

package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hashcall/hashcall/dtmf"
)

// On Linux the sockets of every session are read by a few readers (one per
// core, runtime.GOMAXPROCS), each an epoll set of sockets, instead of one
// goroutine per call parked on its socket. A goroutine per call cost, for
// every 20 ms packet, a failed read, a park, a wake-up through the
// runtime's poller and a second read (the profile at 500 calls: the
// scheduler about 30 % of hashcall's CPU, recvfrom twice per packet); a
// reader is woken by epoll for all its ready sockets at once and reads each
// datagram with one non-blocking recvfrom, into its own buffer, without
// allocating. Every tickInterval it ticks its sessions' streams for RFC 4733
// timeouts. A session is taken off its reader (EPOLL_CTL_DEL, under the
// reader's lock) before its socket closes, so a reader never reads a
// closed or reused descriptor for it; the last session stops the readers
// and waits for them.

// receiverState is a Session's registration with a reader, under
// readers.mu.
type receiverState struct {
	rd *rxReader
	fd int
}

// coalesce is how long a reader lets packets gather after a batch.
const coalesce = time.Millisecond

// rxReader is one reader goroutine and its epoll set.
type rxReader struct {
	epfd, efd int // the epoll set; an eventfd that wakes it to stop
	done      chan struct{}

	mu       sync.Mutex
	sessions map[int32]*Session // by socket descriptor
	stopped  bool
	evs      []dtmf.Event
	buf      [maxDatagram]byte
	events   [32]unix.EpollEvent
	rsa      unix.RawSockaddrAny
}

// readers are the running readers, started with the first session.
var readers struct {
	mu sync.Mutex
	rs []*rxReader
	n  int // sessions registered
}

// startReceiving registers the session's socket with the least loaded
// reader, starting the readers if none runs.
func (s *Session) startReceiving() error {
	fd := s.sock.fd
	readers.mu.Lock()
	defer readers.mu.Unlock()
	if readers.rs == nil {
		rs, err := startReaders(runtime.GOMAXPROCS(0))
		if err != nil {
			return err
		}
		readers.rs = rs
	}
	r := readers.rs[0]
	for _, o := range readers.rs[1:] {
		if len(o.sessions) < len(r.sessions) { // both under readers.mu's writers
			r = o
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		if readers.n == 0 {
			stopReaders(readers.rs)
			readers.rs = nil
		}
		return fmt.Errorf("media: epoll: %w", err)
	}
	r.sessions[int32(fd)] = s
	s.rd, s.fd = r, fd
	readers.n++
	return nil
}

// stopReceiving takes the session's socket off its reader; when it
// returns, the reader does not read it again. The last session stops the
// readers.
func (s *Session) stopReceiving() {
	readers.mu.Lock()
	r := s.rd
	if r == nil {
		readers.mu.Unlock()
		return
	}
	s.rd = nil
	r.mu.Lock()
	_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	delete(r.sessions, int32(s.fd))
	r.mu.Unlock()
	readers.n--
	var stop []*rxReader
	if readers.n == 0 {
		stop, readers.rs = readers.rs, nil
	}
	readers.mu.Unlock()
	stopReaders(stop)
}

func startReaders(n int) ([]*rxReader, error) {
	var rs []*rxReader
	for range n {
		r, err := newReader()
		if err != nil {
			stopReaders(rs)
			return nil, err
		}
		rs = append(rs, r)
		go r.run()
	}
	return rs, nil
}

func newReader() (*rxReader, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("media: epoll: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("media: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(efd)
		unix.Close(epfd)
		return nil, fmt.Errorf("media: epoll: %w", err)
	}
	return &rxReader{epfd: epfd, efd: efd, done: make(chan struct{}), sessions: map[int32]*Session{}, evs: make([]dtmf.Event, 0, 16)}, nil
}

// stopReaders stops rs and waits for them.
func stopReaders(rs []*rxReader) {
	for _, r := range rs {
		r.mu.Lock()
		r.stopped = true
		r.mu.Unlock()
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(r.efd, one[:])
	}
	for _, r := range rs {
		<-r.done
		unix.Close(r.efd)
		unix.Close(r.epfd)
	}
}

// run is the reader goroutine.
func (r *rxReader) run() {
	defer close(r.done)
	next := time.Now().Add(tickInterval)
	for {
		wait := max(time.Until(next), 0)
		n, err := unix.EpollWait(r.epfd, r.events[:], int((wait+time.Millisecond-1)/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return // the set is gone: nothing left to read
		}
		r.mu.Lock()
		if r.stopped {
			r.mu.Unlock()
			return
		}
		for i := range max(n, 0) {
			if s := r.sessions[r.events[i].Fd]; s != nil {
				r.read(s, int(r.events[i].Fd))
			}
		}
		if now := time.Now(); !now.Before(next) {
			for _, s := range r.sessions {
				s.tick(r.evs)
			}
			next = now.Add(tickInterval)
		}
		r.mu.Unlock()
		if n > 0 && n < len(r.events) {
			// Let the next packets gather: one wake-up a millisecond reads
			// every socket that became ready meanwhile, instead of one
			// wake-up per packet. A key press is decided tens of
			// milliseconds in; a millisecond does not show.
			// A kernel sleep, not a runtime timer: timers wake on the
			// poller's millisecond grid, with the pacers, and the
			// pacers would wait for the batch.
			ts := unix.NsecToTimespec(int64(coalesce))
			_ = unix.Nanosleep(&ts, nil)
		}
	}
}

// read reads one datagram of s's socket; r.mu is held. epoll is level
// triggered: another datagram waiting makes the next wait return at once.
func (r *rxReader) read(s *Session, fd int) {
	n, err := recvfrom(fd, r.buf[:], &r.rsa)
	if err != nil {
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			s.log.Warn("rtp receive", "err", err)
		}
		return
	}
	from, ok := addrPort(&r.rsa)
	if !ok {
		return
	}
	r.evs = s.packet(r.evs, from, r.buf[:n])
}

// recvfrom reads one datagram without blocking and without allocating:
// the socket is non-blocking and the source lands in rsa.
func recvfrom(fd int, p []byte, rsa *unix.RawSockaddrAny) (int, error) {
	l := uint32(unix.SizeofSockaddrAny)
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(rsa)), uintptr(unsafe.Pointer(&l)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// addrPort is the address in rsa, as the net package gives it for the
// socket's family (an IPv4-mapped address stays mapped on an IPv6 socket).
func addrPort(rsa *unix.RawSockaddrAny) (netip.AddrPort, bool) {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port), true
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		ip := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 { // link-local: rare, and the name costs an allocation
			zone := strconv.FormatUint(uint64(sa.Scope_id), 10)
			if ifi, err := net.InterfaceByIndex(int(sa.Scope_id)); err == nil {
				zone = ifi.Name
			}
			ip = ip.WithZone(zone)
		}
		return netip.AddrPortFrom(ip, port), true
	}
	return netip.AddrPort{}, false
}
