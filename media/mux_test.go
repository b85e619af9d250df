package media

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
)

// newMux is a Mux on a free loopback port, closed at the test's end.
func newMux(t *testing.T) *Mux {
	t.Helper()
	m, err := ListenMux(context.Background(), MuxConfig{Addr: netip.AddrPortFrom(loopback, 0), ReadBuffer: 1 << 20, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestMuxTwoCalls: two calls on one shared port each get their own phone's
// key, send from the shared port (symmetric RTP), and a stranger's packets
// reach neither.
func TestMuxTwoCalls(t *testing.T) {
	m := newMux(t)
	ours1, ours2 := listen(t, SessionConfig{Mux: m}), listen(t, SessionConfig{Mux: m})
	if ours1.Local().Addr != m.Addr() || ours2.LocalAddr() != m.Addr() {
		t.Fatalf("advertised %v and %v, want the mux's %v", ours1.Local().Addr, ours2.LocalAddr(), m.Addr())
	}
	ph1, ph2 := listen(t, SessionConfig{}), listen(t, SessionConfig{})
	connect(t, ours1, ph1)
	connect(t, ours2, ph2)

	// A stranger sends a whole press to the shared port first.
	stranger := rawSocket(t)
	forged := newPhone(addrOf(stranger).String(), PCMU)
	for _, p := range concat(forged.silence(100*time.Millisecond), forged.press(101, dtmf.KeyHash, 100*time.Millisecond)) {
		if _, err := stranger.WriteToUDPAddrPort(p.b, m.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := ph1.SendDTMF(ctx, '1', 100*time.Millisecond, MethodRFC4733); err != nil {
		t.Fatal(err)
	}
	if err := ph2.SendDTMF(ctx, '2', 100*time.Millisecond, MethodInband); err != nil {
		t.Fatal(err)
	}
	if e := waitPress(t, ours1.Presses(), '1'); e.Source != dtmf.SourceRFC4733 {
		t.Errorf("call 1: %v", e)
	}
	if e := waitPress(t, ours2.Presses(), '2'); e.Source != dtmf.SourceInband {
		t.Errorf("call 2: %v", e)
	}
	// The stranger's datagrams were read before the phones' presses.
	if st := m.Stats(); st.Unknown < 10 || st.Sessions != 2 {
		t.Errorf("mux stats %+v: want the stranger's 10+ datagrams unknown, 2 sessions", st)
	}
	for _, s := range []*Session{ours1, ours2} {
		if st := s.Stats(); st.Stream.Dropped.Source != 0 || st.Sent == 0 {
			t.Errorf("stats %+v", st)
		}
	}
	// The phones lock onto the shared port: our RTP leaves from it.
	for i, ph := range []*Session{ph1, ph2} {
		if src, _, locks := ph.stream.Lock(); src != m.Addr() || locks != 1 {
			t.Errorf("phone %d locked onto %v (%d locks), want %v", i+1, src, locks, m.Addr())
		}
	}

	// A call that ended no longer receives; its phone's packets are
	// strangers' now.
	ours1.Close()
	before := m.Stats().Unknown
	if err := ph1.SendDTMF(ctx, '3', 100*time.Millisecond, MethodRFC4733); err != nil {
		t.Fatal(err)
	}
	if err := ph2.SendDTMF(ctx, '4', 100*time.Millisecond, MethodRFC4733); err != nil {
		t.Fatal(err)
	}
	waitPress(t, ours2.Presses(), '4')
	if st := m.Stats(); st.Unknown <= before || st.Sessions != 1 {
		t.Errorf("after call 1 ended: %+v (unknown before %d)", st, before)
	}
}

// TestMuxSameFarEnd: when two live calls' SDP name the same far end
// address, nothing tells their packets apart: both calls' packets are
// dropped as ambiguous, neither call gets the other's key; once one call
// ends, the address names one call again.
func TestMuxSameFarEnd(t *testing.T) {
	m := newMux(t)
	relay := rawSocket(t)
	a, b := listen(t, SessionConfig{Mux: m}), listen(t, SessionConfig{Mux: m})
	n := pcmuEvents
	n.Remote = addrOf(relay)
	for _, s := range []*Session{a, b} {
		if err := s.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	pa, pb := newPhone(addrOf(relay).String(), PCMU), newPhone(addrOf(relay).String(), PCMU)
	pb.ssrc = 0x55667788
	send := func(pkts []pkt) {
		t.Helper()
		for _, p := range pkts {
			if _, err := relay.WriteToUDPAddrPort(p.b, m.Addr()); err != nil {
				t.Fatal(err)
			}
		}
	}
	ambiguous := concat(pa.silence(60*time.Millisecond), pb.silence(60*time.Millisecond),
		pb.press(101, '9', 100*time.Millisecond), pa.press(101, '8', 100*time.Millisecond))
	send(ambiguous)
	// A third call with a far end of its own: once its key arrives, the
	// reader has taken everything sent before it (one queue, one reader).
	c := listen(t, SessionConfig{Mux: m})
	other := rawSocket(t)
	nc := pcmuEvents
	nc.Remote = addrOf(other)
	if err := c.Start(nc); err != nil {
		t.Fatal(err)
	}
	pc := newPhone(addrOf(other).String(), PCMU)
	for _, p := range concat(pc.silence(60*time.Millisecond), pc.press(101, '5', 100*time.Millisecond)) {
		if _, err := other.WriteToUDPAddrPort(p.b, m.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	waitPress(t, c.Presses(), '5')
	for name, s := range map[string]*Session{"a": a, "b": b} {
		select {
		case e := <-s.Presses():
			t.Errorf("%s got %v from an ambiguous address", name, e)
		default:
		}
	}
	b.Close()
	// a alone now: its phone's press reaches it, after the ambiguous ones
	// were read.
	send(concat(pa.silence(60*time.Millisecond), pa.press(101, '7', 100*time.Millisecond)))
	if e := waitPress(t, a.Presses(), '7'); e.Source != dtmf.SourceRFC4733 {
		t.Errorf("a: %v", e)
	}
	if st := m.Stats(); st.Ambiguous != uint64(len(ambiguous)) {
		t.Errorf("mux %+v: want %d ambiguous", st, len(ambiguous))
	}
}

func TestMuxRefusesLatching(t *testing.T) {
	m := newMux(t)
	if s, err := Listen(context.Background(), SessionConfig{Mux: m, Latch: true, Logger: quietLogger()}); err == nil {
		s.Close()
		t.Fatal("a session with latching on a mux: want an error")
	}
}

// TestMuxClosed: a session cannot join a closed mux.
func TestMuxClosed(t *testing.T) {
	m := newMux(t)
	m.Close()
	if s, err := Listen(context.Background(), SessionConfig{Mux: m, Logger: quietLogger()}); err == nil {
		s.Close()
		t.Fatal("want ErrClosed")
	}
}

// TestBatchConnAllocs: a batch written with sendmmsg and read back with
// recvmmsg allocates nothing, and every datagram arrives with its source.
func TestBatchConnAllocs(t *testing.T) {
	a, b := rawSocket(t), rawSocket(t)
	wa, err := newBatchConn(a, muxBatch)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := newBatchConn(b, muxBatch)
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var (
		pkts  [n][]byte
		dests [n]netip.AddrPort
		errs  [n]error
		bufs  [muxBatch][]byte
		lens  [muxBatch]int
		froms [muxBatch]netip.AddrPort
	)
	for i := range pkts {
		pkts[i] = []byte{byte(i), 1, 2, 3}
		dests[i] = addrOf(b)
	}
	for i := range bufs {
		bufs[i] = make([]byte, maxDatagram)
	}
	round := func() {
		if err := wa.write(pkts[:], dests[:], errs[:]); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < n; {
			k, err := rb.read(bufs[:], lens[:], froms[:])
			if err != nil {
				t.Fatal(err)
			}
			for i := range k {
				if froms[i] != addrOf(a) || lens[i] != 4 || bufs[i][0] != byte(got+i) {
					t.Fatalf("datagram %d: %d bytes from %v, first byte %d", got+i, lens[i], froms[i], bufs[i][0])
				}
			}
			got += k
		}
	}
	round()
	if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
		t.Errorf("%.1f allocations per batch of %d", allocs, n)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestMuxReceiveAllocs: routing a datagram to its session and through its
// stream allocates nothing.
func TestMuxReceiveAllocs(t *testing.T) {
	m := newMux(t)
	s := listen(t, SessionConfig{Mux: m})
	far := netip.MustParseAddrPort("127.0.0.1:40000")
	n := pcmuEvents
	n.Remote = far
	if err := s.Start(n); err != nil {
		t.Fatal(err)
	}
	pkts := newPhone(far.String(), PCMU).silence(10 * time.Second)
	evs := make([]dtmf.Event, 0, 16)
	i := 0
	allocs := testing.AllocsPerRun(400, func() {
		p := pkts[i]
		i++
		if r, _ := m.lookup(p.from); r != s {
			t.Fatalf("routed to %p, want %p", r, s)
		}
		evs = s.packet(evs, p.from, p.b)
	})
	if allocs != 0 {
		t.Errorf("%.2f allocations per packet", allocs)
	}
	if st := s.Stats().Stream; st.Audio < 400 {
		t.Errorf("stream took %d audio packets", st.Audio)
	}
}

// BenchmarkSendPacket: one RTP-sized datagram on loopback by sendto (a
// socket per call) against sendmmsg in batches of 12 and 64 (a pacer's
// tick on a Mux at 2,000 calls: about 100 packets a millisecond).
func BenchmarkSendPacket(b *testing.B) {
	src, dst := rawSocket(b), rawSocket(b)
	_ = dst.SetReadBuffer(64 << 20)
	go func() { // drain, so that the kernel does not drop
		buf := make([]byte, 2048)
		for {
			if _, _, err := dst.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	pkt := make([]byte, 172)
	to := addrOf(dst)
	b.Run("sendto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.WriteToUDPAddrPort(pkt, to); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, n := range []int{12, 64} {
		b.Run(fmt.Sprintf("sendmmsg_%d", n), func(b *testing.B) {
			bc, err := newBatchConn(src, muxBatch)
			if err != nil {
				b.Fatal(err)
			}
			pkts, dests, errs := make([][]byte, n), make([]netip.AddrPort, n), make([]error, n)
			for i := range pkts {
				pkts[i], dests[i] = pkt, to
			}
			b.ReportAllocs()
			sent := 0
			for b.Loop() {
				if sent%n == 0 {
					if err := bc.write(pkts, dests, errs); err != nil {
						b.Fatal(err)
					}
				}
				sent++
			}
		})
	}
}
