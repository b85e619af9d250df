package media

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/pion/rtp"
)

const (
	farEnd   = "198.51.100.7:40000"
	stranger = "203.0.113.66:40000"
)

func streamCfg(codec Codec) StreamConfig {
	return StreamConfig{Remote: ap(farEnd), Codecs: []Codec{codec}, EventPT: 101, HaveEvents: true, EventClockRate: 8000}
}

func hashTone() []int16 {
	return dtmftest.Concat(dtmftest.Silence(200*time.Millisecond), dtmftest.DTMF('#', -10, 120*time.Millisecond), dtmftest.Silence(300*time.Millisecond))
}

// TestStreamSecurity is the receive path's table of attacks and of the ways
// a genuine press arrives.
func TestStreamSecurity(t *testing.T) {
	type want struct {
		hashes  int
		source  dtmf.Source // of the one '#', when hashes == 1
		dropped Drops
		rfc4733 uint64 // presses the RFC 4733 receiver accepted
	}
	for _, tc := range []struct {
		name string
		cfg  StreamConfig
		pkts func() []pkt
		want want
	}{
		{
			name: "forged rfc4733 # from another address",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far, evil := newPhone(farEnd, PCMU), newPhone(stranger, PCMU)
				evil.ssrc = far.ssrc // even with the right SSRC
				return concat(far.silence(100*time.Millisecond), evil.press(101, '#', 200*time.Millisecond), far.silence(100*time.Millisecond))
			},
			want: want{dropped: Drops{Source: 13}},
		},
		{
			name: "right address wrong ssrc",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				evil := newPhone(farEnd, PCMU) // spoofed source address
				evil.ssrc = 0xdeadbeef
				lead := far.silence(100 * time.Millisecond)
				evil.at = far.at
				// The phone keeps sending while the forger does.
				return concat(lead, interleave(far.silence(900*time.Millisecond), concat(evil.press(101, '#', 200*time.Millisecond), evil.audio(hashTone()))))
			},
			want: want{dropped: Drops{SSRC: 13 + 31}},
		},
		{
			name: "telephone-event on a payload type not negotiated (R9)",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				return concat(far.silence(100*time.Millisecond), far.press(96, '#', 200*time.Millisecond), far.silence(100*time.Millisecond))
			},
			want: want{dropped: Drops{PayloadType: 13}},
		},
		{
			name: "telephone-event on the far end's own negotiated payload type",
			cfg:  func() StreamConfig { c := streamCfg(PCMU); c.PeerEventPT = 96; return c }(),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				return concat(far.silence(100*time.Millisecond), far.press(96, '#', 200*time.Millisecond), far.silence(100*time.Millisecond))
			},
			want: want{hashes: 1, source: dtmf.SourceRFC4733, rfc4733: 1},
		},
		{
			name: "telephone-event on a third payload type when the far end declared another (R9)",
			cfg:  func() StreamConfig { c := streamCfg(PCMU); c.PeerEventPT = 96; return c }(),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				return concat(far.silence(100*time.Millisecond), far.press(100, '#', 200*time.Millisecond), far.silence(100*time.Millisecond))
			},
			want: want{dropped: Drops{PayloadType: 13}},
		},
		{
			name: "telephone-event when none was negotiated",
			cfg:  StreamConfig{Remote: ap(farEnd), Codecs: []Codec{PCMU}, EventPT: 101},
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				return concat(far.silence(100*time.Millisecond), far.press(101, '#', 200*time.Millisecond))
			},
			want: want{dropped: Drops{PayloadType: 13}},
		},
		{
			name: "garbage",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				g := []pkt{
					{at: time.Second, from: ap(farEnd), b: nil},
					{at: time.Second, from: ap(farEnd), b: []byte("#")},
					{at: time.Second, from: ap(farEnd), b: []byte("INVITE sip:x SIP/2.0\r\n\r\n")},
					{at: time.Second, from: ap(farEnd), b: []byte{0x80, 0x65, 0, 1, 0, 0, 0, 1}},                             // short header
					{at: time.Second, from: ap(farEnd), b: []byte{0x8f, 0x65, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0}},     // 15 CSRCs announced
					{at: time.Second, from: ap(farEnd), b: []byte{0x90, 0x65, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde}},     // truncated extension
					{at: time.Second, from: ap(farEnd), b: []byte{0xa0, 0x65, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 11, 0x8a, 0, 9}}, // padding > payload
				}
				return concat(g, far.silence(100*time.Millisecond))
			},
			want: want{dropped: Drops{NotRTP: 7}},
		},
		{
			name: "latching locks to the first valid source",
			cfg:  StreamConfig{Remote: ap("10.0.0.5:4000"), Latch: true, Codecs: []Codec{PCMU}, EventPT: 101, HaveEvents: true},
			pkts: func() []pkt {
				far, evil := newPhone(farEnd, PCMU), newPhone(stranger, PCMU)
				lead := far.silence(100 * time.Millisecond)
				evil.at = far.at
				return concat(lead, interleave(far.silence(900*time.Millisecond), concat(evil.press(101, '#', 200*time.Millisecond), evil.audio(hashTone()))))
			},
			want: want{dropped: Drops{Source: 13 + 31}},
		},
		{
			name: "in-band # in PCMU",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt { return newPhone(farEnd, PCMU).audio(hashTone()) },
			want: want{hashes: 1, source: dtmf.SourceInband},
		},
		{
			name: "in-band # in PCMA",
			cfg:  streamCfg(PCMA),
			pkts: func() []pkt { return newPhone(farEnd, PCMA).audio(hashTone()) },
			want: want{hashes: 1, source: dtmf.SourceInband},
		},
		{
			name: "rfc4733 # replacing audio",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				return concat(far.silence(100*time.Millisecond), far.press(101, '#', 200*time.Millisecond), far.silence(100*time.Millisecond))
			},
			want: want{hashes: 1, source: dtmf.SourceRFC4733, rfc4733: 1},
		},
		{
			name: "rfc4733 # interleaved with audio carrying the tone (baresip)",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				return concat(far.silence(100*time.Millisecond),
					far.interleaved(dtmftest.DTMF('#', -10, 200*time.Millisecond), 101, '#', 200*time.Millisecond),
					far.silence(300*time.Millisecond))
			},
			want: want{hashes: 1, rfc4733: 1}, // whichever source is first
		},
		{
			name: "rfc4733 # with SIPp's E packets repeating one sequence number",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				enc := dtmf.NewEncoder(dtmf.EncoderConfig{SSRC: far.ssrc, Sequence: far.seq, Timestamp: far.ts, EndSameSequence: true})
				var ps []pkt
				for _, e := range enc.Press(nil, '#', 280*time.Millisecond) {
					b, _ := e.Payload.Marshal()
					far.at += 20 * time.Millisecond
					ps = append(ps, pkt{at: far.at, from: far.from, b: marshal(e.Header, b)})
				}
				far.seq, far.ts = enc.Sequence(), enc.Timestamp()
				return concat(ps, far.silence(100*time.Millisecond))
			},
			want: want{hashes: 1, source: dtmf.SourceRFC4733, rfc4733: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStream(tc.cfg)
			evs := feed(s, tc.pkts())
			hashes := starts(evs, '#')
			if len(hashes) != tc.want.hashes {
				t.Fatalf("%d # presses, want %d: %v", len(hashes), tc.want.hashes, evs)
			}
			if tc.want.hashes == 1 && tc.want.source != 0 && hashes[0].Source != tc.want.source {
				t.Errorf("source %v, want %v", hashes[0].Source, tc.want.source)
			}
			if len(evs) != 2*tc.want.hashes {
				t.Errorf("reports %v, want a start and an end per press", evs)
			}
			st := s.Stats()
			if st.Dropped != tc.want.dropped {
				t.Errorf("dropped %+v, want %+v", st.Dropped, tc.want.dropped)
			}
			if st.Receiver.Accepted != tc.want.rfc4733 {
				t.Errorf("RFC 4733 receiver accepted %d presses, want %d", st.Receiver.Accepted, tc.want.rfc4733)
			}
			if st.Presses != uint64(tc.want.hashes) {
				t.Errorf("Presses = %d", st.Presses)
			}
		})
	}
}

