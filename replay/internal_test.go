package replay

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

func TestSeqStats(t *testing.T) {
	tests := []struct {
		name                string
		seqs                []uint16
		lost, dup, reorders uint64
		gaps                []int // returned gap for each packet
	}{
		{"in_order", []uint16{1, 2, 3, 4}, 0, 0, 0, []int{0, 0, 0, 0}},
		{"loss", []uint16{1, 2, 5, 6}, 2, 0, 0, []int{0, 0, 2, 0}},
		{"duplicate", []uint16{1, 2, 2, 3}, 0, 1, 0, []int{0, 0, 0, 0}},
		{"reordered", []uint16{1, 3, 2, 4}, 0, 0, 1, []int{0, 1, 0, 0}},
		{"reordered_duplicate", []uint16{1, 3, 2, 2, 4}, 0, 1, 1, []int{0, 1, 0, 0, 0}},
		{"wrap", []uint16{65534, 65535, 0, 2}, 1, 0, 0, []int{0, 0, 0, 1}},
		{"restart", []uint16{100, 101, 40000, 40001}, 0, 0, 0, []int{0, 0, 0, 0}},
		{"late_first", []uint16{10, 9, 11}, 0, 0, 1, []int{0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s seqStats
			for i, q := range tc.seqs {
				if gap, _ := s.add(q); gap != tc.gaps[i] {
					t.Errorf("packet %d (seq %d): gap %d, want %d", i, q, gap, tc.gaps[i])
				}
			}
			if s.lost() != tc.lost || s.dup != tc.dup || s.reordered != tc.reorders {
				t.Errorf("lost %d dup %d reordered %d, want %d %d %d", s.lost(), s.dup, s.reordered, tc.lost, tc.dup, tc.reorders)
			}
		})
	}
}

func TestReassembler(t *testing.T) {
	payload := make([]byte, 100)
	for i := range payload {
		payload[i] = byte(i)
	}
	type frag struct {
		off  int
		more bool
		data []byte
	}
	split := func(offs ...int) []frag {
		var out []frag
		for i, o := range offs {
			end := len(payload)
			if i+1 < len(offs) {
				end = offs[i+1]
			}
			out = append(out, frag{o, i+1 < len(offs), payload[o:end]})
		}
		return out
	}
	tests := []struct {
		name       string
		frags      []frag
		complete   bool
		incomplete int // after finish
	}{
		{"in_order", split(0, 40, 80), true, 0},
		{"reversed", func() []frag { f := split(0, 40, 80); return []frag{f[2], f[1], f[0]} }(), true, 0},
		{"overlapping", []frag{{0, true, payload[:48]}, {40, true, payload[40:88]}, {80, false, payload[80:]}}, true, 0},
		{"duplicate_fragment", func() []frag { f := split(0, 40, 80); return []frag{f[0], f[0], f[1], f[2]} }(), true, 0},
		{"missing_middle", func() []frag { f := split(0, 40, 80); return []frag{f[0], f[2]} }(), false, 1},
		{"unaligned_middle", []frag{{0, true, payload[:41]}, {41, false, payload[41:]}}, false, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r reassembler
			key := fragKey{src: netip.MustParseAddr("192.0.2.1"), dst: netip.MustParseAddr("192.0.2.2"), id: 7, proto: 17}
			var got []byte
			done := false
			for _, f := range tc.frags {
				if out, ok := r.add(key, f.off, f.more, f.data, 0); ok {
					got, done = bytes.Clone(out), true
				}
			}
			r.finish()
			if done != tc.complete || done && !bytes.Equal(got, payload) {
				t.Errorf("complete %v (%d bytes), want %v", done, len(got), tc.complete)
			}
			if r.incomplete != tc.incomplete {
				t.Errorf("incomplete %d, want %d", r.incomplete, tc.incomplete)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		var r reassembler
		key := fragKey{id: 1, proto: 17}
		r.add(key, 0, true, payload[:40], 0)
		r.add(fragKey{id: 2, proto: 17}, 0, true, payload[:40], fragTimeout+time.Second)
		if r.incomplete != 1 || len(r.pending) != 1 {
			t.Errorf("incomplete %d pending %d", r.incomplete, len(r.pending))
		}
	})
}

// udpFrame is an Ethernet/IPv4/UDP frame carrying payload.
func udpFrame(src, dst netip.AddrPort, payload []byte) []byte {
	b := make([]byte, 14+20+8, 14+20+8+len(payload))
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(payload)))
	ip[8], ip[9] = 64, 17
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	u := ip[20:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

func TestDecodeLinkTypes(t *testing.T) {
	src, dst := netip.MustParseAddrPort("192.0.2.1:4000"), netip.MustParseAddrPort("192.0.2.2:5000")
	src6, dst6 := netip.MustParseAddrPort("[2001:db8::1]:4000"), netip.MustParseAddrPort("[2001:db8::2]:5000")
	eth := udpFrame(src, dst, []byte("hello"))
	ip := eth[14:]
	vlan := append(append(bytes.Clone(eth[:12]), 0x81, 0x00, 0x00, 0x05), eth[12:]...)
	tests := []struct {
		name  string
		link  layers.LinkType
		frame []byte
		want  frameKind
	}{
		{"ethernet", layers.LinkTypeEthernet, eth, frameUDP},
		{"ethernet_vlan", layers.LinkTypeEthernet, vlan, frameUDP},
		{"sll", layers.LinkTypeLinuxSLL, append(append(make([]byte, 14), 0x08, 0x00), ip...), frameUDP},
		{"sll2", layers.LinkTypeLinuxSLL2, append([]byte{0x08, 0x00, 0, 0, 0, 0, 0, 1, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0}, ip...), frameUDP},
		{"null_le", layers.LinkTypeNull, append([]byte{2, 0, 0, 0}, ip...), frameUDP},
		{"null_be", layers.LinkTypeNull, append([]byte{0, 0, 0, 2}, ip...), frameUDP},
		{"null_unknown_family", layers.LinkTypeNull, append([]byte{7, 0, 0, 0}, ip...), frameOther},
		{"raw", layers.LinkTypeRaw, ip, frameUDP},
		{"raw_bsd", linkTypeRawAlt, ip, frameUDP},
		{"ipv4", layers.LinkTypeIPv4, ip, frameUDP},
		{"arp", layers.LinkTypeEthernet, append(append(make([]byte, 12), 0x08, 0x06), make([]byte, 28)...), frameOther},
		{"truncated_ip", layers.LinkTypeEthernet, eth[:30], frameTruncated},
		{"truncated_udp", layers.LinkTypeEthernet, eth[:len(eth)-2], frameTruncated},
		{"tcp", layers.LinkTypeEthernet, func() []byte { f := bytes.Clone(eth); f[14+9] = 6; return f }(), frameOther},
		{"unsupported", layers.LinkType(220), eth, frameOther},
		// PPPoE session (RFC 2516) on Ethernet: version/type, code 0, session id, length, then PPP protocol 0x0021 (IPv4).
		{"pppoe", layers.LinkTypeEthernet, append(append(bytes.Clone(eth[:12]), 0x88, 0x64, 0x11, 0x00, 0x12, 0x34, byte((len(ip)+2)>>8), byte(len(ip)+2), 0x00, 0x21), ip...), frameUDP},
		{"pppoe_vlan", layers.LinkTypeEthernet, append(append(bytes.Clone(eth[:12]), 0x81, 0x00, 0x00, 0x07, 0x88, 0x64, 0x11, 0x00, 0x12, 0x34, byte((len(ip)+2)>>8), byte(len(ip)+2), 0x00, 0x21), ip...), frameUDP},
		{"pppoe_no_ethernet", layers.LinkTypePPPEthernet, append([]byte{0x11, 0x00, 0x12, 0x34, byte((len(ip) + 2) >> 8), byte(len(ip) + 2), 0x00, 0x21}, ip...), frameUDP},
		{"pppoe_cut", layers.LinkTypeEthernet, append(bytes.Clone(eth[:12]), 0x88, 0x64, 0x11, 0x00), frameTruncated},
		// PPP with the HDLC address and control bytes (RFC 1662), and without.
		{"ppp_hdlc", layers.LinkTypePPP_HDLC, append([]byte{0xff, 0x03, 0x00, 0x21}, ip...), frameUDP},
		{"ppp", layers.LinkTypePPP, append([]byte{0x00, 0x21}, ip...), frameUDP},
		// One MPLS label (RFC 3032), bottom of stack, then IPv4.
		{"mpls", layers.LinkTypeEthernet, append(append(bytes.Clone(eth[:12]), 0x88, 0x47, 0x00, 0x01, 0x01, 0x40), ip...), frameUDP},
		{"ipv6_atomic_fragment", layers.LinkTypeRaw, ip6Atomic(src6, dst6, []byte("hello")), frameUDP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d decoder
			var out datagram
			got := d.decode(tc.link, tc.frame, 0, &out)
			if got != tc.want {
				t.Fatalf("kind %d, want %d", got, tc.want)
			}
			wsrc, wdst := src, dst
			if out.src.Addr().Is6() {
				wsrc, wdst = src6, dst6
			}
			if got == frameUDP && (out.src != wsrc || out.dst != wdst || string(out.payload) != "hello") {
				t.Errorf("datagram %v -> %v %q", out.src, out.dst, out.payload)
			}
		})
	}
}

