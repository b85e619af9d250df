package replay_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/hashcall/hashcall/dtmf"
)

// This file builds captures for tests: it reads golden captures into
// datagrams with gopacket, and writes datagrams as pcap or pcapng with any
// of the supported link types, over IPv4 or IPv6, optionally fragmented.

// epoch is the capture time of synthetic captures' first packet.
var epoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// pkt is one UDP datagram of a capture.
type pkt struct {
	at       time.Duration // from the start of the capture
	src, dst netip.AddrPort
	data     []byte
}

func (p pkt) clone() pkt {
	p.data = bytes.Clone(p.data)
	return p
}

func (p pkt) isSIP() bool {
	return bytes.HasPrefix(p.data, []byte("SIP/2.0 ")) || bytes.Contains(firstLine(p.data), []byte(" SIP/2.0"))
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

func (p pkt) isRTP() bool { return !p.isSIP() && len(p.data) >= 12 && p.data[0]>>6 == 2 }
func (p pkt) pt() uint8   { return p.data[1] & 0x7f }
func (p pkt) ssrc() uint32 {
	return binary.BigEndian.Uint32(p.data[8:12])
}

// readPkts reads the UDP datagrams of a capture (Ethernet or Linux SLL)
// with gopacket.
func readPkts(t testing.TB, path string) []pkt {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var link layers.LinkType
	if pr, err := pcapgo.NewReader(f); err == nil {
		src, link = pr, pr.LinkType()
	} else {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		nr, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		src, link = nr, nr.LinkType()
	}
	var out []pkt
	var t0 time.Time
	for {
		data, ci, err := src.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if t0.IsZero() {
			t0 = ci.Timestamp
		}
		p := gopacket.NewPacket(data, link, gopacket.Default)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil {
			continue
		}
		var sa, da netip.Addr
		switch ip := p.NetworkLayer().(type) {
		case *layers.IPv4:
			sa, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			da, _ = netip.AddrFromSlice(ip.DstIP.To4())
		case *layers.IPv6:
			sa, _ = netip.AddrFromSlice(ip.SrcIP)
			da, _ = netip.AddrFromSlice(ip.DstIP)
		}
		out = append(out, pkt{
			at:   ci.Timestamp.Sub(t0),
			src:  netip.AddrPortFrom(sa, uint16(udp.SrcPort)),
			dst:  netip.AddrPortFrom(da, uint16(udp.DstPort)),
			data: bytes.Clone(udp.Payload),
		})
	}
	return out
}

// Link types by their real numbers.
const (
	ltPPP      = 9  // PPP, protocol field first (RFC 1661)
	ltPPPHDLC  = 50 // PPP in HDLC-like framing: ff 03, then PPP (RFC 1662)
	ltPPPoE    = 51 // PPPoE session header without Ethernet (RFC 2516)
	ltNull     = 0
	ltEthernet = 1
	ltRaw      = 101
	ltLoop     = 108
	ltSLL      = 113
	ltIPv4     = 228
	ltIPv6     = 229
	ltSLL2     = 276
	ltUSB      = 220 // not supported by replay
)

// capOpts say how to write a capture.
type capOpts struct {
	link    int
	ng      bool
	v6      bool // carry the datagrams over IPv6 (IPv4 addresses mapped to fd00::/96, 127.0.0.1 to ::1)
	fragMTU int  // fragment IP packets larger than this
	nullBE  bool // BSD loopback header in big-endian byte order
	pppoe   bool // Ethernet frames carry PPPoE sessions (as a DSL line's capture does)
	vlan    bool // Ethernet frames carry an 802.1Q tag
}

// to6 maps an IPv4 address into IPv6 for IPv6 variants of IPv4 captures.
func to6(a netip.Addr) netip.Addr {
	if !a.Is4() {
		return a
	}
	if a == netip.MustParseAddr("127.0.0.1") {
		return netip.IPv6Loopback()
	}
	b := a.As4()
	return netip.AddrFrom16([16]byte{0xfd, 0, 12: b[0], 13: b[1], 14: b[2], 15: b[3]})
}

var contentLength = regexp.MustCompile(`(?mi)^(Content-Length|l)\s*:\s*\d+`)

// sipTo6 rewrites the IPv4 addresses in a SIP message's SDP to IPv6 and
// fixes its Content-Length.
func sipTo6(b []byte) []byte {
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok || len(body) == 0 {
		return b
	}
	body = regexp.MustCompile(`IN IP4 ([0-9.]+)`).ReplaceAllFunc(body, func(m []byte) []byte {
		a := netip.MustParseAddr(string(m[len("IN IP4 "):]))
		return []byte("IN IP6 " + to6(a).String())
	})
	head = contentLength.ReplaceAll(head, []byte("Content-Length: "+strconv.Itoa(len(body))))
	return append(append(head, "\r\n\r\n"...), body...)
}

// ipPacket serialises one datagram as IPv4 or IPv6 with gopacket.
func ipPacket(t testing.TB, p pkt, v6 bool, id uint16) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	udp := &layers.UDP{SrcPort: layers.UDPPort(p.src.Port()), DstPort: layers.UDPPort(p.dst.Port())}
	var err error
	if v6 {
		ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: 64,
			SrcIP: to6(p.src.Addr()).AsSlice(), DstIP: to6(p.dst.Addr()).AsSlice()}
		_ = udp.SetNetworkLayerForChecksum(ip)
		err = gopacket.SerializeLayers(buf, opts, ip, udp, gopacket.Payload(p.data))
	} else {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, Protocol: layers.IPProtocolUDP,
			SrcIP: p.src.Addr().AsSlice(), DstIP: p.dst.Addr().AsSlice()}
		_ = udp.SetNetworkLayerForChecksum(ip)
		err = gopacket.SerializeLayers(buf, opts, ip, udp, gopacket.Payload(p.data))
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// fragment splits an IP packet into fragments carrying at most mtu bytes
// of IP payload each (a multiple of 8).
func fragment(ip []byte, mtu int, id uint32) [][]byte {
	chunk := mtu &^ 7
	var out [][]byte
	if ip[0]>>4 == 4 {
		hdr, payload := ip[:20], ip[20:]
		if len(payload) <= chunk {
			return [][]byte{ip}
		}
		for off := 0; off < len(payload); off += chunk {
			end := min(off+chunk, len(payload))
			f := append(bytes.Clone(hdr), payload[off:end]...)
			binary.BigEndian.PutUint16(f[2:4], uint16(len(f)))
			fo := uint16(off / 8)
			if end < len(payload) {
				fo |= 0x2000
			}
			binary.BigEndian.PutUint16(f[6:8], fo)
			out = append(out, f)
		}
		return out
	}
	hdr, payload := ip[:40], ip[40:]
	if len(payload) <= chunk {
		return [][]byte{ip}
	}
	next := hdr[6]
	for off := 0; off < len(payload); off += chunk {
		end := min(off+chunk, len(payload))
		f := append(bytes.Clone(hdr), make([]byte, 8)...)
		f[6] = 44
		f[40] = next
		fo := uint16(off)
		if end < len(payload) {
			fo |= 1
		}
		binary.BigEndian.PutUint16(f[42:44], fo)
		binary.BigEndian.PutUint32(f[44:48], id)
		f = append(f, payload[off:end]...)
		binary.BigEndian.PutUint16(f[4:6], uint16(len(f)-40))
		out = append(out, f)
	}
	return out
}

