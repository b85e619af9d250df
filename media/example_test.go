package media_test

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hashcall/hashcall/media"
)

func ExampleLocal_Offer() {
	l := &media.Local{Addr: netip.MustParseAddrPort("192.0.2.10:20000"), SessionID: 4711}
	offer, err := l.Offer()
	if err != nil {
		panic(err)
	}
	// Lines end in CRLF (RFC 4566 §5); shown here without the CR.
	fmt.Print(strings.ReplaceAll(string(offer), "\r\n", "\n"))
	// Output:
	// v=0
	// o=hashcall 4711 0 IN IP4 192.0.2.10
	// s=hashcall
	// c=IN IP4 192.0.2.10
	// t=0 0
	// m=audio 20000 RTP/AVP 8 0 101
	// a=rtpmap:8 PCMA/8000
	// a=rtpmap:0 PCMU/8000
	// a=rtpmap:101 telephone-event/8000
	// a=fmtp:101 0-16
	// a=ptime:20
	// a=sendrecv
}

func ExampleLocal_ParseAnswer() {
	l := &media.Local{Addr: netip.MustParseAddrPort("192.0.2.10:20000")}
	if _, err := l.Offer(); err != nil {
		panic(err)
	}
	// A Cisco CUBE answer: telephone-event on 100, media-level c=.
	answer := "v=0\r\n" +
		"o=CiscoSystemsSIP-GW-UserAgent 4321 8765 IN IP4 192.0.2.30\r\n" +
		"s=SIP Call\r\n" +
		"c=IN IP4 192.0.2.30\r\n" +
		"t=0 0\r\n" +
		"m=audio 16434 RTP/AVP 0 100\r\n" +
		"c=IN IP4 192.0.2.31\r\n" +
		"a=rtpmap:0 PCMU/8000\r\n" +
		"a=rtpmap:100 telephone-event/8000\r\n" +
		"a=fmtp:100 0-15\r\n" +
		"a=ptime:20\r\n"
	n, err := l.ParseAnswer([]byte(answer))
	if err != nil {
		panic(err)
	}
	fmt.Println("send to:", n.Remote)
	fmt.Println("codec:", n.Codec)
	fmt.Println("events: send on", n.SendEventPT, "receive on", n.RecvEventPT)
	fmt.Println("direction:", n.Direction, "hold:", n.Hold)

	_, err = l.ParseAnswer([]byte("v=0\r\no=- 1 1 IN IP4 192.0.2.30\r\ns=-\r\nc=IN IP4 192.0.2.30\r\nt=0 0\r\nm=audio 16434 RTP/AVP 18\r\n"))
	fmt.Println(err)
	// Output:
	// send to: 192.0.2.31:16434
	// codec: PCMU/8000
	// events: send on 100 receive on 101
	// direction: sendrecv hold: false
	// media: answer has no codec in common with the offer (offered PCMA, PCMU; answered G729)
}

// A prompt every call plays is made an Audio once, at start-up; each
// call's Session.PlayAudio then sends the same encoded bytes.
func ExampleAudio() {
	samples := make([]int16, 7500*media.SampleRate/1000) // 7.5 s of 8 kHz audio
	ask := media.NewAudio(samples)
	// In each call, once answered:
	//	err := sess.PlayAudio(ctx, ask)
	fmt.Println(ask.Duration(), ask.Len()/media.FrameSamples, "frames")
	// Output:
	// 7.5s 375 frames
}

func ExampleParseSDP() {
	// An LF-only body without o= from a capture: lenient reading goes on,
	// and Err says why live negotiation would refuse it.
	d, err := media.ParseSDP([]byte("v=0\nc=IN IP4 192.0.2.20\nm=audio 5004 RTP/AVP 8 0 101\na=rtpmap:101 telephone-event/8000\n"))
	if err != nil {
		panic(err)
	}
	a, ok := d.Audio()
	fmt.Println(ok, a.Remote, a.Codecs, a.EventPT, a.HaveEvents)
	fmt.Println(d.Err())
	// Output:
	// true 192.0.2.20:5004 [PCMA/8000 PCMU/8000] 101 true
	// SDP has no o= line
}
