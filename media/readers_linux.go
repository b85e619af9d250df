//go:build linux

package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"golang.org/x/sys/unix"
)

// The receivers read every session's socket from one goroutine and one
// epoll set per process (on Linux) instead of a goroutine per call parked
// in the runtime's poller: a datagram then costs one recvmmsg instead of a
// goroutine wake-up, a read and a read that finds the socket empty. The
// epoll set is level-triggered; each ready socket gives up to recvBatch
// datagrams per system call. Every tickInterval the receiver ticks its
// sessions for RFC 4733 timeouts, as a session's own goroutine does when
// its packets stop. The receiver starts with the first session and stops
// (its goroutine ended) when the last one leaves.
//
// A socket is read through its syscall.RawConn, so that a Close racing the
// read waits for it to end and the descriptor is never reused under it; a
// session leaves the set before its socket closes.

// recvBatch is how many datagrams one read of a socket takes at most.
const recvBatch = 8

type receiver struct {
	epfd, wake int // the epoll set; an eventfd that wakes it to stop
	wg         sync.WaitGroup

	mu       sync.Mutex
	sessions map[uint32]*recvEntry
	nextID   uint32
	stopping bool
}

// recvEntry is a session's place in the set.
type recvEntry struct {
	s  *Session
	id uint32
	rc syscall.RawConn
}

var receivers struct {
	mu sync.Mutex
	r  *receiver
	n  int
}

// joinReceiver adds s's socket to the receiver, starting it if needed.
func joinReceiver(s *Session) (*recvEntry, error) {
	receivers.mu.Lock()
	defer receivers.mu.Unlock()
	if receivers.r == nil {
		r, err := newReceiver()
		if err != nil {
			return nil, err
		}
		receivers.r = r
	}
	r := receivers.r
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	for r.nextID++; r.nextID == 0 || r.sessions[r.nextID] != nil; r.nextID++ {
	}
	e := &recvEntry{s: s, id: r.nextID, rc: rc}
	r.sessions[e.id] = e
	r.mu.Unlock()
	var cerr error
	err = rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(e.id)}
		cerr = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		r.mu.Lock()
		delete(r.sessions, e.id)
		r.mu.Unlock()
		if receivers.n == 0 {
			r.halt()
			receivers.r = nil
		}
		return nil, fmt.Errorf("media: epoll: %w", err)
	}
	receivers.n++
	return e, nil
}

// leaveReceiver takes e's socket out of the set: no read of it starts after
// leaveReceiver returns. The last session stops the receiver and waits.
func leaveReceiver(e *recvEntry) {
	receivers.mu.Lock()
	r := receivers.r
	r.mu.Lock()
	delete(r.sessions, e.id)
	r.mu.Unlock()
	_ = e.rc.Control(func(fd uintptr) {
		_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
	receivers.n--
	last := receivers.n == 0
	if last {
		receivers.r = nil
	}
	receivers.mu.Unlock()
	if last {
		r.halt()
	}
}

func newReceiver() (*receiver, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("media: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("media: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // id 0: the wake-up
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("media: epoll: %w", err)
	}
	r := &receiver{epfd: epfd, wake: wake, sessions: map[uint32]*recvEntry{}}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// halt stops the goroutine, waits for it and frees the set.
func (r *receiver) halt() {
	r.mu.Lock()
	r.stopping = true
	r.mu.Unlock()
	var one [8]byte
	one[0] = 1
	_, _ = unix.Write(r.wake, one[:])
	r.wg.Wait()
	unix.Close(r.epfd)
	unix.Close(r.wake)
}

func (r *receiver) run() {
	defer r.wg.Done()
	var (
		events [128]unix.EpollEvent
		ready  []*recvEntry
		bufs   [recvBatch][]byte
		lens   [recvBatch]int
		froms  [recvBatch]netip.AddrPort
		evs    = make([]dtmf.Event, 0, 16)
		ticks  []*recvEntry
	)
	// One set of headers for every socket: the reads are one at a time.
	bc := &batchConn{nowait: true}
	bc.init(recvBatch)
	store := make([]byte, recvBatch*maxDatagram)
	for i := range bufs {
		bufs[i] = store[i*maxDatagram : (i+1)*maxDatagram : (i+1)*maxDatagram]
	}
	lastTick := time.Now()
	for {
		wait := max(0, tickInterval-time.Since(lastTick))
		n, err := unix.EpollWait(r.epfd, events[:], int((wait+time.Millisecond-1)/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			n = 0
		}
		ready = ready[:0]
		r.mu.Lock()
		if r.stopping {
			r.mu.Unlock()
			return
		}
		for i := range max(n, 0) {
			if e := r.sessions[uint32(events[i].Fd)]; e != nil {
				ready = append(ready, e)
			}
		}
		r.mu.Unlock()
		for _, e := range ready {
			bc.rc = e.rc
			k, err := bc.read(bufs[:], lens[:], froms[:])
			if err != nil {
				if !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.EAGAIN) {
					e.s.log.Warn("rtp receive", "err", err)
				}
				continue
			}
			for i := range k {
				evs = e.s.packet(evs, froms[i], bufs[i][:lens[i]])
			}
		}
		clear(ready)
		if now := time.Now(); now.Sub(lastTick) >= tickInterval {
			lastTick = now
			r.mu.Lock()
			ticks = ticks[:0]
			for _, e := range r.sessions {
				ticks = append(ticks, e)
			}
			r.mu.Unlock()
			for _, e := range ticks {
				e.s.tick(evs)
			}
			clear(ticks)
		}
	}
}
