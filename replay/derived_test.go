package replay_test

import (
	"bytes"
	"compress/gzip"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/replay"
)

const ms = time.Millisecond

// recorded is a golden call taken apart: its datagrams, the phone's and
// hashcall's RTP addresses, and when the call was answered.
type recorded struct {
	pkts          []pkt
	phone, ua     netip.AddrPort // RTP addresses
	answered, bye time.Duration
	te            []int // indexes of the phone's telephone-event packets
	ssrc          uint32
}

func loadRecorded(t *testing.T, path string) recorded {
	t.Helper()
	r := recorded{pkts: readPkts(t, path)}
	for i, p := range r.pkts {
		switch {
		case p.isSIP() && bytes.HasPrefix(p.data, []byte("SIP/2.0 200")) && bytes.Contains(p.data, []byte("INVITE")):
			r.answered = p.at
		case p.isSIP() && bytes.HasPrefix(p.data, []byte("BYE ")):
			r.bye = p.at
		case p.isRTP() && p.pt() == 101:
			r.te = append(r.te, i)
			r.phone, r.ua, r.ssrc = p.src, p.dst, p.ssrc()
		}
	}
	if r.answered == 0 || r.bye == 0 {
		t.Fatalf("%s: no answer or BYE", path)
	}
	if r.ssrc == 0 {
		for _, p := range r.pkts {
			if p.isRTP() && p.dst.Port() >= 42000 && p.dst.Port() < 42100 {
				r.phone, r.ua, r.ssrc = p.src, p.dst, p.ssrc()
			}
		}
	}
	return r
}

// without returns the packets that keep does not refuse.
func (r recorded) filter(keep func(i int, p pkt) bool) []pkt {
	var out []pkt
	for i, p := range r.pkts {
		if keep(i, p) {
			out = append(out, p.clone())
		}
	}
	return out
}

func (r recorded) isTE(i int) bool {
	for _, j := range r.te {
		if i == j {
			return true
		}
	}
	return false
}

// fromPhone tells the phone's RTP.
func (r recorded) fromPhone(p pkt) bool { return p.isRTP() && p.src == r.phone }

