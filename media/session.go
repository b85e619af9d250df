package media

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/pion/rtp"
)

// Errors of [Session] methods; test with errors.Is.
var (
	// ErrClosed: the session was closed, or the context given to Listen
	// ended.
	ErrClosed = errors.New("media: session closed")
	// ErrNotStarted: the call has not been answered yet (see Start).
	ErrNotStarted = errors.New("media: session not started")
	// ErrStopped: Stop ended the playback.
	ErrStopped = errors.New("media: playback stopped")
)

// DTMFMethod is how [Session.SendDTMF] sends a key.
type DTMFMethod string

// DTMF sending methods of [Session.SendDTMF].
const (
	MethodRFC4733 DTMFMethod = "rfc4733" // telephone-events in the RTP stream (RFC 4733)
	MethodInband  DTMFMethod = "inband"  // a dual tone in the audio (ITU-T Q.23)
)

const (
	// pressBuffer is the capacity of the Presses channel.
	pressBuffer = 64
	// tickInterval is how long the receiver waits for a packet before it
	// ticks the stream for RFC 4733 timeouts.
	tickInterval = 50 * time.Millisecond
	// maxDatagram is the receive buffer: larger datagrams are truncated,
	// and no G.711 packet comes near it.
	maxDatagram = 2048
)

// SessionConfig configures [Listen].
type SessionConfig struct {
	// IP is the local address to bind and to advertise in SDP. To
	// advertise another (behind 1:1 NAT, or when binding 0.0.0.0), set
	// Local().Addr before the first Offer or Answer.
	IP netip.Addr
	// Ports is the RTP port range (required: media.rtp_ports, whose default
	// is in internal/config).
	Ports PortRange
	// Codecs in order of preference; nil means DefaultCodecs.
	Codecs []Codec
	// EventPT is the telephone-event payload type we offer; 0 means 101.
	EventPT uint8
	// Latch enables symmetric latching (media.symmetric_latching): see
	// StreamConfig.Latch. We then also send to the latched source (RFC 4961).
	Latch bool
	// Clock is the time source; nil means the real clock.
	Clock Clock
	// RedactKeys logs keys as dtmf.Key.Redacted shows them (digits as
	// "digit"): in verify mode code the digits are a secret.
	RedactKeys bool
	// Logger receives the session's logs; nil means slog.Default().
	Logger *slog.Logger
	// Audio, when set, receives the far end's audio from Start on (see
	// Stream.SetAudio), on the receive goroutine.
	Audio AudioSink
	// Mux, when set, carries the session's RTP on its shared socket
	// instead of a socket of the session's own (media.rtp_mux); Ports is
	// then unused and Latch not allowed. See [Mux].
	Mux *Mux
}

// SessionStats counts what a [Session] did.
type SessionStats struct {
	Sent       uint64 // RTP packets sent
	Late       uint64 // packets sent a frame (20 ms) or more after their slot (the pacer caught up)
	Skipped    uint64 // 20 ms slots left out after a stall of more than 200 ms
	SendErrors uint64 // failed socket writes
	// PressesDropped counts reports not delivered because the Presses
	// channel was full.
	PressesDropped uint64
	// Stream is the receive path's counters; Stream.Dropped.Early counts
	// the packets (and SIP INFO keys) dropped before Start.
	Stream StreamStats
}

