package dtmf_test

import (
	"fmt"
	"time"

	"github.com/pion/rtp"

	"github.com/hashcall/hashcall/dtmf"
)

// A simulated phone presses # for 120 ms; its RTP packets go through the
// wire format and into a Receiver, which reports the press.
func ExampleReceiver() {
	phone := dtmf.NewEncoder(dtmf.EncoderConfig{PayloadType: 101, SSRC: 0x5eed, Interval: 20 * time.Millisecond})
	rx := dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: 101, ClockRate: 8000})

	buf := make([]byte, 1500)
	var reports []dtmf.Event
	for _, p := range phone.Press(nil, dtmf.KeyHash, 120*time.Millisecond) {
		n, err := p.MarshalTo(buf)
		if err != nil {
			fmt.Println(err)
			return
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			fmt.Println(err)
			return
		}
		reports = rx.Packet(reports[:0], p.Offset, &pkt.Header, pkt.Payload)
		for _, e := range reports {
			if !e.Ended && e.Key.Accepted() {
				fmt.Println(e.Key)
			}
		}
	}
	// Output: #
}

// The Combiner reports a press heard both in-band and as RFC 4733 once.
func ExampleCombiner() {
	var c dtmf.Combiner
	var out []dtmf.Event
	out = c.Push(out, dtmf.Event{Key: '#', Source: dtmf.SourceRFC4733, Start: 1000 * time.Millisecond})
	out = c.Push(out, dtmf.Event{Key: '#', Source: dtmf.SourceInband, Start: 1030 * time.Millisecond})
	out = c.Push(out, dtmf.Event{Key: '#', Source: dtmf.SourceInband, Ended: true, Start: 1030 * time.Millisecond, End: 1130 * time.Millisecond})
	out = c.Push(out, dtmf.Event{Key: '#', Source: dtmf.SourceRFC4733, Ended: true, Start: 1000 * time.Millisecond, End: 1120 * time.Millisecond})
	for _, e := range out {
		fmt.Println(e.Key, e.Source, e.Ended)
	}
	// Output:
	// # rfc4733 false
	// # rfc4733 true
}
