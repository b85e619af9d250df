//go:build linux

package media

import (
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReadersShared: 64 sessions add no goroutine each: their sockets are
// read by the shared readers (one per core), every packet reaches its own
// session, and the readers stop with the last session.
func TestReadersShared(t *testing.T) {
	before := runtime.NumGoroutine()
	const n = 64
	far := rawSocket(t)
	ss := make([]*Session, n)
	for i := range ss {
		ss[i] = listen(t, SessionConfig{})
		neg := pcmuEvents
		neg.Remote = addrOf(far)
		if err := ss[i].Start(neg); err != nil {
			t.Fatal(err)
		}
	}
	// Readers and pacers: one each per core, not one per session.
	if g := runtime.NumGoroutine() - before; g > 2*runtime.GOMAXPROCS(0) {
		t.Errorf("%d sessions started %d goroutines", n, g)
	}
	ph := newPhone(addrOf(far).String(), PCMU)
	pkts := ph.silence(100 * time.Millisecond)
	for i, s := range ss {
		for _, p := range pkts[:1+i%len(pkts)] {
			if _, err := far.WriteToUDPAddrPort(p.b, s.LocalAddr()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, s := range ss {
		want := uint64(1 + i%len(pkts))
		eventually(t, "packets read", func() bool { return s.Stats().Stream.Audio == want })
	}
	for _, s := range ss {
		s.Close()
	}
	readers.mu.Lock()
	running := readers.rs != nil
	readers.mu.Unlock()
	if running {
		t.Error("readers still running after the last session closed")
	}
}

// TestAddrPort: the source of a datagram as the net package reports it.
func TestAddrPort(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen string
		dial   string
	}{
		{"IPv4", "127.0.0.1:0", "127.0.0.1"},
		{"IPv6", "[::1]:0", "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.listen)))
			if err != nil {
				t.Skipf("no %s loopback: %v", tc.name, err)
			}
			defer c.Close()
			src, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(tc.dial), 0)))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			raw, _ := c.SyscallConn()
			var fd int
			_ = raw.Control(func(f uintptr) { fd = int(f) })
			var rsa unix.RawSockaddrAny
			buf := make([]byte, 64)
			if _, err := recvfrom(fd, buf, &rsa); err != unix.EAGAIN {
				t.Fatalf("empty socket: %v, want EAGAIN", err)
			}
			if _, err := src.WriteToUDPAddrPort([]byte("rtp"), c.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
			var n int
			for n, err = recvfrom(fd, buf, &rsa); err == unix.EAGAIN; n, err = recvfrom(fd, buf, &rsa) {
				runtime.Gosched()
			}
			if err != nil || string(buf[:n]) != "rtp" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
			got, ok := addrPort(&rsa)
			if want := src.LocalAddr().(*net.UDPAddr).AddrPort(); !ok || got != want {
				t.Errorf("source %v, want %v", got, want)
			}
			allocs := testing.AllocsPerRun(100, func() {
				_, _ = recvfrom(fd, buf, &rsa)
				addrPort(&rsa)
			})
			if allocs != 0 {
				t.Errorf("%v allocations per read", allocs)
			}
		})
	}
}
