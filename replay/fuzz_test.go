package replay_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashcall/hashcall/replay"
)

// FuzzRead feeds arbitrary bytes to the capture reader: no input may make
// it panic, hang or allocate without bound. Seeds: the golden captures,
// synthetic ones of every link type, and their headers.
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.pcap*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
			f.Add(b[:min(len(b), 200)])
		}
	}
	pkts := seedPkts()
	for _, o := range []capOpts{{link: ltSLL2}, {link: ltSLL2, ng: true}, {link: ltNull, v6: true}, {link: ltRaw, fragMTU: 64}, {ng: true, v6: true, fragMTU: 64},
		{link: ltEthernet, pppoe: true, vlan: true}, {link: ltPPPoE, ng: true, v6: true}, {link: ltPPPHDLC, fragMTU: 64}} {
		f.Add(buildCapture(f, pkts, o))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := replay.Read(bytes.NewReader(data), replay.Options{Audio: true})
		if err != nil {
			if _, ok := err.(*replay.FormatError); !ok {
				t.Fatalf("error %v is not a FormatError", err)
			}
			return
		}
		_ = rep.Summary()
		_ = rep.Expect("#")
	})
}

// FuzzStreamFinder feeds arbitrary datagrams (SIP, SDP, RTP or anything)
// between a few addresses through the call and stream finder and the
// receive paths, in a well-formed capture. The input is the datagrams
// separated by "|~|"; the first byte of each picks its addresses.
func FuzzStreamFinder(f *testing.F) {
	var seed [][]byte
	for _, p := range seedPkts() {
		seed = append(seed, append([]byte{addrPick(p)}, p.data...))
	}
	f.Add(bytes.Join(seed, []byte("|~|")))
	for _, s := range seed {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var pkts []pkt
		for i, d := range bytes.Split(data, []byte("|~|")) {
			if len(d) == 0 || len(d) > 8000 {
				continue
			}
			src, dst := fuzzAddrs[int(d[0])%len(fuzzAddrs)], fuzzAddrs[int(d[0]>>4)%len(fuzzAddrs)]
			pkts = append(pkts, pkt{at: time.Duration(i) * 20 * time.Millisecond, src: src, dst: dst, data: d[1:]})
		}
		for _, o := range []replay.Options{{Audio: true}, {Latch: true, EventPT: 101}} {
			rep, err := replay.Read(bytes.NewReader(buildCapture(t, pkts, capOpts{})), o)
			if err != nil {
				t.Fatalf("well-formed capture refused: %v", err)
			}
			for _, p := range rep.Presses() {
				if p.Accepted && (!p.Live || !p.Key.Accepted()) {
					t.Fatalf("accepted press %+v", p)
				}
			}
		}
	})
}

// fuzzAddrs are the addresses of FuzzStreamFinder's datagrams; the SDP of
// seedPkts names the first two.
var fuzzAddrs = []netip.AddrPort{
	netip.MustParseAddrPort("192.0.2.1:5060"), netip.MustParseAddrPort("192.0.2.2:5060"),
	netip.MustParseAddrPort("192.0.2.1:20000"), netip.MustParseAddrPort("192.0.2.2:30000"),
	netip.MustParseAddrPort("192.0.2.66:40000"),
}

func addrPick(p pkt) byte {
	idx := func(a netip.AddrPort) byte {
		for i, b := range fuzzAddrs {
			if a == b {
				return byte(i)
			}
		}
		return 4
	}
	return idx(p.src) | idx(p.dst)<<4
}

// seedPkts is a short call: INVITE and 200 with SDP, audio both ways and a
// # by RFC 4733 from the callee, a SIP INFO, a BYE.
func seedPkts() []pkt {
	caller, callee := fuzzAddrs[0], fuzzAddrs[1]
	rtpA, rtpB := fuzzAddrs[2], fuzzAddrs[3]
	sdp := func(ip string, port int) string {
		return "v=0\r\no=- 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio " + itoa(port) +
			" RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
	}
	msg := func(start, cseq, body string) []byte {
		ct := ""
		if body != "" {
			ct = "Content-Type: application/sdp\r\n"
		}
		if len(body) > 0 && body[0] == 'S' {
			ct = "Content-Type: application/dtmf-relay\r\n"
		}
		return []byte(start + "\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@192.0.2.1>;tag=a1\r\n" +
			"To: <sip:b@192.0.2.2>" + map[bool]string{true: "", false: ";tag=b1"}[cseq == "1 INVITE" && start[0] != 'S'] +
			"\r\nCall-ID: fuzz-call\r\nCSeq: " + cseq + "\r\nContent-Length: " + itoa(len(body)) + "\r\n" + ct + "\r\n" + body)
	}
	var out []pkt
	at := time.Duration(0)
	add := func(src, dst netip.AddrPort, d []byte) {
		out = append(out, pkt{at: at, src: src, dst: dst, data: d})
		at += 20 * time.Millisecond
	}
	add(caller, callee, msg("INVITE sip:b@192.0.2.2 SIP/2.0", "1 INVITE", sdp("192.0.2.1", 20000)))
	add(callee, caller, msg("SIP/2.0 200 OK", "1 INVITE", sdp("192.0.2.2", 30000)))
	add(caller, callee, msg("ACK sip:b@192.0.2.2 SIP/2.0", "1 ACK", ""))
	for i := range 4 {
		add(rtpB, rtpA, rtpPacket(0, i == 0, uint16(i), uint32(i*160), 0xbbbb, bytes.Repeat([]byte{0xff}, 160)))
		add(rtpA, rtpB, rtpPacket(8, i == 0, uint16(i), uint32(i*160), 0xaaaa, bytes.Repeat([]byte{0xd5}, 160)))
	}
	for _, p := range eventPkts(rtpB, rtpA, at, 101, 0xbbbb, 4, 640, '#', 60*time.Millisecond) {
		add(p.src, p.dst, p.data)
	}
	add(callee, caller, msg("INFO sip:a@192.0.2.1 SIP/2.0", "2 INFO", "Signal=#\r\nDuration=160\r\n"))
	add(caller, callee, msg("BYE sip:b@192.0.2.2 SIP/2.0", "3 BYE", ""))
	return out
}

func itoa(n int) string {
	return string(appendInt(nil, n))
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}