// The per-packet path allocates nothing once a stream is set up: decoding
// the frame, finding the stream, counting and the live receive path.
func TestFeedAllocations(t *testing.T) {
	e := newEngine(Options{})
	src, dst := netip.MustParseAddrPort("192.0.2.1:4000"), netip.MustParseAddrPort("192.0.2.2:5000")
	audio := make([]byte, 12+160)
	audio[0], audio[1] = 0x80, 0
	binary.BigEndian.PutUint32(audio[8:], 0xabcdef)
	frame := udpFrame(src, dst, audio)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := uint16(0)
	next := func() {
		seq++
		binary.BigEndian.PutUint16(frame[14+20+8+2:], seq)
		binary.BigEndian.PutUint32(frame[14+20+8+4:], uint32(seq)*160)
		ts = ts.Add(20 * time.Millisecond)
		e.frame(layers.LinkTypeEthernet, frame, ts)
	}
	for range 10 {
		next()
	}
	if len(e.streams) != 1 || e.streams[0].out.Packets != 10 {
		t.Fatalf("streams %d", len(e.streams))
	}
	if n := testing.AllocsPerRun(500, next); n != 0 {
		t.Errorf("%.1f allocations per packet, want 0", n)
	}
}

// ip6Atomic is an IPv6 packet whose UDP datagram sits behind a fragment
// header with offset 0 and no more fragments (RFC 8200 §4.5, RFC 6946).
func ip6Atomic(src, dst netip.AddrPort, payload []byte) []byte {
	b := make([]byte, 40+8+8)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(16+len(payload)))
	b[6], b[7] = 44, 64
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	f := b[40:]
	f[0] = 17
	binary.BigEndian.PutUint32(f[4:], 0x1234)
	u := b[48:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	return append(b, payload...)
}