// linkHeader returns the link-layer header of an IP packet.
func linkHeader(o capOpts, v6 bool, ipLen int) []byte {
	proto := uint16(0x0800)
	fam := uint32(2)
	pppProto := uint16(0x0021)
	if v6 {
		proto, fam, pppProto = 0x86dd, 30, 0x0057
	}
	pppoe := func() []byte {
		h := []byte{0x11, 0x00, 0x12, 0x34, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(h[4:], uint16(ipLen+2))
		binary.BigEndian.PutUint16(h[6:], pppProto)
		return h
	}
	switch o.link {
	case ltEthernet:
		h := make([]byte, 12, 14)
		copy(h[6:], []byte{2, 0, 0, 0, 0, 1})
		if o.vlan {
			h = append(h, 0x81, 0x00, 0x00, 0x07)
		}
		if o.pppoe {
			return append(append(h, 0x88, 0x64), pppoe()...)
		}
		return binary.BigEndian.AppendUint16(h, proto)
	case ltPPP:
		return binary.BigEndian.AppendUint16(nil, pppProto)
	case ltPPPHDLC:
		return binary.BigEndian.AppendUint16([]byte{0xff, 0x03}, pppProto)
	case ltPPPoE:
		return pppoe()
	case ltSLL:
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[2:], 772) // ARPHRD_LOOPBACK
		binary.BigEndian.PutUint16(h[4:], 6)
		binary.BigEndian.PutUint16(h[14:], proto)
		return h
	case ltSLL2:
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], proto)
		binary.BigEndian.PutUint32(h[4:], 1)
		binary.BigEndian.PutUint16(h[8:], 772)
		h[11] = 6
		return h
	case ltNull:
		h := make([]byte, 4)
		if o.nullBE {
			binary.BigEndian.PutUint32(h, fam)
		} else {
			binary.LittleEndian.PutUint32(h, fam)
		}
		return h
	case ltLoop:
		h := make([]byte, 4)
		binary.BigEndian.PutUint32(h, fam)
		return h
	}
	return nil
}