// Session is the media of one call: one UDP socket (even port, RFC 3550
// §11), a receive goroutine and, once the call is answered, a sender.
//
// The receive goroutine runs from Listen to Close and always drains the
// socket. Before Start every packet is dropped and counted as early: RTP
// that arrived with a 183 (early media, announcements) is read and thrown
// away, so no key pressed before the 200 can count. From Start on, packets
// go through a [Stream] and its key reports to Presses.
//
// From Start to Close the session's packets are sent by the shared pacers
// (see pacer.go: a few goroutines for all calls), one RTP packet every
// 20 ms from the same socket (symmetric RTP, RFC 4961): the prompt while one
// plays, telephone-events or a tone while SendDTMF runs, silence otherwise,
// since trunks and SBCs hang up calls whose RTP stops. Packets follow an
// absolute schedule; the SSRC, first sequence number and first timestamp
// are random (RFC 3550 §5.1) and the marker bit starts each talkspurt.
//
// Methods are safe for concurrent use, except Local, whose result belongs
// to the caller's signalling goroutine.
type Session struct {
	cfg   SessionConfig
	clock Clock
	log   *slog.Logger
	conn  *net.UDPConn // nil on a Mux
	mux   *Mux
	epoch time.Time

	// sdpMu guards local and answeredAt: the SDP exchange of dialog.go,
	// called from the SIP handlers' goroutines.
	sdpMu      sync.Mutex
	local      Local
	answeredAt time.Duration

	ctx       context.Context // ends at Close or when Listen's context ends
	cancel    context.CancelFunc
	stopAfter func() bool
	downOnce  sync.Once
	closeErr  error
	wg        sync.WaitGroup

	presses chan dtmf.Event
	sem     chan struct{} // one Play or SendDTMF at a time

	mu         sync.Mutex
	stream     *Stream
	neg        Negotiated
	started    bool
	closing    bool // Close was called: no more goroutines may start
	closed     bool // Presses is closed
	job        *job
	onJob      func(*job) // tests: called with each job handed to the sender, under mu
	onPacket   func()     // tests: called after each packet read, under mu
	early      uint64
	pressDrops uint64
	lastSource netip.AddrPort
	lastLocks  uint64       // the stream's lock count last logged
	relock     bool         // the stream was unlocked (Retarget) since
	evs        []dtmf.Event // Info's scratch

	muxRoute netip.AddrPort // the far end address the mux routes to us; under mux.mu

	// Sender state, owned by the pacer serving the session.
	ssrc       uint32
	seq        uint16
	ts0        uint32
	needMarker bool

	pe   paceEntry   // the session's place on a pacer's wheel
	down atomic.Bool // shutdown began: send nothing more

	sent, sendErrors atomic.Uint64
}

// job is one Play or SendDTMF: audio frames or telephone-event packets,
// one per 20 ms slot.
type job struct {
	audio  []byte // encoded, a whole number of frames
	pt     uint8
	events []dtmf.Packet
	pos    int    // next frame offset (audio) or packet index (events)
	ts0    uint32 // timestamp of the first event packet
	stop   bool
	err    error
	done   chan struct{}

	// A StartAudio job reports to result instead of a waiting run, and
	// frees the session's playback slot itself.
	result  chan<- error
	stopCtx func()
	ctxErr  error // the context that stopped it ended with this
}