func TestReplayDerived(t *testing.T) {
	rfc := loadRecorded(t, "testdata/rfc4733-pcmu-lo.pcap")
	info := loadRecorded(t, "testdata/sipinfo-pcmu-any-sll.pcapng")
	all := func(int, pkt) bool { return true }
	noTE := func(i int, _ pkt) bool { return !rfc.isTE(i) }
	forged := netip.MustParseAddrPort("127.0.0.1:6666")

	type tc struct {
		name     string
		pkts     []pkt
		cap      capOpts
		opts     replay.Options
		accepted string // Report.Accepted
		keys     string // Report.Keys
		check    func(t *testing.T, rep *replay.Report)
	}
	hasIgnored := func(reason string) func(t *testing.T, rep *replay.Report) {
		return func(t *testing.T, rep *replay.Report) {
			for _, p := range rep.Presses() {
				if !p.Live && !p.Accepted && strings.Contains(p.Reason, reason) {
					return
				}
			}
			t.Errorf("no ignored press with reason %q:\n%s", reason, rep.Summary())
		}
	}
	phoneStream := func(t *testing.T, rep *replay.Report) replay.Stream {
		t.Helper()
		for _, s := range rep.Streams {
			if s.Src.Port() == rfc.phone.Port() && s.SSRC == rfc.ssrc {
				return s
			}
		}
		t.Fatalf("no stream from the phone:\n%s", rep.Summary())
		return replay.Stream{}
	}
	tests := []tc{
		{name: "as_recorded", pkts: rfc.filter(all), accepted: "#", keys: "#"},
		{name: "loss_every_third_audio_packet", accepted: "#", keys: "#",
			pkts: rfc.filter(func(i int, p pkt) bool { return !rfc.fromPhone(p) || rfc.isTE(i) || i%3 != 0 }),
			check: func(t *testing.T, rep *replay.Report) {
				if s := phoneStream(t, rep); s.Lost == 0 {
					t.Errorf("no loss counted: %+v", s)
				}
			}},
		{name: "loss_first_two_event_packets", accepted: "#", keys: "#",
			pkts: rfc.filter(func(i int, _ pkt) bool { return i != rfc.te[0] && i != rfc.te[1] })},
		{name: "loss_all_event_packets", pkts: rfc.filter(noTE), accepted: "", keys: ""},
		{name: "reordered", accepted: "#", keys: "#",
			pkts: func() []pkt {
				p := rfc.filter(all)
				var idx []int
				for i := range p {
					if rfc.fromPhone(p[i]) {
						idx = append(idx, i)
					}
				}
				for k := 0; k+1 < len(idx); k += 4 {
					p[idx[k]].data, p[idx[k+1]].data = p[idx[k+1]].data, p[idx[k]].data
				}
				return p
			}(),
			check: func(t *testing.T, rep *replay.Report) {
				if s := phoneStream(t, rep); s.Reordered == 0 || s.Dropped.Old == 0 {
					t.Errorf("reordering not counted: %+v", s)
				}
			}},
		{name: "duplicated", accepted: "#", keys: "#",
			pkts: func() []pkt {
				var out []pkt
				for _, p := range rfc.pkts {
					out = append(out, p.clone())
					if rfc.fromPhone(p) {
						d := p.clone()
						d.at += ms
						out = append(out, d)
					}
				}
				return sortPkts(out)
			}(),
			check: func(t *testing.T, rep *replay.Report) {
				if s := phoneStream(t, rep); s.Duplicated < 20 {
					t.Errorf("duplicates not counted: %+v", s)
				}
			}},
		{name: "forged_source", accepted: "", keys: "", check: hasIgnored("from 127.0.0.1:6666, not the far end's"),
			pkts: sortPkts(append(rfc.filter(noTE), eventPkts(forged, rfc.ua, rfc.answered+100*ms, 101, 0x1234, 100, 8000, '#', 160*ms)...))},
		{name: "forged_source_latching", opts: replay.Options{Latch: true}, accepted: "", keys: "", check: hasIgnored("from 127.0.0.1:6666, not the far end's"),
			pkts: sortPkts(append(rfc.filter(noTE), eventPkts(forged, rfc.ua, rfc.answered+100*ms, 101, 0x1234, 100, 8000, '#', 160*ms)...))},
		{name: "forged_ssrc", accepted: "", keys: "", check: hasIgnored("not the stream's"),
			pkts: sortPkts(append(rfc.filter(noTE), eventPkts(rfc.phone, rfc.ua, rfc.answered+100*ms, 101, 0x1234, 100, 8000, '#', 160*ms)...))},
		{name: "early_media", accepted: "", keys: "", check: hasIgnored("early media"),
			pkts: sortPkts(append(rfc.filter(noTE), eventPkts(rfc.phone, rfc.ua, rfc.answered-190*ms, 101, rfc.ssrc, 100, 8000, '#', 100*ms)...))},
		{name: "after_hangup", accepted: "", keys: "", check: hasIgnored("after the call ended"),
			pkts: sortPkts(append(rfc.filter(noTE), eventPkts(rfc.phone, rfc.ua, rfc.bye+20*ms, 101, rfc.ssrc, 100, 8000, '#', 160*ms)...)),
		},
		{name: "unnegotiated_event_payload_type", accepted: "", keys: "", check: hasIgnored("telephone-event on payload type 96, negotiated 101"),
			pkts: func() []pkt {
				p := rfc.filter(all)
				for _, i := range rfc.te {
					p[i].data[1] = p[i].data[1]&0x80 | 96
				}
				return p
			}()},
		{name: "call_rejected", accepted: "", keys: "", check: hasIgnored("after the call ended"),
			pkts: func() []pkt {
				p := rfc.filter(all)
				for i := range p {
					if p[i].isSIP() && bytes.HasPrefix(p[i].data, []byte("SIP/2.0 200 OK")) && bytes.Contains(p[i].data, []byte("INVITE")) {
						p[i].data = bytes.Replace(p[i].data, []byte("SIP/2.0 200 OK"), []byte("SIP/2.0 486 Busy Here"), 1)
					}
				}
				return p
			}()},
		{name: "no_sip_heuristics", pkts: rfc.filter(func(_ int, p pkt) bool { return !p.isSIP() }), accepted: "#", keys: "#",
			check: func(t *testing.T, rep *replay.Report) {
				if s := phoneStream(t, rep); s.Found != replay.FoundHeuristic || s.Codec != "PCMU" {
					t.Errorf("stream %+v", s)
				}
			}},
		{name: "no_sip_te_pt_given", pkts: rfc.filter(func(_ int, p pkt) bool { return !p.isSIP() }), opts: replay.Options{EventPT: 101}, accepted: "#", keys: "#"},
		{name: "no_sip_other_te_pt_given", pkts: rfc.filter(func(_ int, p pkt) bool { return !p.isSIP() }), opts: replay.Options{EventPT: 102}, accepted: "", keys: ""},
		{name: "fragmented_ipv4", pkts: rfc.filter(all), cap: capOpts{fragMTU: 256}, accepted: "#", keys: "#",
			check: func(t *testing.T, rep *replay.Report) {
				if rep.Fragments.Reassembled < 3 || rep.Calls[0].Answered.IsZero() {
					t.Errorf("fragments %+v, calls %+v", rep.Fragments, rep.Calls)
				}
			}},
		{name: "fragmented_ipv6", pkts: rfc.filter(all), cap: capOpts{v6: true, fragMTU: 64}, accepted: "#", keys: "#",
			check: func(t *testing.T, rep *replay.Report) {
				if rep.Fragments.Reassembled < 40 || len(rep.Calls) != 1 || rep.Calls[0].Answered.IsZero() {
					t.Errorf("fragments %+v, calls %+v", rep.Fragments, rep.Calls)
				}
			}},
		{name: "sip_info", pkts: info.filter(all), accepted: "#", keys: "#"},
		{name: "sip_info_retransmitted_and_proxied", accepted: "#", keys: "#",
			pkts: func() []pkt {
				var out []pkt
				for _, p := range info.pkts {
					out = append(out, p.clone())
					if p.isSIP() && bytes.HasPrefix(p.data, []byte("INFO ")) {
						re := p.clone()
						re.at += 500 * ms // retransmission
						proxied := p.clone()
						proxied.at += 2 * ms // the next leg of a proxy: another Via on top
						proxied.data = bytes.Replace(proxied.data, []byte("\r\nVia: "), []byte("\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy1\r\nVia: "), 1)
						out = append(out, re, proxied)
					}
				}
				return sortPkts(out)
			}(),
			check: func(t *testing.T, rep *replay.Report) {
				if n := len(rep.Presses()); n != 1 || rep.Calls[0].Info != 1 {
					t.Errorf("%d presses, %d INFO:\n%s", n, rep.Calls[0].Info, rep.Summary())
				}
			}},
		{name: "sip_info_before_answer", accepted: "", keys: "", check: hasIgnored("SIP INFO before the call was answered"),
			pkts: func() []pkt {
				var out []pkt
				for _, p := range info.pkts {
					p = p.clone()
					if p.isSIP() && bytes.HasPrefix(p.data, []byte("INFO ")) {
						p.at = info.answered - 50*ms
					}
					out = append(out, p)
				}
				return sortPkts(out)
			}()},
	}
	// Every link type, pcap and pcapng, IPv4 and IPv6.
	for _, l := range []struct {
		name string
		o    capOpts
	}{
		{"ethernet", capOpts{link: ltEthernet}}, {"linux_sll", capOpts{link: ltSLL}}, {"linux_sll2", capOpts{link: ltSLL2}},
		{"bsd_null", capOpts{link: ltNull}}, {"bsd_null_big_endian", capOpts{link: ltNull, nullBE: true}}, {"bsd_loop", capOpts{link: ltLoop}},
		{"raw", capOpts{link: ltRaw}}, {"raw_ipv4", capOpts{link: ltIPv4}},
		{"pppoe", capOpts{link: ltEthernet, pppoe: true}}, {"pppoe_vlan", capOpts{link: ltEthernet, pppoe: true, vlan: true}},
		{"pppoe_no_ethernet", capOpts{link: ltPPPoE}}, {"ppp", capOpts{link: ltPPP}}, {"ppp_hdlc", capOpts{link: ltPPPHDLC}},
	} {
		for _, ng := range []bool{false, true} {
			for _, v6 := range []bool{false, true} {
				o := l.o
				o.ng, o.v6 = ng, v6
				if o.link == ltIPv4 && v6 {
					o.link = ltIPv6
				}
				name := "link_" + l.name
				if ng {
					name += "_pcapng"
				}
				if v6 {
					name += "_ipv6"
				}
				tests = append(tests, tc{name: name, pkts: rfc.filter(all), cap: o, accepted: "#", keys: "#"})
			}
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := buildCapture(t, tc.pkts, tc.cap)
			rep, err := replay.Read(bytes.NewReader(b), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Accepted() != tc.accepted || rep.Keys() != tc.keys {
				t.Errorf("accepted %q keys %q, want %q %q\n%s", rep.Accepted(), rep.Keys(), tc.accepted, tc.keys, rep.Summary())
			}
			if tc.check != nil {
				tc.check(t, rep)
			}
		})
	}
}

