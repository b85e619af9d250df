package replay

import (
	"net/netip"
	"slices"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Link types gopacket's table names differently or not at all.
const (
	linkTypeRawAlt  layers.LinkType = 12 // DLT_RAW on most BSDs
	linkTypeRawOpen layers.LinkType = 14 // DLT_RAW on OpenBSD
)

// linkSupported reports whether packets of link type lt are decoded: the
// link types of the fast path, and any other gopacket decodes.
func linkSupported(lt layers.LinkType) bool {
	_, ok := slowFirst(lt)
	return ok
}

// linkName names a link type as tshark does.
func linkName(lt layers.LinkType) string {
	switch lt {
	case layers.LinkTypeEthernet:
		return "Ethernet"
	case layers.LinkTypeLinuxSLL:
		return "Linux SLL"
	case layers.LinkTypeLinuxSLL2:
		return "Linux SLL2"
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return "BSD loopback"
	case layers.LinkTypeRaw, linkTypeRawAlt, linkTypeRawOpen:
		return "Raw IP"
	case layers.LinkTypeIPv4:
		return "Raw IPv4"
	case layers.LinkTypeIPv6:
		return "Raw IPv6"
	case layers.LinkTypePPP:
		return "PPP"
	case layers.LinkTypePPP_HDLC:
		return "PPP in HDLC-like framing"
	case layers.LinkTypePPPEthernet:
		return "PPPoE"
	}
	if s := lt.String(); s != "UnknownLinkType" {
		return s
	}
	return "link type " + itoa(int(lt))
}

// firstRaw stands for a raw IP link type: the first layer is IPv4 or IPv6
// by the version nibble.
var firstRaw = gopacket.LayerType(-1)

// fastFirst gives the first layer of link type lt on the fast path.
func fastFirst(lt layers.LinkType) (gopacket.LayerType, bool) {
	switch lt {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet, true
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL, true
	case layers.LinkTypeLinuxSLL2:
		return layers.LayerTypeLinuxSLL2, true
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return layers.LayerTypeLoopback, true
	case layers.LinkTypeRaw, linkTypeRawAlt, linkTypeRawOpen, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		return firstRaw, true
	}
	return 0, false
}

// slowFirst gives gopacket's decoder for a link type the fast path does
// not know (PPP, PPP in HDLC framing, PPPoE without Ethernet, …).
func slowFirst(lt layers.LinkType) (gopacket.Decoder, bool) {
	switch lt {
	case layers.LinkTypePPP_HDLC: // RFC 1662 framing: ff 03, then PPP
		return layers.LayerTypePPP, true
	case layers.LinkTypePPPEthernet: // the PPPoE header without Ethernet
		return layers.LayerTypePPPoE, true
	}
	if _, ok := fastFirst(lt); ok {
		return lt, true
	}
	switch lt {
	case layers.LinkTypePPP, layers.LinkTypeFDDI, layers.LinkTypeIEEE802_11, layers.LinkTypeIEEE80211Radio,
		layers.LinkTypePFLog, layers.LinkTypePrismHeader:
		return lt, true
	}
	return nil, false
}

// Outcomes of decoding one captured frame.
type frameKind uint8

const (
	frameOther     frameKind = iota // not IP, or IP but not UDP
	frameUDP                        // a whole UDP datagram
	frameFragment                   // an IP fragment, held for reassembly
	frameTruncated                  // cut short by the snap length or damaged
)

// datagram is one UDP datagram found in a frame.
type datagram struct {
	src, dst netip.AddrPort
	payload  []byte
}

// decoder turns captured frames into UDP datagrams with gopacket. The
// link types and encapsulations captures of calls have (Ethernet with
// VLAN tags, Linux SLL and SLL2, BSD loopback, raw IP; IPv4 and IPv6 with
// extension headers) are decoded by a DecodingLayerParser into layers
// allocated once, so an unfragmented packet costs no allocation. Anything
// else gopacket knows (PPPoE, PPP, MPLS, GRE, …) goes through
// gopacket.NewPacket to the IP packet inside, which then takes the same
// path. IP fragments are put back together by the reassembler.
type decoder struct {
	frag reassembler

	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	sll     layers.LinuxSLL
	sll2    layers.LinuxSLL2
	loop    layers.Loopback
	ip4     layers.IPv4
	ip6     layers.IPv6
	ip6ext  layers.IPv6ExtensionSkipper
	ip6frag layers.IPv6Fragment
	udp     layers.UDP
	layers  gopacket.DecodingLayerContainer // all of the above but frag
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
}

// parser returns the DecodingLayerParser that starts at layer first.
func (d *decoder) parser(first gopacket.LayerType) *gopacket.DecodingLayerParser {
	if p := d.parsers[first]; p != nil {
		return p
	}
	if d.parsers == nil {
		d.parsers = make(map[gopacket.LayerType]*gopacket.DecodingLayerParser)
		d.decoded = make([]gopacket.LayerType, 0, 16)
		// The extension skipper first: the fragment header, which the
		// skipper could also step over, needs its own layer to be
		// reassembled.
		d.layers = gopacket.DecodingLayerMap(make(map[gopacket.LayerType]gopacket.DecodingLayer))
		for _, l := range []gopacket.DecodingLayer{&d.eth, &d.dot1q, &d.sll, &d.sll2, &d.loop,
			&d.ip4, &d.ip6, &d.ip6ext, &d.ip6frag, &d.udp} {
			d.layers = d.layers.Put(l)
		}
	}
	p := gopacket.NewDecodingLayerParser(first)
	p.SetDecodingLayerContainer(d.layers)
	// Where decoding stopped is read from the layers, which costs no
	// error value per packet.
	p.IgnoreUnsupported = true
	d.parsers[first] = p
	return p
}

// decode reads one frame of link type lt.
func (d *decoder) decode(lt layers.LinkType, b []byte, now time.Duration, out *datagram) frameKind {
	first, ok := fastFirst(lt)
	if !ok {
		return d.slow(lt, b, now, out)
	}
	if first == firstRaw {
		if len(b) < 1 {
			return frameTruncated
		}
		switch b[0] >> 4 {
		case 4:
			first = layers.LayerTypeIPv4
		case 6:
			first = layers.LayerTypeIPv6
		default:
			return frameOther
		}
	}
	return d.fast(first, b, now, out, lt, true)
}

// fast decodes b from layer first with the DecodingLayerParser. When it
// stops at a link or tunnel layer it has no decoder for (PPPoE on
// Ethernet, MPLS, …) and slowOK, the frame is handed to gopacket.NewPacket
// as link type lt.
func (d *decoder) fast(first gopacket.LayerType, b []byte, now time.Duration, out *datagram, lt layers.LinkType, slowOK bool) frameKind {
	p := d.parser(first)
	err := p.DecodeLayers(b, &d.decoded)
	last, next := gopacket.LayerTypeZero, gopacket.LayerTypeZero
	if n := len(d.decoded); n > 0 {
		last = d.decoded[n-1]
		if err == nil {
			l, _ := d.layers.Decoder(last) // every layer decoded is one of d.layers
			next = l.NextLayerType()
		}
	}
	switch {
	case last == layers.LayerTypeUDP:
		// The layer after UDP (SIP, RTP, …) is not decoded here.
		if p.Truncated {
			return frameTruncated
		}
		return d.datagram(out)
	case err != nil || p.Truncated:
		if last == layers.LayerTypeIPv4 && d.ip4.Protocol != layers.IPProtocolUDP ||
			last == layers.LayerTypeIPv6 && d.ip6.NextHeader == layers.IPProtocolTCP {
			return frameOther // a TCP segment cut short says nothing about calls
		}
		return frameTruncated
	case next == gopacket.LayerTypeFragment:
		return d.fragment(last, now, out)
	case next == layers.LayerTypePPPoE, next == layers.LayerTypePPP, next == layers.LayerTypeMPLS,
		next == layers.LayerTypeGRE:
		if !slowOK {
			return frameOther // already inside a packet the slow path decoded
		}
		return d.slow(lt, b, now, out)
	}
	return frameOther
}

// slow decodes a frame with gopacket.NewPacket down to its innermost IP
// packet, which the fast path then takes from the IP layer on.
func (d *decoder) slow(lt layers.LinkType, b []byte, now time.Duration, out *datagram) frameKind {
	dec, ok := slowFirst(lt)
	if !ok {
		return frameOther
	}
	pkt := gopacket.NewPacket(b, dec, gopacket.DecodeOptions{NoCopy: true})
	// With NoCopy the layers are slices of b: the innermost IP packet
	// starts where its header does (headers such as PPP's HDLC bytes are
	// not always in a layer's contents, so the offset comes from the
	// slices' capacities) and is bounded by its own length field.
	ls := pkt.Layers()
	for i := len(ls) - 1; i >= 0; i-- {
		var first gopacket.LayerType
		switch ls[i].(type) {
		case *layers.IPv4:
			first = layers.LayerTypeIPv4
		case *layers.IPv6:
			first = layers.LayerTypeIPv6
		default:
			continue
		}
		off := cap(b) - cap(ls[i].LayerContents())
		if off < 0 || off > len(b) {
			return frameTruncated
		}
		return d.fast(first, b[off:], now, out, lt, false)
	}
	if pkt.Metadata().Truncated {
		return frameTruncated
	}
	return frameOther
}

// datagram takes the UDP layer just decoded.
func (d *decoder) datagram(out *datagram) frameKind {
	var src, dst netip.Addr
	switch {
	case len(d.decoded) >= 2 && d.ipLayer() == layers.LayerTypeIPv4:
		src, dst = netip.AddrFrom4([4]byte(d.ip4.SrcIP)), netip.AddrFrom4([4]byte(d.ip4.DstIP))
	case len(d.decoded) >= 2 && d.ipLayer() == layers.LayerTypeIPv6:
		src, dst = netip.AddrFrom16([16]byte(d.ip6.SrcIP)), netip.AddrFrom16([16]byte(d.ip6.DstIP))
	default:
		return frameOther
	}
	out.src = netip.AddrPortFrom(src, uint16(d.udp.SrcPort))
	out.dst = netip.AddrPortFrom(dst, uint16(d.udp.DstPort))
	out.payload = d.udp.Payload
	return frameUDP
}

// ipLayer is the last IP layer decoded.
func (d *decoder) ipLayer() gopacket.LayerType {
	for i := len(d.decoded) - 1; i >= 0; i-- {
		if t := d.decoded[i]; t == layers.LayerTypeIPv4 || t == layers.LayerTypeIPv6 {
			return t
		}
	}
	return gopacket.LayerTypeZero
}

// fragment takes an IP fragment (the parser stopped at its payload): UDP
// fragments are reassembled (RFC 791, RFC 8200 §4.5), others skipped.
func (d *decoder) fragment(last gopacket.LayerType, now time.Duration, out *datagram) frameKind {
	var key fragKey
	var off int
	var more bool
	var payload []byte
	switch last {
	case layers.LayerTypeIPv4:
		if d.ip4.Protocol != layers.IPProtocolUDP {
			return frameOther
		}
		key = fragKey{src: netip.AddrFrom4([4]byte(d.ip4.SrcIP)), dst: netip.AddrFrom4([4]byte(d.ip4.DstIP)), id: uint32(d.ip4.Id), proto: uint8(d.ip4.Protocol)}
		off, more, payload = int(d.ip4.FragOffset)*8, d.ip4.Flags&layers.IPv4MoreFragments != 0, d.ip4.Payload
	case layers.LayerTypeIPv6Fragment:
		if d.ip6frag.NextHeader != layers.IPProtocolUDP {
			return frameOther
		}
		key = fragKey{v6: true, src: netip.AddrFrom16([16]byte(d.ip6.SrcIP)), dst: netip.AddrFrom16([16]byte(d.ip6.DstIP)), id: d.ip6frag.Identification, proto: uint8(d.ip6frag.NextHeader)}
		off, more, payload = int(d.ip6frag.FragmentOffset)*8, d.ip6frag.MoreFragments, d.ip6frag.Payload
	default:
		return frameOther
	}
	whole, ok := d.frag.add(key, off, more, payload, now)
	if !ok {
		return frameFragment
	}
	if err := d.udp.DecodeFromBytes(whole, gopacket.NilDecodeFeedback); err != nil || int(d.udp.Length) > len(whole) {
		return frameTruncated
	}
	d.decoded = append(d.decoded, layers.LayerTypeUDP)
	return d.datagram(out)
}

// Fragment reassembly limits.
const (
	fragTimeout = 30 * time.Second // RFC 8200 §4.5 gives 60 s; captures rarely need more than a second
	fragMax     = 256              // datagrams in reassembly at once
	fragMaxSize = 0xffff           // largest reassembled payload
)

// fragKey identifies the fragments of one datagram (RFC 791, RFC 8200 §4.5).
type fragKey struct {
	v6       bool
	src, dst netip.Addr
	id       uint32
	proto    uint8
}

// fragment is a datagram in reassembly: its bytes so far, the intervals
// received and its total length once the last fragment arrived.
type fragment struct {
	buf   []byte
	have  [][2]int // sorted, merged intervals [from, to)
	total int      // -1 until the last fragment arrived
	first time.Duration
}

// reassembler puts IPv4 and IPv6 fragments back together. Overlapping
// fragments are accepted, the later bytes winning. A datagram not complete
// within fragTimeout of its first fragment is counted as incomplete.
// (gopacket's ip4defrag assumes 20-byte headers, mishandles overlaps and
// keeps references into the caller's reused packet buffer, so it is not
// used.)
type reassembler struct {
	pending     map[fragKey]*fragment
	out         []byte
	reassembled int
	incomplete  int
	fragments   int
}

// add takes one fragment of the datagram key: payload at byte offset off,
// more when more fragments follow. It returns the datagram's payload
// (valid until the next call) when it is complete.
func (r *reassembler) add(key fragKey, off int, more bool, payload []byte, now time.Duration) ([]byte, bool) {
	r.fragments++
	if r.pending == nil {
		r.pending = make(map[fragKey]*fragment)
	}
	r.expire(now)
	end := off + len(payload)
	if end > fragMaxSize || more && len(payload)%8 != 0 {
		r.incomplete++
		return nil, false
	}
	f := r.pending[key]
	if f == nil {
		if len(r.pending) >= fragMax {
			r.dropOldest()
		}
		f = &fragment{total: -1, first: now}
		r.pending[key] = f
	}
	if !more {
		if f.total >= 0 && f.total != end {
			delete(r.pending, key)
			r.incomplete++
			return nil, false
		}
		f.total = end
	}
	if len(f.buf) < end {
		f.buf = append(f.buf, make([]byte, end-len(f.buf))...)
	}
	copy(f.buf[off:], payload)
	f.have = addInterval(f.have, off, end)
	if f.total < 0 || len(f.have) != 1 || f.have[0][0] != 0 || f.have[0][1] < f.total {
		return nil, false
	}
	delete(r.pending, key)
	r.reassembled++
	r.out = append(r.out[:0], f.buf[:f.total]...)
	return r.out, true
}

// addInterval adds [from, to) to the sorted, merged list have.
func addInterval(have [][2]int, from, to int) [][2]int {
	if from >= to {
		return have
	}
	i := 0
	for i < len(have) && have[i][1] < from {
		i++
	}
	j := i
	for j < len(have) && have[j][0] <= to {
		from, to = min(from, have[j][0]), max(to, have[j][1])
		j++
	}
	return slices.Replace(have, i, j, [2]int{from, to})
}

// expire drops datagrams whose first fragment is older than fragTimeout.
func (r *reassembler) expire(now time.Duration) {
	for k, f := range r.pending {
		if now-f.first > fragTimeout {
			delete(r.pending, k)
			r.incomplete++
		}
	}
}

func (r *reassembler) dropOldest() {
	var oldest fragKey
	first := time.Duration(1<<63 - 1)
	for k, f := range r.pending {
		if f.first < first {
			oldest, first = k, f.first
		}
	}
	delete(r.pending, oldest)
	r.incomplete++
}

// finish counts the datagrams still in reassembly at the end of the capture.
func (r *reassembler) finish() {
	r.incomplete += len(r.pending)
	clear(r.pending)
}