// TestStreamRTCP: RTCP multiplexed on the RTP port is told apart.
func TestStreamRTCP(t *testing.T) {
	s := NewStream(streamCfg(PCMU))
	far := newPhone(farEnd, PCMU)
	feed(s, far.silence(60*time.Millisecond))
	// A receiver report: V=2, RC=0, PT=201, length 1, SSRC.
	s.Packet(nil, 2*time.Second, far.from, []byte{0x80, 201, 0, 1, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0})
	if st := s.Stats(); st.Dropped.RTCP != 1 || st.Dropped.Total() != 1 {
		t.Fatalf("stats %+v", st.Dropped)
	}
}

func FuzzStreamPacket(f *testing.F) {
	far := newPhone(farEnd, PCMU)
	for _, p := range concat(far.audio(hashTone()[:800]), far.press(101, '#', 60*time.Millisecond)) {
		f.Add(p.b, false)
	}
	f.Add([]byte{0xa0, 0x65, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 11, 0x8a, 0, 4}, true)
	f.Fuzz(func(t *testing.T, b []byte, latch bool) {
		cfg := streamCfg(PCMU)
		cfg.Latch = latch
		for _, locked := range []bool{false, true} {
			s := NewStream(cfg)
			var evs []dtmf.Event
			var n uint64
			// What Packet returns and OnDrop reports is what Stats counts.
			var told Drops
			s.OnDrop(func(d DroppedPacket) { told.Add(d.Reason, 1) })
			at := time.Second
			if locked {
				// Lock first (lockRun packets of the phone), so that b meets
				// the locked path as well as the candidates'.
				lead := newPhone(farEnd, PCMU)
				for _, p := range lead.silence(time.Duration(lockRun) * FrameDuration) {
					evs, _ = s.Packet(evs, p.at, p.from, p.b)
					n++
					at = p.at
				}
			}
			for i := range 3 {
				var drop Drop
				evs, drop = s.Packet(evs, at+time.Duration(i+1)*FrameDuration, far.from, b)
				told.Add(drop, 1)
				n++
			}
			if st := s.Stats(); st.Dropped != told {
				t.Fatalf("dropped %+v, told %+v", st.Dropped, told)
			}
			evs = s.Flush(evs, time.Minute)
			if len(evs) > 0 && len(evs)%2 != 0 {
				t.Fatalf("unbalanced reports %v", evs)
			}
			st := s.Stats()
			if st.Received != n || st.Dropped.Total() > n {
				t.Fatalf("stats %+v after %d packets", st, n)
			}
		}
	})
}

