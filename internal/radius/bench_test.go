package radius

import (
	"slices"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/hashcall/hashcall/verify"
)

// BenchmarkProxyRoundTrip measures what the front adds to a RADIUS
// exchange without a call: a NAS's Access-Request forwarded to a local
// upstream (layeh's PacketServer, which rejects it) and the answer relayed
// back, against the same exchange straight to the upstream. It reports
// the median round trip of each and their difference.
func BenchmarkProxyRoundTrip(b *testing.B) {
	up, _, stop := fakeUpstream(b)
	defer stop()
	f := startFront(b, &fakeVerifier{outcome: verify.Verified}, up, nil)
	via := newNAS(b, f.Addr(), "127.0.0.1:0")
	upAddr := f.pool.servers[0].conn.RemoteAddr()
	direct := newNAS(b, upAddr, "127.0.0.1:0")
	buf := make([]byte, 4096)
	roundTrip := func(n *nas, req []byte) time.Duration {
		start := time.Now()
		if _, err := n.conn.Write(req); err != nil {
			b.Fatal(err)
		}
		k, err := n.conn.Read(buf)
		if err != nil || radius.Code(buf[0]) != radius.CodeAccessReject || k < 20 {
			b.Fatalf("answer %v %x", err, buf[:max(k, 0)])
		}
		return time.Since(start)
	}
	var viaFront, straight []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// A new request each time (Identifier and authenticator), so
		// neither the front's answer cache nor layeh's duplicate check
		// answers it.
		req := request(b, byte(i), "alice", "wrong", true)
		viaFront = append(viaFront, roundTrip(via, req))
		b.StopTimer()
		req = request(b, byte(i), "alice", "wrong", true)
		straight = append(straight, roundTripUpstream(b, direct, req, buf))
		b.StartTimer()
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	mv, ms := med(viaFront), med(straight)
	b.ReportMetric(float64(mv.Microseconds()), "µs-median-via-front")
	b.ReportMetric(float64(ms.Microseconds()), "µs-median-direct")
	b.ReportMetric(float64((mv - ms).Microseconds()), "µs-median-added")
}

// roundTripUpstream sends req, re-signed for the upstream's secret, straight
// to the upstream.
func roundTripUpstream(b *testing.B, n *nas, req []byte, buf []byte) time.Duration {
	p, err := parse(req)
	if err != nil {
		b.Fatal(err)
	}
	if err := rehideUserPassword(p.Attributes, p.Authenticator, nasSecret, upstreamSecret); err != nil {
		b.Fatal(err)
	}
	p.Secret = upstreamSecret
	out, err := encode(p, false)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := n.conn.Write(out); err != nil {
		b.Fatal(err)
	}
	if _, err := n.conn.Read(buf); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