// Listen opens the media session of one call: it binds an even UDP port
// chosen at random in cfg.Ports on cfg.IP (trying the others when one is in
// use) and starts the receive goroutine. When ctx ends the session stops as
// if closed; call Close in any case to wait for it and free the port.
func Listen(ctx context.Context, cfg SessionConfig) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Mux != nil {
		if cfg.Latch {
			return nil, errors.New("media: symmetric latching needs a socket per call: it cannot be used with a shared RTP port (media.rtp_mux)")
		}
	} else {
		if !cfg.IP.IsValid() {
			return nil, errors.New("media: no IP address to listen on")
		}
		if err := cfg.Ports.Check(); err != nil {
			return nil, fmt.Errorf("media: port range: %w", err)
		}
	}
	for _, c := range cfg.Codecs {
		if !c.Supported() {
			return nil, fmt.Errorf("media: unsupported codec %s (supported: PCMU, PCMA)", c)
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var (
		conn *net.UDPConn
		addr netip.AddrPort
	)
	if cfg.Mux != nil {
		addr = cfg.Mux.Addr()
	} else {
		var err error
		if conn, err = bind(cfg.IP.Unmap(), cfg.Ports); err != nil {
			return nil, err
		}
		addr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	s := &Session{
		cfg:     cfg,
		clock:   cfg.Clock,
		conn:    conn,
		mux:     cfg.Mux,
		local:   Local{Addr: addr, Codecs: cfg.Codecs, EventPT: cfg.EventPT},
		epoch:   cfg.Clock.Now(),
		presses: make(chan dtmf.Event, pressBuffer),
		sem:     make(chan struct{}, 1),
		evs:     make([]dtmf.Event, 0, 4),
	}
	s.log = cfg.Logger.With("rtp_port", addr.Port())
	var r [10]byte
	_, _ = crand.Read(r[:])
	s.ssrc = binary.BigEndian.Uint32(r[0:])
	s.ts0 = binary.BigEndian.Uint32(r[4:])
	s.seq = binary.BigEndian.Uint16(r[8:])
	s.needMarker = true
	s.pe.s = s
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.mux != nil {
		if err := s.mux.join(s); err != nil {
			return nil, err
		}
	}
	s.stopAfter = context.AfterFunc(ctx, s.shutdown)
	if s.mux == nil {
		s.wg.Add(1)
		go s.receive()
	}
	s.log.Debug("rtp session listening", "addr", s.local.Addr)
	return s, nil
}

// bind listens on a random even port of r, trying the others in turn when
// a port is in use.
func bind(ip netip.Addr, r PortRange) (*net.UDPConn, error) {
	first, n := r.Low, r.Pairs()
	start := rand.IntN(n)
	for i := range n {
		port := first + uint16(2*((start+i)%n))
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
		if err == nil {
			return conn, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("media: listen on %s: %w", netip.AddrPortFrom(ip, port), err)
		}
	}
	return nil, fmt.Errorf("media: no free even port in %s on %s (all %d in use): %w", r, ip, n, syscall.EADDRINUSE)
}

// LocalAddr returns the socket's address.
func (s *Session) LocalAddr() netip.AddrPort {
	if s.mux != nil {
		return s.mux.Addr()
	}
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Local returns our side of the SDP exchange, for Offer, ParseAnswer,
// Answer and Current. It is not safe for concurrent use: it belongs to the
// call's signalling.
func (s *Session) Local() *Local { return &s.local }

// Presses returns the session's key press reports, combined from in-band,
// RFC 4733 and SIP INFO (start and end reports, see dtmf.Event). It is
// buffered; reports that do not fit are dropped and counted. It is closed
// by Close.
func (s *Session) Presses() <-chan dtmf.Event { return s.presses }

// Start begins the answered call with the outcome of the offer/answer
// exchange: received packets go through a Stream built from n, and the
// session joins a pacer, which sends its first packet within a
// millisecond or two and one every 20 ms after.
func (s *Session) Start(n Negotiated) error {
	if !n.Codec.Supported() {
		return fmt.Errorf("media: cannot send %s", n.Codec)
	}
	s.mu.Lock()
	switch {
	case s.closing || s.ctx.Err() != nil:
		s.mu.Unlock()
		return ErrClosed
	case s.started:
		s.mu.Unlock()
		return errors.New("media: session already started; use Update")
	}
	s.neg = n
	s.stream = NewStream(n.StreamConfig(s.cfg.Latch))
	s.stream.SetAudio(s.cfg.Audio)
	s.started = true
	early := s.early
	if s.mux != nil {
		s.mux.route(s, n.Remote)
	}
	s.mu.Unlock()
	// Outside s.mu: a pacer takes its own lock, then s.mu in sendSlot. A
	// Close in between makes joinPacer a no-op.
	joinPacer(s.clock, &s.pe)
	s.log.Info("rtp started", "remote", n.Remote, "codec", n.Codec.Name, "events", n.HaveEvents, "hold", n.Hold, "early_dropped", early)
	return nil
}

// Update applies a new offer/answer outcome during the call (re-INVITE,
// UPDATE): codec, events, hold and, when it moved, the far end's address.
func (s *Session) Update(n Negotiated) error {
	if !n.Codec.Supported() {
		return fmt.Errorf("media: cannot send %s", n.Codec)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return ErrNotStarted
	}
	if n.Remote != s.neg.Remote {
		s.log.Info("rtp retarget", "from", s.neg.Remote, "to", n.Remote)
		s.relock = true
		if s.mux != nil {
			s.mux.route(s, n.Remote)
		}
	}
	s.neg = n
	s.stream.Update(n.StreamConfig(s.cfg.Latch))
	return nil
}

// Retarget moves the far end to remote (a re-INVITE or UPDATE changed its
// c= or port): we send there and accept packets from there, relearning the
// source and SSRC.
func (s *Session) Retarget(remote netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return
	}
	s.log.Info("rtp retarget", "from", s.neg.Remote, "to", remote)
	if s.mux != nil {
		s.mux.route(s, remote)
	}
	s.neg.Remote = remote
	s.stream.Retarget(remote)
	s.relock = true
}

// Info feeds a key the far end sent by SIP INFO into the stream; before
// Start it is dropped as early.
func (s *Session) Info(key dtmf.Key, d time.Duration) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.stream == nil {
		s.early++
		return
	}
	s.evs = s.stream.Info(s.evs[:0], now, key, d)
	s.deliver(s.evs)
}

// Stats returns the session's counters.
func (s *Session) Stats() SessionStats {
	st := SessionStats{
		Sent:       s.sent.Load(),
		Late:       s.pe.late.Load(),
		Skipped:    s.pe.skipped.Load(),
		SendErrors: s.sendErrors.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil {
		st.Stream = s.stream.Stats()
	}
	st.Stream.Dropped.Early = s.early
	st.PressesDropped = s.pressDrops
	return st
}

// Close takes the session off its pacer, stops the receive goroutine and
// waits for it, closes the socket (its port is free when Close returns) and
// the Presses channel. Play and SendDTMF calls in progress return
// ErrClosed. It is idempotent.
func (s *Session) Close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.stopAfter()
	s.shutdown()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finish(s.job, ErrClosed)
	if !s.closed {
		s.closed = true
		close(s.presses)
		s.log.Debug("rtp session closed", "sent", s.sent.Load())
	}
	return s.closeErr
}

// shutdown takes the session off its pacer (no packet is sent after it),
// tells the receiver to stop and closes the socket, which unblocks the
// receiver's read.
func (s *Session) shutdown() {
	s.downOnce.Do(func() {
		s.down.Store(true)
		leavePacer(&s.pe)
		s.cancel()
		if s.mux != nil {
			s.mux.leave(s)
			return
		}
		if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.closeErr = fmt.Errorf("media: close socket: %w", err)
		}
	})
}

