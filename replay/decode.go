package replay

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/google/gopacket/layers"
)

// Link types gopacket v1.1.19 has no constant for. Its LinkType is a
// uint8, so pcapgo would truncate link types above 255 (SLL2, 276, would
// read as 20); the guards in front of pcapgo rewrite them to two values
// that LINKTYPE_ numbering leaves unassigned (11–49 are).
const (
	linkTypeLinuxSLL2 layers.LinkType = 20 // stands for LINKTYPE_LINUX_SLL2 (276), tshark -i any -y LINUX_SLL2
	linkTypeOther     layers.LinkType = 19 // stands for any other link type above 255
	linkTypeRawAlt    layers.LinkType = 12 // DLT_RAW on most BSDs
	linkTypeRawOpen   layers.LinkType = 14 // DLT_RAW on OpenBSD

	realLinuxSLL2 = 276
)

// mapLinkType maps a file's 16-bit link type to the value pcapgo passes on.
func mapLinkType(lt uint32) uint32 {
	switch {
	case lt == realLinuxSLL2:
		return uint32(linkTypeLinuxSLL2)
	case lt > 255, lt == uint32(linkTypeLinuxSLL2), lt == uint32(linkTypeOther):
		return uint32(linkTypeOther)
	}
	return lt
}

// linkSupported reports whether packets of link type lt are decoded.
func linkSupported(lt layers.LinkType) bool {
	switch lt {
	case layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, linkTypeLinuxSLL2,
		layers.LinkTypeNull, layers.LinkTypeLoop,
		layers.LinkTypeRaw, linkTypeRawAlt, linkTypeRawOpen, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		return true
	}
	return false
}

// linkName names a link type as tshark does.
func linkName(lt layers.LinkType) string {
	switch lt {
	case layers.LinkTypeEthernet:
		return "Ethernet"
	case layers.LinkTypeLinuxSLL:
		return "Linux SLL"
	case linkTypeLinuxSLL2:
		return "Linux SLL2"
	case linkTypeOther:
		return "an unsupported link type"
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return "BSD loopback"
	case layers.LinkTypeRaw, linkTypeRawAlt, linkTypeRawOpen:
		return "Raw IP"
	case layers.LinkTypeIPv4:
		return "Raw IPv4"
	case layers.LinkTypeIPv6:
		return "Raw IPv6"
	}
	return "link type " + itoa(int(lt))
}

// EtherTypes.
const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86dd
	etherVLAN  = 0x8100
	etherQinQ  = 0x88a8
	etherQinQ2 = 0x9100
)

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

// decoder turns captured frames into UDP datagrams. It does not allocate
// for unfragmented packets.
type decoder struct {
	frag reassembler
}

// decode reads one frame of link type lt.
func (d *decoder) decode(lt layers.LinkType, b []byte, now time.Duration, out *datagram) frameKind {
	var ethType uint16
	switch lt {
	case layers.LinkTypeEthernet:
		if len(b) < 14 {
			return frameTruncated
		}
		ethType, b = binary.BigEndian.Uint16(b[12:14]), b[14:]
		for ethType == etherVLAN || ethType == etherQinQ || ethType == etherQinQ2 {
			if len(b) < 4 {
				return frameTruncated
			}
			ethType, b = binary.BigEndian.Uint16(b[2:4]), b[4:]
		}
	case layers.LinkTypeLinuxSLL:
		// packet type, ARPHRD type, address length, 8 bytes of address, protocol
		if len(b) < 16 {
			return frameTruncated
		}
		ethType, b = binary.BigEndian.Uint16(b[14:16]), b[16:]
	case linkTypeLinuxSLL2:
		// protocol, reserved, interface index, ARPHRD type, packet type,
		// address length, 8 bytes of address
		if len(b) < 20 {
			return frameTruncated
		}
		ethType, b = binary.BigEndian.Uint16(b[0:2]), b[20:]
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		// The address family, in the capturing host's byte order (Null) or
		// big-endian (Loop): AF_INET is 2 everywhere, AF_INET6 is 24, 28 or
		// 30 depending on the BSD (10 on Linux).
		if len(b) < 4 {
			return frameTruncated
		}
		fam := binary.LittleEndian.Uint32(b[:4])
		if fam > 0xffff {
			fam = binary.BigEndian.Uint32(b[:4])
		}
		b = b[4:]
		switch fam {
		case 2:
			ethType = etherIPv4
		case 10, 24, 28, 30:
			ethType = etherIPv6
		default:
			return frameOther
		}
	case layers.LinkTypeRaw, linkTypeRawAlt, linkTypeRawOpen, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		if len(b) < 1 {
			return frameTruncated
		}
		switch b[0] >> 4 {
		case 4:
			ethType = etherIPv4
		case 6:
			ethType = etherIPv6
		default:
			return frameOther
		}
	default:
		return frameOther
	}
	switch ethType {
	case etherIPv4:
		return d.ipv4(b, now, out)
	case etherIPv6:
		return d.ipv6(b, now, out)
	}
	return frameOther
}