// buildCapture writes pkts as a capture.
func buildCapture(t testing.TB, pkts []pkt, o capOpts) []byte {
	t.Helper()
	if o.link == 0 && !o.nullBE {
		o.link = ltEthernet
	}
	var frames [][]byte
	var times []time.Time
	for i, p := range pkts {
		if o.v6 && p.isSIP() {
			p.data = sipTo6(p.data)
		}
		ip := ipPacket(t, p, o.v6, uint16(i+1))
		parts := [][]byte{ip}
		if o.fragMTU > 0 {
			parts = fragment(ip, o.fragMTU, uint32(i+1))
		}
		for _, f := range parts {
			frames = append(frames, append(linkHeader(o, o.v6, len(f)), f...))
			times = append(times, epoch.Add(p.at))
		}
	}
	var b bytes.Buffer
	if o.ng {
		writeNg(&b, o.link, frames, times)
		return b.Bytes()
	}
	// The file header by hand (pcapgo's takes a uint8 link type), the
	// records by pcapgo.
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], uint32(o.link))
	b.Write(hdr[:])
	w := pcapgo.NewWriter(&b)
	for i, f := range frames {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: times[i], CaptureLength: len(f), Length: len(f)}, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// writeNg writes a pcapng file: with pcapgo's NgWriter when the link type
// fits its uint8, by hand otherwise.
func writeNg(b *bytes.Buffer, link int, frames [][]byte, times []time.Time) {
	if link < 256 {
		w, err := pcapgo.NewNgWriter(b, layers.LinkType(link))
		if err != nil {
			panic(err)
		}
		for i, f := range frames {
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: times[i], CaptureLength: len(f), Length: len(f), InterfaceIndex: 0}, f); err != nil {
				panic(err)
			}
		}
		if err := w.Flush(); err != nil {
			panic(err)
		}
		return
	}
	le := binary.LittleEndian
	block := func(typ uint32, body []byte) {
		n := 12 + (len(body)+3)&^3
		h := make([]byte, 8, n)
		le.PutUint32(h, typ)
		le.PutUint32(h[4:], uint32(n))
		h = append(h, body...)
		h = append(h, make([]byte, n-4-len(h))...)
		h = le.AppendUint32(h, uint32(n))
		b.Write(h)
	}
	shb := le.AppendUint32(nil, 0x1a2b3c4d)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = le.AppendUint64(shb, ^uint64(0))
	block(0x0a0d0d0a, shb)
	idb := le.AppendUint16(nil, uint16(link))
	idb = le.AppendUint16(idb, 0)
	idb = le.AppendUint32(idb, 262144)
	block(1, idb)
	for i, f := range frames {
		us := uint64(times[i].UnixMicro())
		epb := le.AppendUint32(nil, 0)
		epb = le.AppendUint32(epb, uint32(us>>32))
		epb = le.AppendUint32(epb, uint32(us))
		epb = le.AppendUint32(epb, uint32(len(f)))
		epb = le.AppendUint32(epb, uint32(len(f)))
		epb = append(epb, f...)
		block(6, epb)
	}
}

// rtpPacket builds an RTP packet.
func rtpPacket(pt uint8, marker bool, seq uint16, ts, ssrc uint32, payload []byte) []byte {
	b := make([]byte, 12, 12+len(payload))
	b[0] = 0x80
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	return append(b, payload...)
}

// eventPkts returns the RFC 4733 packets of one press of key: an update
// every 20 ms for d, then three end packets, from src to dst starting at
// at, with sequence numbers from seq.
func eventPkts(src, dst netip.AddrPort, at time.Duration, pt uint8, ssrc uint32, seq uint16, ts uint32, key dtmf.Key, d time.Duration) []pkt {
	code, _ := key.EventCode()
	var out []pkt
	units := uint16(d / time.Millisecond * 8)
	step := uint16(160)
	for dur, i := uint16(0), 0; dur < units; dur, i = dur+step, i+1 {
		out = append(out, pkt{at: at + time.Duration(i)*20*time.Millisecond, src: src, dst: dst,
			data: rtpPacket(pt, i == 0, seq, ts, ssrc, []byte{code, 10, byte(dur >> 8), byte(dur)})})
		seq++
	}
	end := at + d
	for i := range 3 {
		out = append(out, pkt{at: end + time.Duration(i)*time.Millisecond, src: src, dst: dst,
			data: rtpPacket(pt, false, seq, ts, ssrc, []byte{code, 0x80 | 10, byte(units >> 8), byte(units)})})
	}
	return out
}

// sortPkts orders packets by time, keeping the order of equal times.
func sortPkts(p []pkt) []pkt {
	out := append([]pkt(nil), p...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].at < out[j-1].at; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