// now is the time on the stream's timeline.
func (s *Session) now() time.Duration { return s.clock.Now().Sub(s.epoch) }

// Now is the session's clock: the time since Listen, the timeline the
// Start and End of its key press reports are on.
func (s *Session) Now() time.Duration { return s.now() }

// receive is the receive goroutine: it drains the socket from Listen to
// Close.
func (s *Session) receive() {
	defer s.wg.Done()
	buf := make([]byte, maxDatagram)
	evs := make([]dtmf.Event, 0, 16)
	var deadline time.Time
	for {
		// The read deadline is refreshed lazily, not per packet; it only
		// wakes the loop to tick RFC 4733 timeouts when packets stop.
		if t := time.Now(); deadline.Sub(t) < tickInterval/2 {
			deadline = t.Add(tickInterval)
			_ = s.conn.SetReadDeadline(deadline)
		}
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				deadline = time.Time{}
				s.tick(evs)
				continue
			}
			s.log.Warn("rtp receive", "err", err)
			continue
		}
		evs = s.packet(evs, from, buf[:n])
	}
}

// packet takes one datagram b from from, read by the session's receiver or
// its Mux, and returns evs for reuse.
func (s *Session) packet(evs []dtmf.Event, from netip.AddrPort, b []byte) []dtmf.Event {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onPacket != nil {
		defer s.onPacket() // before the unlock
	}
	if s.closed {
		return evs
	}
	if s.stream == nil {
		s.early++
		return evs
	}
	evs, _ = s.stream.Packet(evs[:0], now, from, b)
	if src, ssrc, locks := s.stream.Lock(); locks != s.lastLocks {
		s.lastLocks = locks
		if locks == 1 || s.relock {
			s.relock = false
			s.log.Info("rtp locked", "source", src, "ssrc", ssrc)
		} else {
			// Another stream took over (Stream: takeover rules).
			s.log.Info("rtp lock taken over", "source", src, "ssrc", ssrc, "locks", locks)
		}
	}
	if s.cfg.Latch {
		if src, ok := s.stream.Source(); ok && src != s.lastSource {
			s.lastSource = src
			s.log.Info("rtp source latched", "source", src)
		}
	}
	s.deliver(evs)
	return evs
}