// TestStreamInfoAndRFC4733 sends one press by SIP INFO and RFC 4733, in
// both orders.
func TestStreamInfoAndRFC4733(t *testing.T) {
	for _, infoFirst := range []bool{true, false} {
		s := NewStream(streamCfg(PCMU))
		far := newPhone(farEnd, PCMU)
		var evs []dtmf.Event
		pk := concat(far.silence(100*time.Millisecond), far.press(101, '#', 250*time.Millisecond), far.silence(200*time.Millisecond))
		for i, p := range pk {
			if i == 5 && infoFirst || i == 10 && !infoFirst {
				evs = s.Info(evs, p.at, '#', 250*time.Millisecond)
			}
			evs, _ = s.Packet(evs, p.at, p.from, p.b)
		}
		evs = s.Tick(evs, pk[len(pk)-1].at+time.Second)
		h := starts(evs, '#')
		want := dtmf.SourceRFC4733
		if infoFirst {
			want = dtmf.SourceSIPInfo
		}
		if len(h) != 1 || h[0].Source != want {
			t.Errorf("info first %v: reports %v, want one # from %v", infoFirst, evs, want)
		}
		if st := s.Stats(); st.Info != 1 {
			t.Errorf("Info = %d", st.Info)
		}
	}
}

// TestStreamInbandTiming checks that in-band presses land on the caller's
// clock where the tone was.
func TestStreamInbandTiming(t *testing.T) {
	s := NewStream(streamCfg(PCMU))
	far := newPhone(farEnd, PCMU)
	start := far.at // arrival of the packet before the first
	evs := feed(s, far.audio(hashTone()))
	h := starts(evs, '#')
	if len(h) != 1 {
		t.Fatalf("reports %v", evs)
	}
	want := start + 200*time.Millisecond
	if d := h[0].Start - want; d < -15*time.Millisecond || d > 15*time.Millisecond {
		t.Errorf("start %v, want %v ± 15 ms", h[0].Start, want)
	}
	var end dtmf.Event
	for _, e := range evs {
		if e.Ended {
			end = e
		}
	}
	if d := end.End - (want + 120*time.Millisecond); d < -20*time.Millisecond || d > 20*time.Millisecond {
		t.Errorf("end %v, want %v ± 20 ms", end.End, want+120*time.Millisecond)
	}
}

