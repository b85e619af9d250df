package interop

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/pion/rtp"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/verify"
)

// The media attacks of issue 8, each against a real call through Kamailio
// to a SIPp phone: the attack must fail, and the phone's genuine # (where
// it presses one) must still verify.

// TestAttackSpoofedFirstRTP: a forger who read the SDP sends one RFC 4733
// packet carrying a whole # (marker and end bit) through a raw socket,
// spoofing the phone's SDP source address and port, the moment the call is
// answered: before the phone's first packet (rfc4733_pound sends nothing for
// 2 s). The packet must never decide a key (no early key either: it is
// never processed) nor lock the phone out: the phone's # verifies, and the
// forged packet is counted as dropped for its SSRC.
func TestAttackSpoofedFirstRTP(t *testing.T) {
	requireRoot(t) // the raw socket, and SIPp's play_pcap_audio
	l := startLab(t)
	u := l.startUAS(t, "rfc4733_pound")
	phonePort := l.uasPorts[u.scenario.name][1]
	low, high := rtpPorts(t)
	v, _, logs := l.newVerifierLog(t, uaOptions{rtpLow: low, rtpHigh: high})

	forged := dtmf.Packet{
		Header:  dtmfHeader(0x5EED0001, 30000, 4000000, true),
		Payload: dtmf.Payload{Event: 11, End: true, Volume: 33, Duration: 1600}, // a whole 200 ms #
	}
	b := make([]byte, forged.MarshalSize())
	n, err := forged.MarshalTo(b)
	if err != nil {
		t.Fatal(err)
	}
	spoofed := make(chan error, 1)
	var once sync.Once
	stages := &stageLog{on: map[verify.Stage]func(){verify.StageAnswered: func() {
		once.Do(func() { spoofed <- spoofUDP(phonePort, low, b[:n]) })
	}}}
	res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: shortPrompts(t), OnProgress: stages.record})
	logResult(t, res, stages)
	select {
	case err := <-spoofed:
		if err != nil {
			t.Fatalf("spoofing: %v", err)
		}
	default:
		t.Fatal("nothing was spoofed: the call was never answered")
	}
	t.Logf("spoofed one RFC 4733 # from 127.0.0.1:%d (the phone's SDP address) to 127.0.0.1:%d; early keys %+v", phonePort, low, res.EarlyKeys)

	if res.Outcome != verify.Verified || res.DTMFSource != "rfc4733" || res.Keys != "#" {
		t.Errorf("outcome %s by %q, keys %q: want the phone's # to verify (rfc4733)", res.Outcome, res.DTMFSource, res.Keys)
	}
	if len(res.EarlyKeys) != 0 {
		t.Errorf("early keys %+v: the forged packet was decided", res.EarlyKeys)
	}
	if res.RTPDropped["ssrc"] < 1 {
		t.Errorf("RTP dropped %v: want the forged packet counted (ssrc)", res.RTPDropped)
	}
	if strings.Contains(logs.String(), "level_dbm0=-33") {
		t.Error("the forged # (volume 33) reached the verifier")
	}
	if strings.Contains(logs.String(), "rtp lock taken over") || !strings.Contains(logs.String(), "rtp locked") {
		t.Error("want one lock (the phone's), no takeover")
	}
	if code := u.finish(t, 10*time.Second); code != 0 {
		t.Errorf("SIPp exited with status %d, want 0", code)
	}
}

// TestAttackFirstSenderLatching: with media.symmetric_latching on, a
// stranger on 127.0.0.1 streams RFC 4733 # presses (volume 33) at our RTP
// port from its own port from the moment the call rings, so its packets
// are there first when the call is answered; the phone
// (stream_rfc4733_pound) sends RTP from its SDP address from its ACK on and
// presses # 2 s in. The stranger must not verify (its presses, if it held
// the latch for a moment, are early keys) and the phone must: the SDP
// address takes the latch over, the stranger's packets are dropped.
func TestAttackFirstSenderLatching(t *testing.T) {
	l := startLab(t)
	u := l.startUAS(t, "stream_rfc4733_pound")
	low, high := rtpPorts(t)
	v, _, logs := l.newVerifierLog(t, uaOptions{rtpLow: low, rtpHigh: high, latch: true})
	target := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: low}
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	stop := make(chan struct{})
	var (
		wg   sync.WaitGroup
		sent int
		once sync.Once
	)
	start := func() {
		once.Do(func() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sent = forgeVolume(stranger, target, stop, 33)
			}()
		})
	}
	stages := &stageLog{on: map[verify.Stage]func(){verify.StageRinging: start, verify.StageAnswered: start}}
	res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: shortPrompts(t), OnProgress: stages.record})
	close(stop)
	wg.Wait()
	logResult(t, res, stages)
	log := logs.String()
	latched := regexp.MustCompile(`msg="rtp source latched".*source=(\S+)`).FindAllStringSubmatch(log, -1)
	t.Logf("the stranger %v sent %d packets; latched in turn: %v; early keys %+v", stranger.LocalAddr(), sent, latched, res.EarlyKeys)
	if sent == 0 {
		t.Fatal("the stranger sent nothing")
	}
	if res.Outcome != verify.Verified || res.DTMFSource != "rfc4733" {
		t.Fatalf("outcome %s by %q: want the phone's # to verify", res.Outcome, res.DTMFSource)
	}
	// The deciding key is the phone's (volume 10), not the stranger's (33).
	if !regexp.MustCompile(fmt.Sprintf(`msg=key .*key=# source=rfc4733 level_dbm0=-%d\b`, phoneVolume)).MatchString(log) {
		t.Errorf("no counted # at the phone's level (-%d dBm0) in the log", phoneVolume)
	}
	if regexp.MustCompile(`msg=key .*key=# source=rfc4733 level_dbm0=-33\b`).MatchString(log) {
		t.Error("a stranger's # was counted")
	}
	for _, e := range res.EarlyKeys {
		if e.Reason != verify.EarlyMinKeyDelay {
			t.Errorf("early key %+v: the stranger held the latch past verify.min_key_delay", e)
		}
	}
	phone := fmt.Sprintf("127.0.0.1:%d", l.uasPorts[u.scenario.name][1])
	if len(latched) == 0 || latched[len(latched)-1][1] != phone {
		t.Errorf("latched %v, want the phone's %s last", latched, phone)
	}
	if res.RTPDropped["source"] == 0 {
		t.Errorf("RTP dropped %v: want the stranger's packets counted (source)", res.RTPDropped)
	}
	if code := u.finish(t, 10*time.Second); code != 0 {
		t.Errorf("SIPp exited with status %d, want 0", code)
	}
}

