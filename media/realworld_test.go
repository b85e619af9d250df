package media

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/hashcall/hashcall/internal/testpeers"
)

var eventRtpmap = regexp.MustCompile(`(?m)^a=rtpmap:(\d+) telephone-event/(\d+)`)

// TestRealWorldSDP answers every SDP body of the real-world corpus
// (../shared/realworld/sdp, cut from real captures: an IP-DECT gateway, a
// fax gateway, X-Lite with ZRTP, a 3G-324M gateway with CLEARMODE only,
// IMS over IPv6 where payload type 101 is AMR-WB) as an offer: no panic; an
// offer without G.711 is refused with an error; and telephone-events are
// only ever taken from a format the body maps to telephone-event/8000.
func TestRealWorldSDP(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "realworld", "sdp")
	testpeers.File(t, dir, "(none: the shared real-world corpus ../shared/realworld)")
	files, err := filepath.Glob(filepath.Join(dir, "*.sdp"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no SDP files in %s: %v", dir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			l := &Local{Addr: netip.MustParseAddrPort("127.0.0.1:20000")}
			_, n, err := l.Answer(body)
			if err != nil {
				t.Logf("refused: %v", err)
				return
			}
			if !n.Codec.Supported() {
				t.Errorf("answered with codec %v", n.Codec)
			}
			var events []uint8
			for _, m := range eventRtpmap.FindAllStringSubmatch(string(body), -1) {
				if m[2] == "8000" {
					pt, _ := strconv.Atoi(m[1])
					events = append(events, uint8(pt))
				}
			}
			if n.HaveEvents && !slices.Contains(events, n.SendEventPT) {
				t.Errorf("telephone-events on payload type %d, which the body maps to %v", n.SendEventPT, events)
			}
			t.Logf("codec %s, events %v on %d, remote %v", n.Codec.Name, n.HaveEvents, n.SendEventPT, n.Remote)
		})
	}
}