// TestStreamSequence checks duplicates, reordering, concealment and a
// sender restart.
func TestStreamSequence(t *testing.T) {
	s := NewStream(streamCfg(PCMU))
	far := newPhone(farEnd, PCMU)
	pk := far.audio(hashTone()) // 32 packets
	var in []pkt
	in = append(in, pk[:5]...)
	in = append(in, pk[4], pk[3]) // duplicate and reordered
	in = append(in, pk[8:]...)    // 3 lost: concealed
	evs := feed(s, in)
	st := s.Stats()
	if st.Dropped.Old != 2 || st.Concealed != 3 || st.Audio != uint64(len(in)-2) {
		t.Errorf("stats %+v", st)
	}
	if h := starts(evs, '#'); len(h) != 1 {
		t.Errorf("reports %v", evs)
	}
	// A gap of more than five packets is not concealed; a jump far back is a
	// sender restart and is accepted.
	far.seq += 50
	for _, p := range far.silence(40 * time.Millisecond) {
		s.Packet(nil, p.at, p.from, p.b)
	}
	far.seq -= 1000
	for _, p := range far.silence(40 * time.Millisecond) {
		s.Packet(nil, p.at, p.from, p.b)
	}
	if st2 := s.Stats(); st2.Concealed != 3 || st2.Dropped.Old != 2 || st2.Audio != st.Audio+4 {
		t.Errorf("after jumps: %+v", st2)
	}
}

// TestStreamLatch covers latching: the first valid source wins, packets
// from the SDP address take the latch over, and Retarget relearns.
func TestStreamLatch(t *testing.T) {
	sdpAddr := "10.0.0.5:4000"
	s := NewStream(StreamConfig{Remote: ap(sdpAddr), Latch: true, Codecs: []Codec{PCMU}, EventPT: 101, HaveEvents: true})
	if _, ok := s.Source(); ok {
		t.Fatal("source known before any packet")
	}
	// Garbage and a wrong payload type from a stranger do not latch.
	evil := newPhone(stranger, PCMU)
	s.Packet(nil, time.Second, ap(stranger), []byte("garbage garbage"))
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}
	s.Packet(nil, time.Second, ap(stranger), marshal(h, make([]byte, 4)))
	if _, ok := s.Source(); ok {
		t.Fatal("latched on an invalid packet")
	}
	natted := newPhone("192.0.2.200:61000", PCMU)
	feed(s, natted.silence(60*time.Millisecond))
	if src, ok := s.Source(); !ok || src != natted.from {
		t.Fatalf("source %v %v, want %v", src, ok, natted.from)
	}
	feed(s, evil.silence(60*time.Millisecond))
	if st := s.Stats(); st.Dropped.Source != 3 || st.Source != natted.from {
		t.Fatalf("stats %+v", st)
	}
	// The SDP address itself takes over, with its own SSRC.
	direct := newPhone(sdpAddr, PCMU)
	direct.ssrc = 77
	evs := feed(s, direct.audio(hashTone()))
	if len(starts(evs, '#')) != 1 {
		t.Fatalf("reports %v", evs)
	}
	if src, _ := s.Source(); src != direct.from || s.Stats().SSRC != 77 {
		t.Fatalf("source %v ssrc %d", src, s.Stats().SSRC)
	}
	// Retarget: the far end moved; the new address and SSRC are learned.
	s.Retarget(ap("10.0.0.6:4002"))
	moved := newPhone("10.0.0.6:4002", PCMU)
	moved.ssrc = 78
	feed(s, moved.silence(60*time.Millisecond))
	if src, _ := s.Source(); src != moved.from || s.Stats().SSRC != 78 {
		t.Fatalf("after Retarget: source %v ssrc %d", src, s.Stats().SSRC)
	}
}

// TestStreamRetargetStrict: without latching, Retarget switches the
// accepted address.
func TestStreamRetargetStrict(t *testing.T) {
	s := NewStream(streamCfg(PCMU))
	far := newPhone(farEnd, PCMU)
	feed(s, far.silence(40*time.Millisecond))
	s.Retarget(ap("198.51.100.8:40002"))
	feed(s, far.silence(40*time.Millisecond))
	moved := newPhone("198.51.100.8:40002", PCMU)
	moved.ssrc = 5
	evs := feed(s, moved.audio(hashTone()))
	if len(starts(evs, '#')) != 1 || s.Stats().Dropped.Source != 2 {
		t.Fatalf("reports %v stats %+v", evs, s.Stats())
	}
}