const protoUDP = 17

func (d *decoder) ipv4(b []byte, now time.Duration, out *datagram) frameKind {
	if len(b) < 20 || b[0]>>4 != 4 {
		return frameTruncated
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total == 0 {
		total = len(b) // segmentation offload: the length is filled in later
	}
	if ihl < 20 || total < ihl {
		return frameTruncated
	}
	if total > len(b) {
		if b[9] != protoUDP {
			return frameOther
		}
		return frameTruncated
	}
	proto := b[9]
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	fo := binary.BigEndian.Uint16(b[6:8])
	more, off := fo&0x2000 != 0, int(fo&0x1fff)*8
	payload := b[ihl:total]
	if more || off != 0 {
		if proto != protoUDP {
			return frameOther
		}
		whole, ok := d.frag.add(fragKey{src: src, dst: dst, id: uint32(binary.BigEndian.Uint16(b[4:6])), proto: proto}, off, more, payload, now)
		if !ok {
			return frameFragment
		}
		payload = whole
	} else if proto != protoUDP {
		return frameOther
	}
	return udp(src, dst, payload, out)
}

// IPv6 extension headers that may come before UDP.
const (
	ip6HopByHop = 0
	ip6Routing  = 43
	ip6Fragment = 44
	ip6DestOpts = 60
	ip6NoNext   = 59
)

func (d *decoder) ipv6(b []byte, now time.Duration, out *datagram) frameKind {
	if len(b) < 40 || b[0]>>4 != 6 {
		return frameTruncated
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if 40+plen > len(b) {
		return frameTruncated
	}
	next := b[6]
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	p := b[40 : 40+plen]
	fragmented, more, off, id := false, false, 0, uint32(0)
	for range 8 {
		switch next {
		case ip6HopByHop, ip6Routing, ip6DestOpts:
			if len(p) < 8 {
				return frameTruncated
			}
			n := (int(p[1]) + 1) * 8
			if n > len(p) {
				return frameTruncated
			}
			next, p = p[0], p[n:]
			continue
		case ip6Fragment:
			if len(p) < 8 || fragmented {
				return frameTruncated
			}
			fo := binary.BigEndian.Uint16(p[2:4])
			fragmented, more, off = true, fo&1 != 0, int(fo&^7)
			id = binary.BigEndian.Uint32(p[4:8])
			next, p = p[0], p[8:]
			continue
		}
		break
	}
	if next != protoUDP {
		return frameOther
	}
	if fragmented && (more || off != 0) {
		whole, ok := d.frag.add(fragKey{v6: true, src: src, dst: dst, id: id, proto: next}, off, more, p, now)
		if !ok {
			return frameFragment
		}
		p = whole
	}
	return udp(src, dst, p, out)
}

func udp(src, dst netip.Addr, b []byte, out *datagram) frameKind {
	if len(b) < 8 {
		return frameTruncated
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	switch {
	case n == 0 && len(b) > 0xffff: // IPv6 jumbogram: length from IP
		n = len(b)
	case n < 8 || n > len(b):
		return frameTruncated
	}
	out.src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:2]))
	out.dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:4]))
	out.payload = b[8:n]
	return frameUDP
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
