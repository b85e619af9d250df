package media

import (
	"net/netip"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/pion/rtp"
)

// pkt is one datagram arriving at a Stream.
type pkt struct {
	at   time.Duration
	from netip.AddrPort
	b    []byte
}

// phone writes the RTP stream of a simulated far end.
type phone struct {
	from  netip.AddrPort
	ssrc  uint32
	seq   uint16
	ts    uint32
	at    time.Duration // arrival time of the next audio packet
	codec Codec
}

func newPhone(from string, codec Codec) *phone {
	return &phone{from: netip.MustParseAddrPort(from), ssrc: 0x11223344, seq: 65500, ts: 4294960000, at: time.Second, codec: codec}
}

func marshal(h rtp.Header, payload []byte) []byte {
	b := make([]byte, h.MarshalSize()+len(payload))
	n, err := h.MarshalTo(b)
	if err != nil {
		panic(err)
	}
	copy(b[n:], payload)
	return b
}

// audio returns the packets of samples, one per 20 ms, the last frame
// padded with silence.
func (p *phone) audio(samples []int16) []pkt {
	data := p.codec.encode(nil, samples)
	var out []pkt
	for i := 0; i < len(data); i += FrameSamples {
		out = append(out, p.frame(data[i:i+FrameSamples]))
	}
	return out
}

// frame returns one audio packet; the timestamp and arrival advance 20 ms.
func (p *phone) frame(payload []byte) pkt {
	h := rtp.Header{Version: 2, PayloadType: p.codec.PayloadType, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: p.ssrc}
	p.seq++
	p.ts += FrameSamples
	p.at += FrameDuration
	return pkt{at: p.at, from: p.from, b: marshal(h, payload)}
}

// silence returns d of silent audio packets.
func (p *phone) silence(d time.Duration) []pkt {
	return p.audio(make([]int16, int(d*SampleRate/time.Second)))
}

// press returns the RFC 4733 packets of one press of key on pt, replacing
// audio (the timestamp and clock advance by the press's packets, 20 ms
// apart), as Asterisk and linphone send them.
func (p *phone) press(pt uint8, key dtmf.Key, d time.Duration) []pkt {
	enc := dtmf.NewEncoder(dtmf.EncoderConfig{PayloadType: pt, SSRC: p.ssrc, Sequence: p.seq, Timestamp: p.ts, Interval: FrameDuration})
	var out []pkt
	for _, e := range enc.Press(nil, key, d) {
		payload, _ := e.Payload.Marshal()
		p.at += FrameDuration
		out = append(out, pkt{at: p.at, from: p.from, b: marshal(e.Header, payload)})
	}
	p.seq = enc.Sequence()
	p.ts = enc.Timestamp()
	return out
}

// interleaved returns audio (samples) with an RFC 4733 press of key on pt
// starting at the same time, each event packet right after the audio packet
// of its slot in the same SSRC and sequence space, as baresip sends them.
func (p *phone) interleaved(samples []int16, pt uint8, key dtmf.Key, d time.Duration) []pkt {
	enc := dtmf.NewEncoder(dtmf.EncoderConfig{PayloadType: pt, SSRC: p.ssrc, Timestamp: p.ts, Interval: FrameDuration})
	events := enc.Press(nil, key, d)
	data := p.codec.encode(nil, samples)
	var out []pkt
	for i := 0; i < len(data) || len(events) > 0; i += FrameSamples {
		frame := silenceFrame(p.codec)
		if i < len(data) {
			frame = data[i : i+FrameSamples]
		}
		out = append(out, p.frame(frame))
		if len(events) > 0 {
			e := events[0]
			events = events[1:]
			e.Header.SequenceNumber = p.seq
			p.seq++
			payload, _ := e.Payload.Marshal()
			out = append(out, pkt{at: p.at + time.Millisecond, from: p.from, b: marshal(e.Header, payload)})
		}
	}
	return out
}

func silenceFrame(c Codec) []byte {
	return c.encode(nil, make([]int16, FrameSamples))
}

// feed runs pkts through s, then lets a second pass without packets end
// every press, and returns all reports.
func feed(s *Stream, pkts []pkt) []dtmf.Event {
	var evs []dtmf.Event
	var last time.Duration
	for _, p := range pkts {
		evs, _ = s.Packet(evs, p.at, p.from, p.b)
		last = p.at
	}
	evs = s.Tick(evs, last+time.Second)
	return s.Flush(evs, last+time.Second)
}

// starts returns the start reports of key in evs.
func starts(evs []dtmf.Event, key dtmf.Key) []dtmf.Event {
	var out []dtmf.Event
	for _, e := range evs {
		if !e.Ended && e.Key == key {
			out = append(out, e)
		}
	}
	return out
}

func concat(parts ...[]pkt) []pkt {
	var out []pkt
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// interleave merges two packet sequences in order of arrival (a first on
// ties), as two senders' packets reach one socket.
func interleave(a, b []pkt) []pkt {
	out := make([]pkt, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || len(a) > 0 && a[0].at <= b[0].at {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}