// TestStreamMixedCodecs: the far end may send any codec of the answer.
func TestStreamMixedCodecs(t *testing.T) {
	s := NewStream(StreamConfig{Remote: ap(farEnd), Codecs: []Codec{PCMU, PCMA}})
	far := newPhone(farEnd, PCMU)
	pk := far.audio(dtmftest.Silence(100 * time.Millisecond))
	far.codec = PCMA
	pk = append(pk, far.audio(hashTone())...)
	evs := feed(s, pk)
	if h := starts(evs, '#'); len(h) != 1 || s.Stats().Dropped.Total() != 0 {
		t.Fatalf("reports %v stats %+v", evs, s.Stats())
	}
}

// TestStreamIPv4Mapped: a dual-stack socket reports IPv4 peers as
// ::ffff:a.b.c.d.
func TestStreamIPv4Mapped(t *testing.T) {
	s := NewStream(streamCfg(PCMU))
	far := newPhone(farEnd, PCMU)
	far.from = netip.AddrPortFrom(netip.AddrFrom16(far.from.Addr().As16()), far.from.Port())
	evs := feed(s, far.audio(hashTone()))
	if len(starts(evs, '#')) != 1 {
		t.Fatalf("reports %v stats %+v", evs, s.Stats())
	}
}

// TestStreamPacketAllocs asserts that the receive path does not allocate.
func TestStreamPacketAllocs(t *testing.T) {
	s := NewStream(streamCfg(PCMU))
	far := newPhone(farEnd, PCMU)
	pk := concat(far.audio(hashTone()), far.press(101, '#', 100*time.Millisecond), far.interleaved(hashTone(), 101, '1', 100*time.Millisecond))
	dst := make([]dtmf.Event, 0, 64)
	// Warm up: the first lockRun packets lock the stream (held packets'
	// buffers are allocated once, then reused).
	for _, p := range pk[:lockRun] {
		dst, _ = s.Packet(dst[:0], p.at, p.from, p.b)
	}
	i := lockRun
	allocs := testing.AllocsPerRun(len(pk)-lockRun, func() {
		p := pk[i%len(pk)]
		dst, _ = s.Packet(dst[:0], p.at, p.from, p.b)
		i++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet", allocs)
	}
	// A forger's packets beside the phone's: held, then dropped, with no
	// allocation once the candidates' buffers exist.
	evil := newPhone(farEnd, PCMU)
	evil.ssrc, evil.at = 0x0badc0de, far.at+time.Millisecond
	mix := interleave(far.silence(2*time.Second), evil.silence(2*time.Second))
	for _, p := range mix[:20] {
		dst, _ = s.Packet(dst[:0], p.at, p.from, p.b)
	}
	j := 20
	allocs = testing.AllocsPerRun(len(mix)-21, func() {
		p := mix[j]
		dst, _ = s.Packet(dst[:0], p.at, p.from, p.b)
		j++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet beside a forger's", allocs)
	}
	if st := s.Stats(); st.Dropped.SSRC < 90 || st.SSRC != far.ssrc {
		t.Errorf("the forger's packets were not held and dropped: %+v", st)
	}
	allocs = testing.AllocsPerRun(100, func() {
		dst = s.Tick(dst[:0], 10*time.Second)
		dst = s.Info(dst[:0], 11*time.Second, '5', 100*time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Tick and Info", allocs)
	}
}

func BenchmarkStreamPacket(b *testing.B) {
	for _, bc := range []struct {
		name  string
		codec Codec
	}{{"PCMU", PCMU}, {"PCMA", PCMA}} {
		b.Run(bc.name, func(b *testing.B) {
			s := NewStream(streamCfg(bc.codec))
			far := newPhone(farEnd, bc.codec)
			pk := far.audio(dtmftest.AddNoise(dtmftest.NewRand(1), dtmftest.Silence(time.Second), -40))
			buf := make([]byte, len(pk[0].b))
			dst := make([]dtmf.Event, 0, 16)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				copy(buf, pk[i%len(pk)].b)
				// Keep sequence numbers and timestamps moving forward.
				buf[2], buf[3] = byte(i>>8), byte(i)
				ts := uint32(i) * FrameSamples
				buf[4], buf[5], buf[6], buf[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
				dst, _ = s.Packet(dst[:0], time.Duration(i)*FrameDuration, pk[0].from, buf)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
		})
	}
}

func ExampleStream() {
	// The far end's address and payload types come from the SDP answer.
	s := NewStream(StreamConfig{
		Remote:     netip.MustParseAddrPort("198.51.100.7:40000"),
		Codecs:     []Codec{PCMU},
		EventPT:    101,
		HaveEvents: true,
	})
	from := netip.MustParseAddrPort("198.51.100.7:40000")

	// One press of # as RFC 4733 telephone-events: 100 ms, updates every
	// 20 ms, arriving 20 ms apart on our clock.
	enc := dtmf.NewEncoder(dtmf.EncoderConfig{SSRC: 0x1234, Sequence: 1, Timestamp: 8000, Interval: 20 * time.Millisecond})
	var presses []dtmf.Event
	for i, p := range enc.Press(nil, '#', 100*time.Millisecond) {
		buf := make([]byte, p.MarshalSize())
		n, _ := p.MarshalTo(buf)
		presses, _ = s.Packet(presses, time.Second+time.Duration(i)*20*time.Millisecond, from, buf[:n])
	}
	// The same press forged from elsewhere is dropped.
	p := enc.Press(nil, '#', 100*time.Millisecond)[0]
	buf := make([]byte, p.MarshalSize())
	n, _ := p.MarshalTo(buf)
	presses, _ = s.Packet(presses, 2*time.Second, netip.MustParseAddrPort("203.0.113.66:40000"), buf[:n])

	for _, e := range presses {
		fmt.Println(e.Key, e.Source, "ended:", e.Ended, "at", e.Start)
	}
	fmt.Println("dropped from another source:", s.Stats().Dropped.Source)
	// Output:
	// # rfc4733 ended: false at 1s
	// # rfc4733 ended: true at 1s
	// dropped from another source: 1
}

// TestStreamLock is the table of the lock rules: what a forger's packets
// before, beside and instead of the phone's come to, and how the phone's
// own stream still locks and decides.
func TestStreamLock(t *testing.T) {
	const evilSSRC = 0x0badc0de
	type want struct {
		hashes  int
		ssrc    uint32 // locked at the end
		locks   uint64
		dropped Drops
		at      time.Duration // the # start, when hashes == 1 and at != 0
	}
	remote := ap(farEnd)
	for _, tc := range []struct {
		name string
		cfg  StreamConfig
		pkts func() []pkt
		want want
	}{
		{
			name: "one forged rfc4733 # before the phone's first packet",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far, evil := newPhone(farEnd, PCMU), newPhone(farEnd, PCMU)
				evil.ssrc, evil.at = evilSSRC, far.at-10*time.Millisecond
				forged := evil.press(101, '#', 200*time.Millisecond)[:1] // a spoofed first packet
				return concat(forged, far.silence(200*time.Millisecond), far.press(101, '#', 200*time.Millisecond))
			},
			want: want{hashes: 1, ssrc: 0x11223344, locks: 1, dropped: Drops{SSRC: 1}},
		},
		{
			name: "two forged packets (N-1) before and between the phone's",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far, evil := newPhone(farEnd, PCMU), newPhone(farEnd, PCMU)
				evil.ssrc, evil.at = evilSSRC, far.at-10*time.Millisecond
				forged := evil.press(101, '#', 200*time.Millisecond)[:lockRun-1]
				return concat(interleave(far.silence(200*time.Millisecond), forged), far.audio(hashTone()))
			},
			want: want{hashes: 1, ssrc: 0x11223344, locks: 1, dropped: Drops{SSRC: lockRun - 1}},
		},
		{
			name: "a spray of single packets of random SSRCs beside the phone's start",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				var spray []pkt
				for i := range 20 {
					evil := newPhone(farEnd, PCMU)
					evil.ssrc, evil.at = uint32(1000+i), far.at+time.Duration(i)*10*time.Millisecond-time.Millisecond
					spray = append(spray, evil.press(101, '#', 40*time.Millisecond)[0])
				}
				return interleave(far.audio(hashTone()), spray)
			},
			want: want{hashes: 1, ssrc: 0x11223344, locks: 1, dropped: Drops{SSRC: 20}},
		},
		{
			name: "a forger's burst of N locks, the phone's continuous stream takes over and decides",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far, evil := newPhone(farEnd, PCMU), newPhone(farEnd, PCMU)
				evil.ssrc = evilSSRC
				burst := evil.silence(time.Duration(lockRun) * FrameDuration)
				for i := range burst {
					burst[i].at = far.at - time.Duration(lockRun-i)*time.Millisecond
				}
				return concat(burst, far.audio(hashTone()))
			},
			want: want{hashes: 1, ssrc: 0x11223344, locks: 2},
		},
		{
			name: "a forger's continuous stream beside the live phone never takes over",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far, evil := newPhone(farEnd, PCMU), newPhone(farEnd, PCMU)
				evil.ssrc, evil.at = evilSSRC, far.at+5*time.Millisecond
				return interleave(far.silence(1500*time.Millisecond), evil.audio(dtmftest.Concat(hashTone(), hashTone())))
			},
			want: want{ssrc: 0x11223344, locks: 1, dropped: Drops{SSRC: 2 * 31}},
		},
		{
			name: "the far end changes its SSRC without a re-INVITE",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				lead := far.silence(200 * time.Millisecond)
				far.ssrc, far.seq = 0x55667788, 100
				return concat(lead, far.audio(hashTone()))
			},
			want: want{hashes: 1, ssrc: 0x55667788, locks: 2},
		},
		{
			name: "a press in the phone's first packets is decided at the lock, timed at its start",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				return concat(far.press(101, '#', 200*time.Millisecond), far.silence(100*time.Millisecond))
			},
			want: want{hashes: 1, ssrc: 0x11223344, locks: 1, at: time.Second + FrameDuration},
		},
		{
			name: "reordered and lost first packets still lock",
			cfg:  streamCfg(PCMU),
			pkts: func() []pkt {
				far := newPhone(farEnd, PCMU)
				p := far.audio(hashTone())
				return concat([]pkt{p[0], p[2], p[1], p[4]}, p[5:])
			},
			want: want{hashes: 1, ssrc: 0x11223344, locks: 1, dropped: Drops{Old: 1}},
		},
		{
			name: "latching: a stranger's packet first does not latch, the NATed phone does",
			cfg:  StreamConfig{Remote: ap("10.0.0.5:4000"), Latch: true, Codecs: []Codec{PCMU}, EventPT: 101, HaveEvents: true},
			pkts: func() []pkt {
				far, evil := newPhone(farEnd, PCMU), newPhone(stranger, PCMU)
				evil.ssrc, evil.at = evilSSRC, far.at-10*time.Millisecond
				return concat(evil.press(101, '#', 200*time.Millisecond)[:1], far.audio(hashTone()))
			},
			want: want{hashes: 1, ssrc: 0x11223344, locks: 1, dropped: Drops{Source: 1}},
		},
		{
			name: "latching: a stranger streaming first loses the latch to the SDP address",
			cfg:  StreamConfig{Remote: remote, Latch: true, Codecs: []Codec{PCMU}, EventPT: 101, HaveEvents: true},
			pkts: func() []pkt {
				far, evil := newPhone(farEnd, PCMU), newPhone(stranger, PCMU)
				evil.ssrc, evil.at = evilSSRC, far.at-100*time.Millisecond
				// The stranger's tone starts 200 ms after the phone's first packet.
				return interleave(far.audio(hashTone()), evil.audio(dtmftest.Concat(dtmftest.Silence(300*time.Millisecond), dtmftest.DTMF('#', -10, 300*time.Millisecond))))
			},
			// The stranger's 30 packets from 0.92 s: the phone's third, at
			// 1.06 s, takes the latch; the stranger's 23 from then on are
			// dropped.
			want: want{hashes: 1, ssrc: 0x11223344, locks: 2, dropped: Drops{Source: 23}},
		},
		{
			name: "latching: once on the SDP address, a stranger never takes over, even in a pause",
			cfg:  StreamConfig{Remote: remote, Latch: true, Codecs: []Codec{PCMU}, EventPT: 101, HaveEvents: true},
			pkts: func() []pkt {
				far, evil := newPhone(farEnd, PCMU), newPhone(stranger, PCMU)
				evil.ssrc = evilSSRC
				lead := far.silence(100 * time.Millisecond) // latched
				evil.at = far.at
				return concat(lead, evil.audio(hashTone()))
			},
			want: want{ssrc: 0x11223344, locks: 1, dropped: Drops{Source: 31}},
		},
		{
			name: "latching: a NATed phone pausing loses the latch to a stranger streaming",
			cfg:  StreamConfig{Remote: ap("10.0.0.5:4000"), Latch: true, Codecs: []Codec{PCMU}, EventPT: 101, HaveEvents: true},
			pkts: func() []pkt {
				far, evil := newPhone(farEnd, PCMU), newPhone(stranger, PCMU)
				evil.ssrc = evilSSRC
				lead := far.silence(100 * time.Millisecond)
				evil.at = far.at
				// What symmetric_latching gives up (configs/hashcall.yaml).
				return concat(lead, evil.audio(hashTone()))
			},
			want: want{hashes: 1, ssrc: evilSSRC, locks: 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStream(tc.cfg)
			evs := feed(s, tc.pkts())
			hashes := starts(evs, '#')
			if len(hashes) != tc.want.hashes {
				t.Fatalf("%d # presses, want %d: %v", len(hashes), tc.want.hashes, evs)
			}
			if tc.want.at != 0 && hashes[0].Start != tc.want.at {
				t.Errorf("# at %v, want %v", hashes[0].Start, tc.want.at)
			}
			st := s.Stats()
			if st.SSRC != tc.want.ssrc || st.Locks != tc.want.locks {
				t.Errorf("locked SSRC %#x after %d locks, want %#x after %d", st.SSRC, st.Locks, tc.want.ssrc, tc.want.locks)
			}
			if st.Dropped != tc.want.dropped {
				t.Errorf("dropped %+v, want %+v", st.Dropped, tc.want.dropped)
			}
		})
	}
}