// TestAttackHashOnAnswer: far ends that play # the instant they answer (a
// voicemail greeting with a keypad tone) and never again get no_key, the #
// listed in early_keys; a callee who presses at once and again after the
// ask prompt's phrase is verified by the second press.
func TestAttackHashOnAnswer(t *testing.T) {
	l := startLab(t)
	for _, tc := range []struct {
		name, scenario string
		want           verify.Outcome
		source         string // of the early #
	}{
		{"rfc4733_on_answer_no_key", "hash_on_answer_rfc4733", verify.NoKey, "rfc4733"},
		{"inband_on_answer_no_key", "hash_on_answer_inband", verify.NoKey, "inband"},
		{"early_then_after_the_phrase_verified", "hash_early_and_again", verify.Verified, "rfc4733"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := l.startUAS(t, tc.scenario)
			v, _ := l.newVerifier(t, uaOptions{})
			stages := &stageLog{}
			res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: shortPrompts(t), OnProgress: stages.record})
			logResult(t, res, stages)
			t.Logf("early keys %+v", res.EarlyKeys)
			if res.Outcome != tc.want {
				t.Errorf("outcome %s, want %s", res.Outcome, tc.want)
			}
			if tc.want != verify.Verified && res.Outcome == verify.Verified {
				t.Fatal("VERIFIED by a # played on answer")
			}
			if len(res.EarlyKeys) == 0 {
				t.Fatal("no early key listed")
			}
			e := res.EarlyKeys[0]
			if e.Key != "#" || e.Source != tc.source || e.Reason != verify.EarlyMinKeyDelay || e.MS < 0 || e.MS > 1000 {
				t.Errorf("early key %+v, want a # by %s within the first second (min_key_delay)", e, tc.source)
			}
			if tc.want == verify.Verified {
				if res.Keys != "#" || res.KeyAt == nil || res.KeyAt.Sub(*res.AnsweredAt) < 2*time.Second {
					t.Errorf("keys %q at %v: want the second # (2.2 s in) to decide", res.Keys, res.KeyAt)
				} else {
					t.Logf("#-to-decision %.1f ms", res.HashToDecisionMS)
				}
			} else if res.Keys != "" {
				t.Errorf("keys %q counted, want none", res.Keys)
			}
			if code := u.finish(t, 10*time.Second); code != 0 {
				t.Errorf("SIPp exited with status %d, want 0", code)
			}
		})
	}
}

// dtmfHeader is an RTP header for a telephone-event packet on PT 101.
func dtmfHeader(ssrc uint32, seq uint16, ts uint32, marker bool) rtp.Header {
	return rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc, Marker: marker}
}

// spoofUDP sends one UDP datagram with payload b to 127.0.0.1:to as if
// from 127.0.0.1:from, a port another process holds, through a raw socket
// (root), as sendSpoofed does.
func spoofUDP(from, to int, b []byte) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_UDP)
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer syscall.Close(fd)
	lo := netip.MustParseAddr("127.0.0.1")
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP(lo.AsSlice()), DstIP: net.IP(lo.AsSlice())}
	udp := &layers.UDP{SrcPort: layers.UDPPort(from), DstPort: layers.UDPPort(to)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return err
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, udp, gopacket.Payload(b)); err != nil {
		return err
	}
	if err := syscall.Sendto(fd, buf.Bytes(), 0, &syscall.SockaddrInet4{Addr: lo.As4()}); err != nil {
		return fmt.Errorf("sendto: %w", err)
	}
	return nil
}