func (s *Session) tick(evs []dtmf.Event) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil && !s.closed {
		s.deliver(s.stream.Tick(evs[:0], now))
	}
}

// deliver hands reports to Presses without blocking the receiver; s.mu is
// held.
func (s *Session) deliver(evs []dtmf.Event) {
	for _, e := range evs {
		if !e.Ended {
			key := e.Key.String()
			if s.cfg.RedactKeys {
				key = e.Key.Redacted()
			}
			s.log.Info("key press", "key", key, "source", e.Source.String(), "at", e.Start)
		}
		select {
		case s.presses <- e:
		default:
			s.pressDrops++
		}
	}
}

// Play sends samples (8 kHz 16-bit linear) in the negotiated codec, encoded
// once up front for this playback and a frame per 20 ms slot, the first
// with the marker bit. It waits for an earlier Play or SendDTMF to finish,
// and returns when the last frame was sent (nil), when Stop ended it
// (ErrStopped), when ctx ended (ctx.Err(): the playback stops at the next
// frame) or when the session closed (ErrClosed). A prompt every call plays
// is better an [Audio] played with PlayAudio: encoded once for all calls.
func (s *Session) Play(ctx context.Context, samples []int16) error {
	return s.PlayAudio(ctx, &Audio{samples: samples}) // not shared: no copy
}

// Stop ends the current playback (or DTMF) at the next frame; its Play
// returns ErrStopped.
func (s *Session) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.job != nil {
		s.job.stop = true
	}
}

// SendDTMF sends one press of key lasting d (0 means 100 ms), for the
// simulated phone: with MethodRFC4733 as telephone-events on the
// negotiated payload type, in our SSRC and sequence space, timestamped
// with the audio timestamp at the start of the event and replacing the
// audio for its duration (RFC 4733 §2.5.1), one packet per 20 ms, the last
// sent three times; with MethodInband as a dual tone played like Play. It
// returns when the press was sent, like Play.
func (s *Session) SendDTMF(ctx context.Context, key dtmf.Key, d time.Duration, method DTMFMethod) error {
	if !key.Valid() {
		return fmt.Errorf("media: send DTMF: invalid key %v", key)
	}
	if d <= 0 {
		d = 100 * time.Millisecond
	}
	s.mu.Lock()
	started, n := s.started, s.neg
	s.mu.Unlock()
	if !started {
		return ErrNotStarted
	}
	switch method {
	case MethodRFC4733:
		if !n.HaveEvents {
			return errors.New("media: send DTMF: telephone-event was not negotiated")
		}
		enc := dtmf.NewEncoder(dtmf.EncoderConfig{PayloadType: n.SendEventPT, ClockRate: n.EventClockRate, Interval: FrameDuration})
		return s.run(ctx, &job{events: enc.Press(nil, key, d)})
	case MethodInband:
		return s.Play(ctx, dtmfTone(key, d))
	}
	return fmt.Errorf("media: send DTMF: unknown method %q (want %s or %s)", method, MethodRFC4733, MethodInband)
}

// run hands j to the sender and waits for it.
func (s *Session) run(ctx context.Context, j *job) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
	defer func() { <-s.sem }()
	s.mu.Lock()
	err := s.install(j)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		s.mu.Lock()
		j.stop = true
		s.mu.Unlock()
		select {
		case <-j.done:
		case <-s.ctx.Done():
		}
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
}

// install makes j the sender's job (the caller holds the playback slot,
// s.sem), or says the session is closing; s.mu is held.
func (s *Session) install(j *job) error {
	if s.closing || s.ctx.Err() != nil {
		return ErrClosed
	}
	j.done = make(chan struct{})
	s.job = j
	if s.onJob != nil {
		s.onJob(j)
	}
	return nil
}