// TestStreamPacketDrop checks what Packet says happened to each packet,
// and that it, with the drops OnDrop reports later, is what Stats counts.
func TestStreamPacketDrop(t *testing.T) {
	rtcp := []byte{0x80, 201, 0, 1, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0}
	short := []byte{0x80, 0, 0, 1}
	for _, tc := range []struct {
		name  string
		latch bool
		// pkts builds the packets; the last one's result is checked.
		pkts      func(far, evil *phone) []pkt
		want      Drop
		wantLater []Drop // reported by OnDrop, in order
	}{
		{name: "held before the lock", pkts: func(far, _ *phone) []pkt { return far.silence(20 * time.Millisecond) }, want: DropNone},
		{name: "locks", pkts: func(far, _ *phone) []pkt { return far.silence(60 * time.Millisecond) }, want: DropNone},
		{name: "stranger", pkts: func(far, evil *phone) []pkt {
			return concat(far.silence(60*time.Millisecond), evil.silence(20*time.Millisecond))
		}, want: DropSource},
		{name: "not RTP", pkts: func(far, _ *phone) []pkt {
			return append(far.silence(60*time.Millisecond), pkt{at: time.Minute, from: far.from, b: short})
		}, want: DropNotRTP},
		{name: "RTCP", pkts: func(far, _ *phone) []pkt {
			return append(far.silence(60*time.Millisecond), pkt{at: time.Minute, from: far.from, b: rtcp})
		}, want: DropRTCP},
		{name: "payload type", pkts: func(far, _ *phone) []pkt {
			p := far.silence(80 * time.Millisecond)
			p[3].b[1] = 96
			return p
		}, want: DropPayloadType},
		{name: "duplicate", pkts: func(far, _ *phone) []pkt {
			p := far.silence(60 * time.Millisecond)
			return append(p, pkt{at: time.Minute, from: far.from, b: p[1].b})
		}, want: DropOld},
		{name: "duplicate held, dropped at the lock", pkts: func(far, _ *phone) []pkt {
			p := far.silence(60 * time.Millisecond)
			return []pkt{p[0], p[1], p[1], p[2]}
		}, want: DropNone, wantLater: []Drop{DropOld}},
		{name: "other SSRC given up at the lock", pkts: func(far, _ *phone) []pkt {
			other := newPhone(farEnd, PCMU)
			other.ssrc++
			return concat(other.silence(20*time.Millisecond), far.silence(60*time.Millisecond))
		}, want: DropNone, wantLater: []Drop{DropSSRC}},
		{name: "latching: other source given up", latch: true, pkts: func(far, evil *phone) []pkt {
			return concat(evil.silence(20*time.Millisecond), far.silence(60*time.Millisecond))
		}, want: DropNone, wantLater: []Drop{DropSource}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := streamCfg(PCMU)
			cfg.Latch = tc.latch
			s := NewStream(cfg)
			var later []Drop
			s.OnDrop(func(d DroppedPacket) { later = append(later, d.Reason) })
			var told Drops
			var drop Drop
			for _, p := range tc.pkts(newPhone(farEnd, PCMU), newPhone(stranger, PCMU)) {
				_, drop = s.Packet(nil, p.at, p.from, p.b)
				told.Add(drop, 1)
			}
			if drop != tc.want {
				t.Errorf("last packet: %v, want %v", drop, tc.want)
			}
			if !slices.Equal(later, tc.wantLater) {
				t.Errorf("OnDrop reported %v, want %v", later, tc.wantLater)
			}
			for _, d := range later {
				told.Add(d, 1)
			}
			if st := s.Stats(); st.Dropped != told {
				t.Errorf("Stats dropped %+v, told %+v", st.Dropped, told)
			}
		})
	}
}
