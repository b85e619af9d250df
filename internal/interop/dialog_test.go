package interop

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/verify"
)

// Dialog edge cases against real peers: a 200 that crosses our CANCEL, and
// a re-INVITE that moves the far end's media.

// TestCancelCrossedBy200 rings past hashcall's ring timeout at a SIPp UAS
// (testdata/sipp/cancel_crossed_200.xml) that, when our CANCEL reaches it
// through Kamailio, answers the INVITE with 200 OK and SDP, and the CANCEL
// only after that (after our ACK and BYE: see the scenario). Kamailio
// answers our CANCEL itself ("200 canceling"), relays it, and then relays
// the late 200 (a proxy forwards every 2xx, it does not turn it into a 487):
// the 200 reaches hashcall after its CANCEL. hashcall must acknowledge that
// 200 and hang up at once with BYE, both through the proxy (its
// Record-Route), start no media, and report no_answer.
func TestCancelCrossedBy200(t *testing.T) {
	l := startLab(t)
	u := l.startUAS(t, "cancel_crossed_200")
	v, _, logs := l.newVerifierLog(t, uaOptions{})
	mark := len(l.kamLog())
	stages := &stageLog{}
	start := time.Now()
	res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: shortPrompts(t), OnProgress: stages.record})
	elapsed := time.Since(start)
	logResult(t, res, stages)

	if res.Outcome != verify.NoAnswer {
		t.Errorf("outcome %s, want %s", res.Outcome, verify.NoAnswer)
	}
	// The INVITE's final response was the 200 (then hung up by us).
	if res.SIPCode != 200 || res.AnsweredAt != nil || res.Codec != "" || res.Keys != "" {
		t.Errorf("SIP code %d, answered at %v, codec %q, keys %q; want 200, never answered, no media, no key",
			res.SIPCode, res.AnsweredAt, res.Codec, res.Keys)
	}
	if !stages.has(verify.StageRinging) || stages.has(verify.StageAnswered) || stages.has(verify.StagePrompt) {
		t.Errorf("progress %s: want ringing, and neither answered nor a prompt", stages)
	}
	if elapsed < ringTimeout || elapsed > ringTimeout+3*time.Second {
		t.Errorf("no_answer after %v, with a ring timeout of %v", elapsed, ringTimeout)
	}
	if !strings.Contains(logs.String(), "200 crossed our CANCEL") {
		t.Error("hashcall did not log the 200 that crossed its CANCEL")
	}
	// SIPp's exit status 0 says that the ACK and the BYE reached it; the
	// proxy saw them pass, in the dialog of our INVITE.
	if code := u.finish(t, 10*time.Second); code != 0 {
		t.Errorf("SIPp exited with status %d, want 0 (no ACK or no BYE for the 200 that crossed the CANCEL)", code)
	}
	kam := l.kamLog()[mark:]
	for _, want := range []struct {
		line string
		n    int
	}{
		{"interop: relaying CANCEL", 1},
		{"interop: reply 200 OK to INVITE", 1},
		{"interop: request ACK sip:127.0.0.1:", 1},
		{"interop: request BYE sip:127.0.0.1:", 1},
	} {
		if got := countLines(kam, want.line); got != want.n {
			t.Errorf("Kamailio logged %q %d times, want %d", want.line, got, want.n)
		}
	}
}

// TestCancelCrossedBy200Then481 is the crossing on the wire, where the far
// end sent its 200 before our CANCEL reached it and so answers the CANCEL
// with 481 (RFC 3261 §9.2; testdata/sipp/cancel_crossed_481.xml), then
// retransmits the 200 until it is acknowledged. Kamailio answers every
// CANCEL itself (200) and keeps the far end's answer to itself, so here
// hashcall calls SIPp directly (SIPp as the trunk). sipgo ends the INVITE
// transaction when the CANCEL fails and drops the 200 it held; hashcall must
// acknowledge and hang up a retransmission of it (sip.UA.lateAnswer), or the
// far end's call stays up, unacknowledged, until it gives up (64*T1, 32 s).
func TestCancelCrossedBy200Then481(t *testing.T) {
	l := startLab(t)
	const name = "cancel_crossed_481"
	u := l.startUAS(t, name)
	v, _, logs := l.newVerifierLog(t, uaOptions{trunk: "127.0.0.1:" + strconv.Itoa(l.uasPorts[name][0])})
	stages := &stageLog{}
	start := time.Now()
	res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: shortPrompts(t), OnProgress: stages.record})
	elapsed := time.Since(start)
	logResult(t, res, stages)

	if res.Outcome != verify.NoAnswer || res.AnsweredAt != nil || res.Codec != "" {
		t.Errorf("outcome %s, answered at %v, codec %q: want no_answer, never answered, no media", res.Outcome, res.AnsweredAt, res.Codec)
	}
	if elapsed < ringTimeout || elapsed > ringTimeout+3*time.Second {
		t.Errorf("no_answer after %v, with a ring timeout of %v", elapsed, ringTimeout)
	}
	// The retransmitted 200 comes 500 ms after the 481.
	if code := u.finish(t, 10*time.Second); code != 0 {
		t.Errorf("SIPp exited with status %d, want 0 (the 200 that crossed the CANCEL was never acknowledged and hung up)", code)
	}
	if !strings.Contains(logs.String(), "200 came after our CANCEL failed") {
		t.Error("hashcall did not log the late 200")
	}
}