// TestReplayFileDamage covers files that are compressed, cut short or not
// captures at all.
func TestReplayFileDamage(t *testing.T) {
	rfc := loadRecorded(t, "testdata/rfc4733-pcmu-lo.pcap")
	pcap := buildCapture(t, rfc.pkts, capOpts{})
	ng := buildCapture(t, rfc.pkts, capOpts{ng: true})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(pcap)
	zw.Close()
	usb := buildCapture(t, rfc.pkts, capOpts{link: ltUSB})
	tests := []struct {
		name     string
		data     []byte
		err      string // a FormatError containing this
		accepted string
		warning  string
		format   string
	}{
		{name: "gzip", data: gz.Bytes(), accepted: "#", format: "pcap.gz"},
		{name: "pcap_cut_in_last_packet", data: pcap[:len(pcap)-30], accepted: "#", warning: "ends in the middle of a packet", format: "pcap"},
		{name: "pcapng_cut_in_last_packet", data: ng[:len(ng)-30], accepted: "#", warning: "ends in the middle of a packet", format: "pcapng"},
		{name: "pcapng_garbage_after_packets", data: append(bytes.Clone(ng), bytes.Repeat([]byte{0xee}, 64)...), accepted: "#", warning: "ends in the middle of a packet", format: "pcapng"},
		{name: "empty", data: nil, err: "empty file"},
		{name: "text", data: []byte("hello, world\n"), err: `not a pcap or pcapng capture (starts with "hell")`},
		{name: "wav", data: []byte("RIFF\x24\x00\x00\x00WAVEfmt "), err: "a WAV file?"},
		{name: "pcap_header_only_cut", data: pcap[:10], err: "pcap header is truncated"},
		{name: "pcapng_bad_block_length", data: append(bytes.Clone(ng[:8]), 0xff, 0xff, 0xff, 0x7f), err: "damaged pcapng"},
		{name: "unsupported_link_type", data: usb, err: "unsupported link type"},
		{name: "modified_pcap", data: append([]byte{0x34, 0xcd, 0xb2, 0xa1}, pcap[4:]...), err: "modified (Kuznetzov) pcap"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := replay.Read(bytes.NewReader(tc.data), replay.Options{})
			if tc.err != "" {
				var fe *replay.FormatError
				if err == nil || !strings.Contains(err.Error(), tc.err) || !asFormatError(err, &fe) {
					t.Fatalf("err %v, want a FormatError with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Accepted() != tc.accepted || rep.Format != tc.format {
				t.Errorf("accepted %q format %q, want %q %q", rep.Accepted(), rep.Format, tc.accepted, tc.format)
			}
			if got := strings.Join(rep.Warnings, "; "); !strings.Contains(got, tc.warning) || (tc.warning == "" && got != "") {
				t.Errorf("warnings %q, want %q", got, tc.warning)
			}
		})
	}
}

func asFormatError(err error, fe **replay.FormatError) bool {
	f, ok := err.(*replay.FormatError)
	*fe = f
	return ok
}

// TestReplaySIPp replays the captures SIPp ships (real RTP from other
// stacks, no SIP: found by heuristics).
func TestReplaySIPp(t *testing.T) {
	tests := []struct {
		file, keys, accepted, codec string
		packets                     uint64
	}{
		{"dtmf_2833_pound.pcap", "#", "#", "", 10},
		{"dtmf_2833_5.pcap", "5", "", "", 10},
		{"dtmf_2833_star.pcap", "*", "", "", 10},
		{"g711a.pcap", "", "", "PCMA", 236},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := testpeers.File(t, "/usr/share/sip-tester/"+tc.file, "sip-tester")
			rep := replay.Verify(t, path, tc.keys)
			if rep.Accepted() != tc.accepted || len(rep.Streams) != 1 {
				t.Fatalf("accepted %q:\n%s", rep.Accepted(), rep.Summary())
			}
			s := rep.Streams[0]
			if s.Codec != tc.codec || s.Packets != tc.packets || s.Found != replay.FoundHeuristic || s.Lost != 0 {
				t.Errorf("stream %+v", s)
			}
			if tc.codec == "" {
				p := s.Presses[0]
				// 280 ms, three end packets with one sequence number.
				if p.Duration != 280*ms || s.Duplicated != 2 || s.Events != 10 {
					t.Errorf("press %+v, stream %+v", p, s)
				}
			}
		})
	}
}
