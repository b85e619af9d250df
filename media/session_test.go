package media

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/internal/testwait"
	"github.com/pion/rtp"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// testPorts is a range for the tests' sessions; ports in use by anyone
// else on the machine are skipped by Listen.
var testPorts = PortRange{Low: 41000, High: 48999}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func listen(t *testing.T, cfg SessionConfig) *Session {
	t.Helper()
	if !cfg.IP.IsValid() {
		cfg.IP = loopback
	}
	if cfg.Ports == (PortRange{}) {
		cfg.Ports = testPorts
	}
	cfg.Logger = quietLogger()
	s, err := Listen(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// connect runs the offer/answer between ours (the caller) and phone and
// starts both.
func connect(t *testing.T, ours, phone *Session) (Negotiated, Negotiated) {
	t.Helper()
	offer, err := ours.Local().Offer()
	if err != nil {
		t.Fatal(err)
	}
	answer, pn, err := phone.Local().Answer(offer)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ours.Local().ParseAnswer(answer)
	if err != nil {
		t.Fatal(err)
	}
	if err := ours.Start(n); err != nil {
		t.Fatal(err)
	}
	if err := phone.Start(pn); err != nil {
		t.Fatal(err)
	}
	return n, pn
}

// waitPress waits for the start and end reports of key.
func waitPress(t *testing.T, ch <-chan dtmf.Event, key dtmf.Key) dtmf.Event {
	t.Helper()
	var start dtmf.Event
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-ch:
			if e.Key != key {
				t.Fatalf("unexpected report %v", e)
			}
			if !e.Ended {
				start = e
				continue
			}
			if start.Key != key {
				t.Fatalf("end before start: %v", e)
			}
			return start
		case <-timeout:
			t.Fatalf("no press of %v within 5 s", key)
		}
	}
}

// drain closes s and returns the reports left in its Presses channel.
func drain(s *Session) []dtmf.Event {
	s.Close()
	var out []dtmf.Event
	for e := range s.Presses() {
		out = append(out, e)
	}
	return out
}

// watchJobs returns a channel that receives every job s hands to its
// sender from now on (a Play or SendDTMF queued).
func watchJobs(s *Session) <-chan *job {
	ch := make(chan *job, 16)
	s.mu.Lock()
	s.onJob = func(j *job) { ch <- j }
	s.mu.Unlock()
	return ch
}

