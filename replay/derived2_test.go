package replay_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/replay"
)

var cseqRe = regexp.MustCompile(`CSeq: (\d+) (INVITE|ACK)`)

// bumpCSeq adds n to the CSeq number of INVITE and ACK messages.
func bumpCSeq(b []byte, n int) []byte {
	return cseqRe.ReplaceAllFunc(b, func(m []byte) []byte {
		var num int
		var method string
		fmt.Sscanf(string(m), "CSeq: %d %s", &num, &method)
		return []byte(fmt.Sprintf("CSeq: %d %s", num+n, method))
	})
}

// sdpBody splits a SIP message at its body.
func sdpBody(b []byte) (head, body []byte) {
	h, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	return h, body
}

// withBody replaces a SIP message's body (and Content-Type, Content-Length).
func withBody(b, body []byte) []byte {
	head, _ := sdpBody(b)
	head = regexp.MustCompile(`(?m)\r\nContent-Type: [^\r]*`).ReplaceAll(head, nil)
	head = contentLength.ReplaceAll(head, []byte(fmt.Sprintf("Content-Length: %d", len(body))))
	if len(body) > 0 {
		head = append(head, "\r\nContent-Type: application/sdp"...)
	}
	return append(append(head, "\r\n\r\n"...), body...)
}

func TestReplayDerivedCalls(t *testing.T) {
	rfc := loadRecorded(t, "testdata/rfc4733-pcmu-lo.pcap")
	wrong := loadRecorded(t, "testdata/rfc4733-wrongkey-lo.pcapng")
	inband := loadRecorded(t, "testdata/inband-pcma-lo.pcapng")
	baresip := readPkts(t, "testdata/baresip-rfc4733-pcmu-lo.pcapng")
	linphone := readPkts(t, "testdata/linphone-inband-pcmu-any-sll.pcapng")
	all := func(int, pkt) bool { return true }
	noSIP := func(p []pkt) []pkt {
		var out []pkt
		for _, q := range p {
			if !q.isSIP() {
				out = append(out, q.clone())
			}
		}
		return out
	}
	tests := []struct {
		name     string
		pkts     []pkt
		opts     replay.Options
		accepted string
		keys     string
		calls    int
		check    func(t *testing.T, rep *replay.Report)
	}{
		{name: "press_spanning_the_answer", accepted: "#", keys: "#", calls: 1,
			// The # starts 60 ms before the 200 OK and goes on after it:
			// one press, which the live path heard.
			pkts: sortPkts(append(rfc.filter(func(i int, _ pkt) bool { return !rfc.isTE(i) }),
				eventPkts(rfc.phone, rfc.ua, rfc.answered-60*ms, 101, rfc.ssrc, 100, 8000, '#', 200*ms)...)),
			check: func(t *testing.T, rep *replay.Report) {
				if p := rep.Presses(); len(p) != 1 || !p[0].Live {
					t.Errorf("presses %+v", p)
				}
			}},
		{name: "two_calls", accepted: "#", keys: "#5", calls: 2,
			pkts: func() []pkt {
				out := rfc.filter(all)
				for _, p := range wrong.pkts {
					p = p.clone()
					p.at += rfc.bye + time.Second
					out = append(out, p)
				}
				return out
			}()},
		{name: "auth_challenge_then_answer", accepted: "#", keys: "#", calls: 1,
			pkts: func() []pkt {
				var out []pkt
				for _, p := range rfc.pkts {
					p = p.clone()
					if p.isSIP() && bytes.HasPrefix(p.data, []byte("INVITE ")) {
						// The first INVITE, challenged with 407 and acknowledged.
						first := p.clone()
						first.at -= 30 * ms
						challenge := pkt{at: p.at - 20*ms, src: p.dst, dst: p.src,
							data: withBody(bytes.Replace(first.data, []byte("INVITE sip:100@127.0.0.1:45060 SIP/2.0"), []byte("SIP/2.0 407 Proxy Authentication Required"), 1), nil)}
						ack := pkt{at: p.at - 10*ms, src: p.src, dst: p.dst,
							data: withBody(bytes.Replace(bytes.Replace(first.data, []byte("INVITE sip:"), []byte("ACK sip:"), 1), []byte(" INVITE\r\n"), []byte(" ACK\r\n"), 1), nil)}
						out = append(out, first, challenge, ack)
					}
					if p.isSIP() && bytes.Contains(p.data, []byte(" INVITE\r\n")) || bytes.Contains(p.data, []byte(" ACK\r\n")) {
						p.data = bumpCSeq(p.data, 1)
					}
					out = append(out, p)
				}
				return sortPkts(out)
			}(),
			check: func(t *testing.T, rep *replay.Report) {
				if c := rep.Calls[0]; c.Status != 200 || c.Answered.IsZero() || !c.Ended.After(c.Answered) {
					t.Errorf("call %+v", c)
				}
			}},
		{name: "late_offer", accepted: "#", keys: "#", calls: 1,
			// INVITE without SDP; the phone offers in the 200, hashcall
			// answers in the ACK.
			pkts: func() []pkt {
				p := rfc.filter(all)
				var offer []byte
				for i := range p {
					if p[i].isSIP() && bytes.HasPrefix(p[i].data, []byte("INVITE ")) {
						_, offer = sdpBody(p[i].data)
						p[i].data = withBody(p[i].data, nil)
					}
				}
				for i := range p {
					if p[i].isSIP() && bytes.HasPrefix(p[i].data, []byte("ACK ")) {
						p[i].data = withBody(p[i].data, offer)
					}
				}
				return p
			}(),
			check: func(t *testing.T, rep *replay.Report) {
				if c := rep.Calls[0]; c.Answered.IsZero() || c.Codec != "PCMU" || !c.Events {
					t.Errorf("call %+v", c)
				}
			}},
		{name: "inband_dynamic_pt_no_sip", accepted: "", keys: "",
			pkts: retagPT(noSIP(inband.pkts), 8, 96)},
		{name: "inband_dynamic_pt_no_sip_codec_given", opts: replay.Options{Codec: media.PCMA}, accepted: "#", keys: "#",
			pkts: retagPT(noSIP(inband.pkts), 8, 96)},
		{name: "baresip_no_sip", pkts: noSIP(baresip), accepted: "#", keys: "#"},
		{name: "linphone_inband_no_sip", pkts: noSIP(linphone), accepted: "#", keys: "#"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := replay.Read(bytes.NewReader(buildCapture(t, tc.pkts, capOpts{ng: true})), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Accepted() != tc.accepted || rep.Keys() != tc.keys || len(rep.Calls) != tc.calls {
				t.Errorf("accepted %q keys %q calls %d, want %q %q %d\n%s", rep.Accepted(), rep.Keys(), len(rep.Calls), tc.accepted, tc.keys, tc.calls, rep.Summary())
			}
			if tc.check != nil {
				tc.check(t, rep)
			}
		})
	}
}