// TestReinviteMovesMedia: after the answer the SIPp UAS
// (testdata/sipp/reinvite_move_pound.xml) plays 400 ms of silence from its
// media port P, then re-INVITEs through Kamailio with an SDP that names
// P + 2, and 700 ms after its ACK plays RFC 4733 # from P + 2 with another
// SSRC. hashcall must answer the re-INVITE with its SDP, send its RTP to
// P + 2 and accept the # from there: verified. Meanwhile the test sends an
// RFC 4733 press of 5 from the old address (127.0.0.1:P, the old SSRC, by
// raw socket, as SIPp does): it must be dropped (source), or the outcome
// would be wrong_key.
func TestReinviteMovesMedia(t *testing.T) {
	l := startLab(t)
	u := l.startUAS(t, "reinvite_move_pound")
	oldPort := l.uasPorts[u.scenario.name][1]
	newPort := oldPort + 2
	low, high := rtpPorts(t)
	v, _, logs := l.newVerifierLog(t, uaOptions{rtpLow: low, rtpHigh: high})
	mark := len(l.kamLog())

	// Once hashcall has retargeted, a press of 5 from the old port.
	retarget := fmt.Sprintf("msg=\"rtp retarget\" rtp_port=%d from=127.0.0.1:%d to=127.0.0.1:%d", low, oldPort, newPort)
	type forged struct {
		sent int
		err  error
	}
	stale := make(chan forged, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := logs.WaitContains(ctx, retarget); err != nil {
			stale <- forged{err: fmt.Errorf("no %q in hashcall's log: %w", retarget, err)}
			return
		}
		n, err := sendSpoofed(oldPort, low, silenceShortSSRC, '5')
		stale <- forged{n, err}
	}()

	stages := &stageLog{}
	res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: shortPrompts(t), OnProgress: stages.record})
	logResult(t, res, stages)
	f := <-stale
	if f.err != nil {
		t.Errorf("stale packets from the old port: %v", f.err)
	}
	t.Logf("sent %d RFC 4733 packets of a 5 from the old port 127.0.0.1:%d after the move", f.sent, oldPort)

	if res.Outcome != verify.Verified || res.DTMFSource != "rfc4733" || res.Keys != "#" || res.SIPCode != 200 {
		t.Errorf("outcome %s by %q, keys %q, SIP %d: want verified by rfc4733, keys \"#\", SIP 200",
			res.Outcome, res.DTMFSource, res.Keys, res.SIPCode)
	}
	if !strings.Contains(stages.String(), fmt.Sprintf("far end 127.0.0.1:%d", oldPort)) {
		t.Errorf("progress %s: the call was not answered with the far end at port %d", stages, oldPort)
	}
	if f.sent > 0 && res.RTPDropped["source"] < uint64(f.sent) {
		t.Errorf("RTP dropped %v: want the %d packets from the old port counted as source", res.RTPDropped, f.sent)
	}
	if n := countLines(l.kamLog()[mark:], "interop: request INVITE sip:"+trunkUser+"@"); n != 1 {
		t.Errorf("Kamailio relayed %d re-INVITEs to hashcall, want 1", n)
	}
	// SIPp exits 0 only when hashcall's 200 to the re-INVITE carried an SDP
	// answer and the call ended with hashcall's BYE.
	if code := u.finish(t, 10*time.Second); code != 0 {
		t.Errorf("SIPp exited with status %d, want 0", code)
	}
}

// sendSpoofed sends one RFC 4733 press of key (100 ms, PT 101, ssrc) to
// 127.0.0.1:to as if from 127.0.0.1:from, through a raw socket (root), as
// SIPp's play_pcap_audio does: from may be a port another process holds. It
// returns the number of packets sent.
func sendSpoofed(from, to int, ssrc uint32, key dtmf.Key) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_UDP)
	if err != nil {
		return 0, fmt.Errorf("raw socket: %w", err)
	}
	defer syscall.Close(fd)
	lo := netip.MustParseAddr("127.0.0.1")
	dst := &syscall.SockaddrInet4{Addr: lo.As4()}
	enc := dtmf.NewEncoder(dtmf.EncoderConfig{PayloadType: 101, SSRC: ssrc, Sequence: 60000, Timestamp: 900000, Interval: 20 * time.Millisecond})
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP(lo.AsSlice()), DstIP: net.IP(lo.AsSlice())}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	rtpBuf := make([]byte, 64)
	start := time.Now()
	sent := 0
	for _, p := range enc.Press(nil, key, 100*time.Millisecond) {
		time.Sleep(time.Until(start.Add(p.Offset)))
		n, err := p.MarshalTo(rtpBuf)
		if err != nil {
			return sent, err
		}
		udp := &layers.UDP{SrcPort: layers.UDPPort(from), DstPort: layers.UDPPort(to)}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return sent, err
		}
		if err := gopacket.SerializeLayers(buf, opts, udp, gopacket.Payload(rtpBuf[:n])); err != nil {
			return sent, err
		}
		if err := syscall.Sendto(fd, buf.Bytes(), 0, dst); err != nil {
			return sent, fmt.Errorf("sendto: %w", err)
		}
		sent++
	}
	return sent, nil
}
