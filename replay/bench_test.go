package replay_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashcall/hashcall/replay"
)

// BenchmarkReplay replays 50 recorded calls in a row (pcapng): reading,
// decoding, SIP, and the live receive path with the in-band detector on
// every audio packet.
func BenchmarkReplay(b *testing.B) {
	calls := [][]pkt{
		readPkts(b, "testdata/rfc4733-pcmu-lo.pcap"),
		readPkts(b, "testdata/baresip-rfc4733-pcmu-lo.pcapng"),
		readPkts(b, "testdata/linphone-inband-pcmu-any-sll.pcapng"),
	}
	var pkts []pkt
	var at time.Duration
	for i := range 50 {
		c := calls[i%len(calls)]
		for _, p := range c {
			p.at += at
			pkts = append(pkts, p)
		}
		at = pkts[len(pkts)-1].at + time.Second
	}
	data := buildCapture(b, pkts, capOpts{ng: true})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep, err := replay.Read(bytes.NewReader(data), replay.Options{})
		if err != nil || len(rep.Calls) != 3 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pkts)), "ns/packet")
}