// retagPT moves RTP packets of payload type from to payload type to.
func retagPT(p []pkt, from, to uint8) []pkt {
	for i := range p {
		if p[i].isRTP() && p[i].pt() == from {
			p[i].data[1] = p[i].data[1]&0x80 | to
		}
	}
	return p
}

// TestReplayReinvite moves the phone's RTP to another port by a re-INVITE
// from the phone: the caller's receive path follows once the re-INVITE is
// answered, as live.
func TestReplayReinvite(t *testing.T) {
	rfc := loadRecorded(t, "testdata/rfc4733-pcmu-lo.pcap")
	var invite, ok200 pkt
	for _, p := range rfc.pkts {
		switch {
		case p.isSIP() && bytes.HasPrefix(p.data, []byte("INVITE ")):
			invite = p
		case p.isSIP() && bytes.HasPrefix(p.data, []byte("SIP/2.0 200")) && bytes.Contains(p.data, []byte(" INVITE\r\n")):
			ok200 = p
		}
	}
	header := func(b []byte, name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `: ([^\r]*)`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no %s in %q", name, b)
		}
		return string(m[1])
	}
	from, to, callID := header(ok200.data, "From"), header(ok200.data, "To"), header(ok200.data, "Call-ID")
	_, hcSDP := sdpBody(invite.data)
	_, phoneSDP := sdpBody(ok200.data)
	moved := netip.AddrPortFrom(rfc.phone.Addr(), 41999)
	newSDP := bytes.Replace(phoneSDP, []byte(fmt.Sprintf("m=audio %d ", rfc.phone.Port())), []byte("m=audio 41999 "), 1)
	at := rfc.answered + 100*ms
	reinvite := pkt{at: at, src: ok200.src, dst: ok200.dst, data: []byte(fmt.Sprintf(
		"INVITE sip:hashcall@127.0.0.1:45070 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKre1\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 7 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		ok200.src, to, from, callID, len(newSDP), newSDP))}
	answer := pkt{at: at + ms, src: ok200.dst, dst: ok200.src, data: []byte(fmt.Sprintf(
		"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKre1\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 7 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		ok200.src, to, from, callID, len(hcSDP), hcSDP))}
	move := func(answered bool) []pkt {
		out := []pkt{reinvite}
		if answered {
			out = append(out, answer)
		}
		for _, p := range rfc.pkts {
			p = p.clone()
			if p.isRTP() && p.src == rfc.phone && p.at > at+2*ms {
				p.src = moved
			}
			out = append(out, p)
		}
		return sortPkts(out)
	}
	t.Run("answered", func(t *testing.T) {
		rep, err := replay.Read(bytes.NewReader(buildCapture(t, move(true), capOpts{})), replay.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Accepted() != "#" || len(rep.Calls) != 1 {
			t.Errorf("accepted %q\n%s", rep.Accepted(), rep.Summary())
		}
	})
	t.Run("not_answered", func(t *testing.T) {
		rep, err := replay.Read(bytes.NewReader(buildCapture(t, move(false), capOpts{})), replay.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ps := rep.Presses()
		if rep.Accepted() != "" || len(ps) != 1 || ps[0].Live || !strings.Contains(ps[0].Reason, "from 127.0.0.1:41999") {
			t.Errorf("accepted %q\n%s", rep.Accepted(), rep.Summary())
		}
	})
}