// queued returns the next job from watchJobs, failing t after 5 s.
func queued(t *testing.T, jobs <-chan *job, what string) *job {
	t.Helper()
	select {
	case j := <-jobs:
		return j
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// packetWaiters holds the waker of each session awaitStats waited on: one
// per session, reused, so that waiting allocates nothing (the allocation
// tests wait on it).
var packetWaiters sync.Map // *Session → *waker

// awaitStats waits until cond holds, checking it again after every packet
// s reads, and fails t after 5 s (what names the awaited state). One
// goroutine awaits a session at a time.
func awaitStats(t *testing.T, s *Session, what string, cond func() bool) {
	t.Helper()
	v, ok := packetWaiters.Load(s)
	if !ok {
		w := newWaker()
		v = w
		packetWaiters.Store(s, w)
		t.Cleanup(func() { packetWaiters.Delete(s) })
		s.mu.Lock()
		s.onPacket = w.signal
		s.mu.Unlock()
	}
	v.(*waker).await(t, what, cond)
}

// rawSocket is a plain UDP socket on loopback, for capturing and forging.
func rawSocket(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// readRTP reads one RTP packet from c.
func readRTP(t *testing.T, c *net.UDPConn) (rtp.Header, []byte) {
	t.Helper()
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	var h rtp.Header
	m, err := h.Unmarshal(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return h, buf[m:n]
}

// TestSessionDTMF: the phone presses # by RFC 4733 and in-band, in PCMU and
// PCMA, over real UDP; we report exactly one # with the right source.
func TestSessionDTMF(t *testing.T) {
	for _, tc := range []struct {
		method DTMFMethod
		codec  Codec
		source dtmf.Source
	}{
		{MethodRFC4733, PCMU, dtmf.SourceRFC4733},
		{MethodRFC4733, PCMA, dtmf.SourceRFC4733},
		{MethodInband, PCMU, dtmf.SourceInband},
		{MethodInband, PCMA, dtmf.SourceInband},
	} {
		t.Run(string(tc.method)+"/"+tc.codec.Name, func(t *testing.T) {
			ours := listen(t, SessionConfig{})
			phone := listen(t, SessionConfig{Codecs: []Codec{tc.codec}})
			n, _ := connect(t, ours, phone)
			if n.Codec != tc.codec || !n.HaveEvents {
				t.Fatalf("negotiated %+v", n)
			}
			if err := phone.SendDTMF(context.Background(), '#', 120*time.Millisecond, tc.method); err != nil {
				t.Fatal(err)
			}
			e := waitPress(t, ours.Presses(), '#')
			if e.Source != tc.source {
				t.Errorf("source %v, want %v", e.Source, tc.source)
			}
			rest := drain(ours)
			if len(starts(rest, '#')) != 0 {
				t.Errorf("more presses: %v", rest)
			}
			st := ours.Stats()
			if st.Stream.Received == 0 || st.Sent == 0 || st.Stream.Dropped.Total() != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestSessionForgedEvents: a third party sends a full # press at our port;
// it never counts.
func TestSessionForgedEvents(t *testing.T) {
	for _, latch := range []bool{false, true} {
		name := "strict"
		if latch {
			name = "latching"
		}
		t.Run(name, func(t *testing.T) {
			ours := listen(t, SessionConfig{Latch: latch})
			phone := listen(t, SessionConfig{})
			connect(t, ours, phone)
			// The phone's silence fixes (or latches) the source first.
			awaitStats(t, ours, "audio from the phone", func() bool { return ours.Stats().Stream.Audio > 0 })

			forger := rawSocket(t)
			enc := dtmf.NewEncoder(dtmf.EncoderConfig{SSRC: 42, Sequence: 1, Timestamp: 1000, Interval: FrameDuration})
			pkts := enc.Press(nil, '#', 200*time.Millisecond)
			for _, p := range pkts {
				buf := make([]byte, p.MarshalSize())
				n, _ := p.MarshalTo(buf)
				if _, err := forger.WriteToUDPAddrPort(buf[:n], ours.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			awaitStats(t, ours, "forged packets dropped", func() bool {
				return ours.Stats().Stream.Dropped.Source >= uint64(len(pkts))
			})
			// A genuine press still gets through afterwards.
			if err := phone.SendDTMF(context.Background(), '1', 100*time.Millisecond, MethodRFC4733); err != nil {
				t.Fatal(err)
			}
			waitPress(t, ours.Presses(), '1')
			if rest := drain(ours); len(rest) != 0 {
				t.Errorf("reports %v", rest)
			}
		})
	}
}

// TestSessionEarly: packets before Start (early media, a # in it) are read,
// dropped and counted; none makes a key.
func TestSessionEarly(t *testing.T) {
	ours := listen(t, SessionConfig{})
	far := rawSocket(t)
	ph := newPhone(addrOf(far).String(), PCMU)
	early := concat(ph.audio(hashTone()), ph.press(101, '#', 200*time.Millisecond))
	for _, p := range early {
		if _, err := far.WriteToUDPAddrPort(p.b, ours.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	ours.Info('#', 250*time.Millisecond) // an early INFO as well
	want := uint64(len(early) + 1)
	awaitStats(t, ours, "early packets", func() bool { return ours.Stats().Stream.Dropped.Early == want })

	n := Negotiated{Remote: addrOf(far), Codec: PCMU, RecvCodecs: []Codec{PCMU}, HaveEvents: true, SendEventPT: 101, RecvEventPT: 101, EventClockRate: 8000}
	if err := ours.Start(n); err != nil {
		t.Fatal(err)
	}
	after := ph.silence(200 * time.Millisecond)
	for _, p := range after {
		if _, err := far.WriteToUDPAddrPort(p.b, ours.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	awaitStats(t, ours, "audio after Start", func() bool { return ours.Stats().Stream.Audio == uint64(len(after)) })
	if rest := drain(ours); len(rest) != 0 {
		t.Errorf("early media made reports: %v", rest)
	}
	if st := ours.Stats(); st.Stream.Dropped.Early != want || st.Stream.Presses != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSessionInfo: SIP INFO keys go through the stream and the combiner.
func TestSessionInfo(t *testing.T) {
	ours := listen(t, SessionConfig{})
	phone := listen(t, SessionConfig{})
	connect(t, ours, phone)
	ours.Info('#', 250*time.Millisecond)
	e := waitPress(t, ours.Presses(), '#')
	if e.Source != dtmf.SourceSIPInfo {
		t.Errorf("source %v", e.Source)
	}
}

// fakeSession is our session on a fake clock sending to a raw socket.
func fakeSession(t *testing.T, n Negotiated) (*Session, *fakeClock, *net.UDPConn) {
	t.Helper()
	clk := newFakeClock()
	s := listen(t, SessionConfig{Clock: clk})
	far := rawSocket(t)
	n.Remote = addrOf(far)
	if err := s.Start(n); err != nil {
		t.Fatal(err)
	}
	return s, clk, far
}

// step advances the fake clock by d and waits until the sender sleeps
// again.
func step(t *testing.T, clk *fakeClock, d time.Duration) {
	t.Helper()
	clk.Advance(d)
	clk.waitAsleep(t)
}

var pcmuEvents = Negotiated{Codec: PCMU, RecvCodecs: []Codec{PCMU}, HaveEvents: true, SendEventPT: 101, RecvEventPT: 101, EventClockRate: 8000, Direction: SendRecv}

// TestSessionPlay: a 1 s prompt is 50 packets, sequence +1 and timestamp
// +160 each, the marker bit on the first packet sent and on the first of
// the prompt only; after a stall the due packets catch up in order.
func TestSessionPlay(t *testing.T) {
	s, clk, far := fakeSession(t, pcmuEvents)
	h0, p0 := readRTP(t, far) // slot 0, sent at Start
	if !h0.Marker || h0.PayloadType != 0 || !bytes.Equal(p0, silenceFrame(PCMU)) {
		t.Fatalf("first packet %+v %x", h0, p0[:4])
	}
	clk.waitAsleep(t)

	prompt := dtmfTone('5', time.Second)
	done := make(chan error, 1)
	jobs := watchJobs(s)
	go func() { done <- s.Play(context.Background(), prompt) }()
	queued(t, jobs, "the playback to be queued")
	want := PCMU.encode(nil, prompt)
	prev := h0
	for i := range 52 {
		step(t, clk, FrameDuration)
		h, p := readRTP(t, far)
		if h.SequenceNumber != prev.SequenceNumber+1 || h.Timestamp != prev.Timestamp+FrameSamples || h.SSRC != h0.SSRC {
			t.Fatalf("packet %d: %+v after %+v", i, h, prev)
		}
		if h.Marker != (i == 0) {
			t.Fatalf("packet %d: marker %v", i, h.Marker)
		}
		if i < 50 && !bytes.Equal(p, want[i*FrameSamples:(i+1)*FrameSamples]) {
			t.Fatalf("packet %d: wrong audio", i)
		}
		if i >= 50 && !bytes.Equal(p, silenceFrame(PCMU)) {
			t.Fatalf("packet %d: not silence", i)
		}
		if i == 49 {
			if err := <-done; err != nil {
				t.Fatalf("Play: %v", err)
			}
		}
		prev = h
	}

	// The process stalls for 100 ms: the five due packets leave at once, in
	// order, without a gap in sequence or timestamps (none skipped), then
	// the next is on schedule again. Four of them left a frame or more late.
	step(t, clk, 5*FrameDuration+3*time.Millisecond)
	for i := range 5 {
		h, _ := readRTP(t, far)
		if h.SequenceNumber != prev.SequenceNumber+1 || h.Timestamp != prev.Timestamp+FrameSamples {
			t.Fatalf("after a stall, packet %d: %+v after %+v", i, h, prev)
		}
		prev = h
	}
	step(t, clk, FrameDuration-3*time.Millisecond)
	h2, _ := readRTP(t, far)
	if h2.SequenceNumber != prev.SequenceNumber+1 || h2.Timestamp != prev.Timestamp+FrameSamples {
		t.Fatalf("not on schedule: %+v after %+v", h2, prev)
	}
	st := s.Stats()
	if st.Sent != 59 || st.Late != 4 || st.Skipped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSessionSendRFC4733: telephone-events interleave with our audio in one
// SSRC and sequence space, timestamped at the event's start (RFC 4733
// §2.5.1), and audio resumes after them.
func TestSessionSendRFC4733(t *testing.T) {
	s, clk, far := fakeSession(t, pcmuEvents)
	prev, _ := readRTP(t, far)
	clk.waitAsleep(t)
	done := make(chan error, 1)
	jobs := watchJobs(s)
	go func() { done <- s.SendDTMF(context.Background(), '#', 100*time.Millisecond, MethodRFC4733) }()
	queued(t, jobs, "the press to be queued")
	start := prev.Timestamp + FrameSamples
	wantDur := []uint16{0, 160, 320, 480, 640, 800, 800, 800}
	for i, d := range wantDur {
		step(t, clk, FrameDuration)
		h, b := readRTP(t, far)
		var p dtmf.Payload
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if h.PayloadType != 101 || h.SequenceNumber != prev.SequenceNumber+1 || h.Timestamp != start || h.SSRC != prev.SSRC || h.Marker != (i == 0) {
			t.Fatalf("event packet %d: %+v after %+v", i, h, prev)
		}
		if p.Event != 11 || p.Duration != d || p.End != (i >= 5) {
			t.Fatalf("event packet %d: %v", i, p)
		}
		prev = h
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	step(t, clk, FrameDuration)
	h, _ := readRTP(t, far)
	if h.PayloadType != 0 || h.SequenceNumber != prev.SequenceNumber+1 || h.Timestamp != start+uint32(len(wantDur))*FrameSamples {
		t.Fatalf("audio after the event: %+v", h)
	}
}

// TestSessionHold: on hold nothing is sent; afterwards the timestamps show
// the time that passed and the marker starts the talkspurt.
func TestSessionHold(t *testing.T) {
	s, clk, far := fakeSession(t, pcmuEvents)
	prev, _ := readRTP(t, far)
	clk.waitAsleep(t)
	s.mu.Lock()
	n := s.neg
	s.mu.Unlock()
	n.Hold = true
	if err := s.Update(n); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		step(t, clk, FrameDuration)
	}
	n.Hold = false
	if err := s.Update(n); err != nil {
		t.Fatal(err)
	}
	step(t, clk, FrameDuration)
	h, _ := readRTP(t, far)
	if !h.Marker || h.SequenceNumber != prev.SequenceNumber+1 || h.Timestamp != prev.Timestamp+4*FrameSamples {
		t.Fatalf("after hold: %+v after %+v", h, prev)
	}
}

// TestSessionStopAndErrors covers Stop, cancellation and misuse.
func TestSessionStopAndErrors(t *testing.T) {
	s, clk, far := fakeSession(t, pcmuEvents)
	readRTP(t, far)
	clk.waitAsleep(t)

	if err := s.Start(pcmuEvents); err == nil {
		t.Error("second Start succeeded")
	}
	if err := s.SendDTMF(context.Background(), '#', 0, "info"); err == nil {
		t.Error("unknown method accepted")
	}
	if err := s.SendDTMF(context.Background(), 'x', 0, MethodRFC4733); err == nil {
		t.Error("invalid key accepted")
	}

	// Stop ends a playback at the next frame.
	jobs := watchJobs(s)
	done := make(chan error, 1)
	go func() { done <- s.Play(context.Background(), dtmfTone('1', 5*time.Second)) }()
	queued(t, jobs, "the playback to be queued")
	step(t, clk, FrameDuration)
	readRTP(t, far)
	s.Stop()
	step(t, clk, FrameDuration)
	if _, p := readRTP(t, far); !bytes.Equal(p, silenceFrame(PCMU)) {
		t.Error("audio after Stop")
	}
	if err := <-done; !errors.Is(err, ErrStopped) {
		t.Errorf("Play after Stop: %v", err)
	}

	// Cancelling Play's context stops it too.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- s.Play(ctx, dtmfTone('1', 5*time.Second)) }()
	queued(t, jobs, "the playback to be queued")
	cancel()
	// Play notices the cancellation concurrently with the sender's slots:
	// keep the clock going until it returns.
	for i := 0; ; i++ {
		step(t, clk, FrameDuration)
		readRTP(t, far)
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Play after cancel: %v", err)
			}
		default:
			if i < 100 {
				continue
			}
			t.Fatal("Play did not return after its context was cancelled")
		}
		break
	}

	// Close ends a playback in progress.
	go func() { done <- s.Play(context.Background(), dtmfTone('1', 5*time.Second)) }()
	queued(t, jobs, "the playback to be queued")
	s.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Play at Close: %v", err)
	}
	if err := s.Play(context.Background(), dtmfTone('1', time.Second)); !errors.Is(err, ErrClosed) {
		t.Errorf("Play after Close: %v", err)
	}

	// Before Start.
	s2 := listen(t, SessionConfig{})
	if err := s2.Play(context.Background(), dtmfTone('1', time.Second)); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Play before Start: %v", err)
	}
	if err := s2.SendDTMF(context.Background(), '#', 0, MethodInband); !errors.Is(err, ErrNotStarted) {
		t.Errorf("SendDTMF before Start: %v", err)
	}
	noEvents := pcmuEvents
	noEvents.HaveEvents = false
	noEvents.Remote = ap("127.0.0.1:9")
	if err := s2.Start(noEvents); err != nil {
		t.Fatal(err)
	}
	if err := s2.SendDTMF(context.Background(), '#', 0, MethodRFC4733); err == nil {
		t.Error("RFC 4733 without telephone-event accepted")
	}
}

// TestSessionLatchSymmetric: with latching, we send to where the far end's
// packets come from (RFC 4961), not to the address in its SDP.
func TestSessionLatchSymmetric(t *testing.T) {
	ours := listen(t, SessionConfig{Latch: true})
	far := rawSocket(t)
	n := pcmuEvents
	n.Remote = ap("127.0.0.1:9") // what a NATed phone's SDP says, more or less
	if err := ours.Start(n); err != nil {
		t.Fatal(err)
	}
	ph := newPhone(addrOf(far).String(), PCMU)
	for _, p := range ph.silence(time.Duration(lockRun) * FrameDuration) { // enough to latch
		if _, err := far.WriteToUDPAddrPort(p.b, ours.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := readRTP(t, far)
	if h.PayloadType != 0 {
		t.Fatalf("got %+v", h)
	}
	if st := ours.Stats(); st.Stream.Source != addrOf(far) {
		t.Errorf("latched %v, want %v", st.Stream.Source, addrOf(far))
	}
}

// TestSessionRetarget: a re-INVITE moves the far end; we send to and accept
// from the new address.
func TestSessionRetarget(t *testing.T) {
	ours := listen(t, SessionConfig{})
	old, moved := rawSocket(t), rawSocket(t)
	n := pcmuEvents
	n.Remote = addrOf(old)
	if err := ours.Start(n); err != nil {
		t.Fatal(err)
	}
	readRTP(t, old)
	ours.Retarget(addrOf(moved))
	readRTP(t, moved)
	ph := newPhone(addrOf(moved).String(), PCMU)
	for _, p := range ph.audio(hashTone()) {
		if _, err := moved.WriteToUDPAddrPort(p.b, ours.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	waitPress(t, ours.Presses(), '#')
}

// TestListenPorts: an even port in the range; a port in use is skipped; an
// exhausted range fails; Close frees the port.
func TestListenPorts(t *testing.T) {
	s := listen(t, SessionConfig{})
	port := s.LocalAddr().Port()
	if port%2 != 0 || port < testPorts.Low || port > testPorts.High {
		t.Fatalf("port %d", port)
	}
	if s.Local().Addr != s.LocalAddr() {
		t.Fatalf("Local().Addr %v, socket %v", s.Local().Addr, s.LocalAddr())
	}
	one := PortRange{Low: port, High: port + 1}
	if _, err := Listen(context.Background(), SessionConfig{IP: loopback, Ports: one, Logger: quietLogger()}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("exhausted range: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s2, err := Listen(context.Background(), SessionConfig{IP: loopback, Ports: one, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("port not free after Close: %v", err)
	}
	if s2.LocalAddr().Port() != port {
		t.Fatalf("port %d, want %d", s2.LocalAddr().Port(), port)
	}
	s2.Close()

	for _, bad := range []SessionConfig{
		{IP: loopback, Ports: PortRange{Low: 41001, High: 41001}},
		{IP: loopback, Ports: PortRange{Low: 5, High: 4}},
		{},
		{IP: loopback, Codecs: []Codec{{"G729", 18, 8000}}},
	} {
		if s, err := Listen(context.Background(), bad); err == nil {
			s.Close()
			t.Errorf("Listen(%+v) succeeded", bad)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in   string
		want PortRange
		ok   bool
	}{
		{"127.0.0.1:20000-20999", PortRange{}, false},
		{"0-10", PortRange{}, false},
		{"20000-20001", PortRange{20000, 20001}, true},
		{"20000-20999", PortRange{20000, 20999}, true},
		{" 1024 - 1025 ", PortRange{1024, 1025}, true},
		{"10000-65535", PortRange{10000, 65535}, true},
		{"20000", PortRange{}, false},
		{"20001-20999", PortRange{}, false},
		{"1022-2000", PortRange{}, false},
		{"20000-20000", PortRange{}, false},
		{"30000-20000", PortRange{}, false},
		{"20000-65536", PortRange{}, false},
		{"+20000-20999", PortRange{}, false},
		{"-20000-20999", PortRange{}, false},
		{"20000-20999-21000", PortRange{}, false},
		{"a-b", PortRange{}, false},
		{"", PortRange{}, false},
	}
	for _, tt := range tests {
		got, err := ParsePortRange(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParsePortRange(%q) = %v, %v", tt.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), `want "LOW-HIGH" with an even LOW, 1024 ≤ LOW < HIGH ≤ 65535`) {
			t.Errorf("ParsePortRange(%q) error %q", tt.in, err)
		}
	}
	p := PortRange{20000, 20999}
	if p.String() != "20000-20999" || p.Pairs() != 500 {
		t.Errorf("String %q Pairs %d", p.String(), p.Pairs())
	}
	if (PortRange{20000, 20000}).Pairs() != 0 || (PortRange{20000, 20001}).Pairs() != 1 || (PortRange{5, 4}).Pairs() != 0 {
		t.Error("Pairs")
	}
	var u PortRange
	if err := u.UnmarshalText([]byte("30000-30099")); err != nil || u != (PortRange{30000, 30099}) {
		t.Errorf("UnmarshalText: %v %v", u, err)
	}
	if err := u.UnmarshalText([]byte("x")); err == nil || u != (PortRange{30000, 30099}) {
		t.Error("UnmarshalText of junk changed the value or did not fail")
	}
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"20000-20999", "1024-65535", "1-2", "20001-20999", "-", "65534-65535", " 2000 - 3000 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePortRange(s)
		if err != nil {
			if p != (PortRange{}) {
				t.Fatalf("error with a value: %v", p)
			}
			return
		}
		if p.Low < 1024 || p.Low >= p.High || p.Low%2 != 0 {
			t.Fatalf("ParsePortRange(%q) = %v breaks the invariants", s, p)
		}
		back, err := ParsePortRange(p.String())
		if err != nil || back != p {
			t.Fatalf("round trip of %v: %v, %v", p, back, err)
		}
		if p.Pairs() < 1 {
			t.Fatalf("%v has no pairs", p)
		}
	})
}

// TestSessionContext: when Listen's context ends, the session stops.
func TestSessionContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Listen(ctx, SessionConfig{IP: loopback, Ports: testPorts, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(Negotiated{Remote: ap("127.0.0.1:9"), Codec: PCMU}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := s.Play(context.Background(), dtmfTone('1', time.Second)); !errors.Is(err, ErrClosed) {
		t.Errorf("Play after the context ended: %v", err)
	}
	s.Close()
}

// TestSessionNoLeak: every goroutine a session starts is gone after Close.
func TestSessionNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 3 {
		ours, err := Listen(context.Background(), SessionConfig{IP: loopback, Ports: testPorts, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		phone, err := Listen(context.Background(), SessionConfig{IP: loopback, Ports: testPorts, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		connect(t, ours, phone)
		if err := phone.SendDTMF(context.Background(), '#', 60*time.Millisecond, MethodRFC4733); err != nil {
			t.Fatal(err)
		}
		ours.Close()
		phone.Close()
	}
	// Exited goroutines announce nothing: the one poll left in media.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := testwait.Until(ctx, func() bool { return runtime.NumGoroutine() <= before }); err != nil {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
}

// TestSessionReceiveAllocs: the live receive path (socket read, Stream,
// the sender running beside it) does not allocate per packet.
func TestSessionReceiveAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 2000 packets")
	}
	ours := listen(t, SessionConfig{})
	far := rawSocket(t)
	n := pcmuEvents
	n.Remote = addrOf(far)
	if err := ours.Start(n); err != nil {
		t.Fatal(err)
	}
	ph := newPhone(addrOf(far).String(), PCMU)
	pkts := ph.silence(40 * time.Second) // 2000 packets, built before measuring
	send := func(from, to int) {
		ps := pkts[from:to]
		for i, p := range ps {
			if _, err := far.WriteToUDPAddrPort(p.b, ours.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			if i%100 == 99 { // stay well inside the socket buffer
				want := uint64(from + i + 1)
				awaitStats(t, ours, "packets read", func() bool { return ours.Stats().Stream.Audio >= want })
			}
		}
	}
	send(0, 100) // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	send(100, len(pkts))
	runtime.ReadMemStats(&after)
	perPacket := float64(after.Mallocs-before.Mallocs) / float64(len(pkts)-100)
	t.Logf("%d allocations in %d packets", after.Mallocs-before.Mallocs, len(pkts)-100)
	if perPacket > 0.05 {
		t.Errorf("%.3f allocations per packet", perPacket)
	}
}

// TestSessionSendAllocs: the sender does not allocate per packet, for
// silence and for a prompt.
func TestSessionSendAllocs(t *testing.T) {
	s, clk, far := fakeSession(t, pcmuEvents)
	readRTP(t, far)
	clk.waitAsleep(t)
	jobs := watchJobs(s)
	done := make(chan error, 1)
	go func() { done <- s.Play(context.Background(), dtmfTone('1', 10*time.Second)) }()
	queued(t, jobs, "the playback to be queued")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 200 {
		step(t, clk, FrameDuration)
	}
	runtime.ReadMemStats(&after)
	// The test's own waiting allocates a little; the sender nothing.
	t.Logf("%d allocations in 200 packets", after.Mallocs-before.Mallocs)
	if after.Mallocs-before.Mallocs > 40 {
		t.Errorf("%d allocations in 200 packets", after.Mallocs-before.Mallocs)
	}
	if st := s.Stats(); st.Sent != 201 {
		t.Errorf("sent %d", st.Sent)
	}
	s.Stop()
	step(t, clk, FrameDuration)
	if err := <-done; !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
}

// TestSessionPlayRealClock plays 1 s on the real clock between two sockets:
// 50 frames of the prompt, sequence numbers without a gap, timestamps on
// the 160-sample grid (skips only if the machine stalled).
func TestSessionPlayRealClock(t *testing.T) {
	ours := listen(t, SessionConfig{Codecs: []Codec{PCMA}})
	far := rawSocket(t)
	n := pcmuEvents
	n.Codec, n.RecvCodecs, n.Remote = PCMA, []Codec{PCMA}, addrOf(far)
	if err := ours.Start(n); err != nil {
		t.Fatal(err)
	}
	prompt := dtmfTone('9', time.Second)
	want := PCMA.encode(nil, prompt)
	prev, _ := readRTP(t, far) // silence before the prompt
	if !prev.Marker {
		t.Fatal("no marker on the first packet")
	}
	done := make(chan error, 1)
	go func() { done <- ours.Play(context.Background(), prompt) }()
	frames, markers := 0, 1
	for i := 1; frames < 50; i++ {
		h, p := readRTP(t, far)
		if h.SequenceNumber != prev.SequenceNumber+1 || (h.Timestamp-prev.Timestamp)%FrameSamples != 0 || h.Timestamp == prev.Timestamp {
			t.Fatalf("packet %d: %+v after %+v", i, h, prev)
		}
		if h.Marker {
			markers++
		}
		if !bytes.Equal(p, silenceFrame(PCMA)) {
			if !bytes.Equal(p, want[frames*FrameSamples:(frames+1)*FrameSamples]) {
				t.Fatalf("frame %d out of order", frames)
			}
			if h.Marker != (frames == 0) {
				t.Fatalf("frame %d: marker %v", frames, h.Marker)
			}
			frames++
		}
		prev = h
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if markers != 2 { // the first packet sent and the first of the prompt
		t.Errorf("%d markers", markers)
	}
}