// finish ends j with err; s.mu is held.
func (s *Session) finish(j *job, err error) {
	if j == nil || j.done == nil {
		return
	}
	select {
	case <-j.done:
		return
	default:
	}
	j.err = err
	close(j.done)
	if s.job == j {
		s.job = nil
	}
	if j.result != nil {
		j.stopCtx()
		if errors.Is(err, ErrStopped) && j.ctxErr != nil {
			err = j.ctxErr
		}
		j.result <- err
		<-s.sem
	}
}

// sendSlot sends the packet of one slot: the next frame of the job, or an
// event packet, or silence. Its pacer calls it, one slot after the other,
// building the packet in the pacer's scratch sc; it reports whether a
// packet left.
func (s *Session) sendSlot(slot int64, sc *sendScratch) bool {
	if s.down.Load() {
		return false
	}
	ts := s.ts0 + uint32(slot)*FrameSamples
	h := &sc.hdr
	*h = rtp.Header{Version: 2, SequenceNumber: s.seq, Timestamp: ts, SSRC: s.ssrc}

	s.mu.Lock()
	codec := s.neg.Codec
	dest, ok := s.destination()
	j := s.job
	if j != nil && j.stop {
		s.finish(j, ErrStopped)
		j = nil
	}
	var (
		payload []byte
		event   *dtmf.Payload
		last    bool
	)
	h.PayloadType = codec.PayloadType
	switch {
	case j != nil && j.audio != nil:
		h.Marker = j.pos == 0
		h.PayloadType = j.pt
		payload = j.audio[j.pos : j.pos+FrameSamples]
		j.pos += FrameSamples
		last = j.pos >= len(j.audio)
	case j != nil:
		if j.pos == 0 {
			j.ts0 = ts // the event starts at the current audio timestamp
		}
		p := &j.events[j.pos]
		h.Marker = p.Header.Marker
		h.PayloadType = p.Header.PayloadType
		h.Timestamp = j.ts0 + p.Header.Timestamp
		event = &p.Payload
		j.pos++
		last = j.pos >= len(j.events)
	default:
		payload = silence.ulaw[:FrameSamples]
		if codec.law() == 'a' {
			payload = silence.alaw[:FrameSamples]
		}
	}
	s.mu.Unlock()

	if ok {
		h.Marker = h.Marker || s.needMarker
		out := sc.buf[:]
		var b *sendBatch
		if s.mux != nil {
			if b = sc.batch(s.mux); b != nil {
				out = b.next()
			}
		}
		n, err := h.MarshalTo(out)
		if err == nil {
			if event != nil {
				var m int
				m, err = event.MarshalTo(out[n:])
				n += m
			} else {
				n += copy(out[n:], payload)
			}
		}
		switch {
		case err == nil && b != nil:
			b.push(s, n, dest) // sent and counted when the pacer flushes the tick
		case err == nil && s.conn != nil:
			_, err = s.conn.WriteToUDPAddrPort(out[:n], dest)
			s.sent1(err, dest)
		default:
			s.sent1(cmp.Or(err, ErrClosed), dest)
		}
		s.seq++
		s.needMarker = false
	} else {
		// On hold or nowhere to send: time passes, no packet; the next
		// packet starts a talkspurt.
		s.needMarker = true
	}
	if last {
		s.mu.Lock()
		s.finish(j, nil)
		s.mu.Unlock()
	}
	return ok
}

// sent1 counts one packet sent, or not sent for err.
func (s *Session) sent1(err error, dest netip.AddrPort) {
	if err == nil {
		s.sent.Add(1)
		return
	}
	if s.sendErrors.Add(1) == 1 {
		s.log.Warn("rtp send", "to", dest, "err", err)
	}
}

// destination is where to send, and false on hold or without an address;
// s.mu is held.
func (s *Session) destination() (netip.AddrPort, bool) {
	if s.neg.Hold {
		return netip.AddrPort{}, false
	}
	if s.cfg.Latch && s.stream != nil {
		if src, ok := s.stream.Source(); ok {
			return src, true
		}
	}
	r := s.neg.Remote
	if !r.IsValid() || r.Addr().IsUnspecified() || r.Port() == 0 {
		return netip.AddrPort{}, false
	}
	return r, true
}
