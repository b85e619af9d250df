package replay_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashcall/hashcall/replay"
)

// Replay a capture of a verification call and list its key presses.
func ExampleFile() {
	rep, err := replay.File("testdata/rfc4733-pcmu-lo.pcap", replay.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range rep.Presses() {
		fmt.Printf("%s by %s, %v into the capture, for %v, accepted %v\n",
			p.Key, p.Source, p.Offset.Round(time.Millisecond), p.Duration, p.Accepted)
	}
	fmt.Println("verified:", rep.Verified())
	// Output:
	// # by rfc4733, 522ms into the capture, for 140ms, accepted true
	// verified: true
}

// Read a capture from any io.Reader and look at its RTP streams.
func ExampleRead() {
	f, err := os.Open("testdata/sipinfo-pcmu-any-sll.pcapng")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	rep, err := replay.Read(f, replay.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Format, rep.LinkTypes, len(rep.Calls), "call")
	for _, s := range rep.Streams {
		fmt.Printf("%s %s: %d packets, %d lost, %d presses\n", s.Codec, s.Found, s.Packets, s.Lost, len(s.Presses))
	}
	fmt.Printf("keys %q, accepted %q\n", rep.Keys(), rep.Accepted())
	// Output:
	// pcapng [Linux SLL] 1 call
	// PCMU sip: 22 packets, 0 lost, 1 presses
	// PCMU sip: 22 packets, 0 lost, 0 presses
	// keys "#", accepted "#"
}

// printTB stands in for the *testing.T of a test: it prints the first line
// of a failure instead of failing.
type printTB struct{}

func (printTB) Helper() {}
func (printTB) Fatalf(format string, args ...any) {
	msg, _, _ := strings.Cut(fmt.Sprintf(format, args...), "\n")
	fmt.Println("FAIL:", msg)
}

// In a test of your own, a capture becomes a regression test in one line:
//
//	func TestTrunkHash(t *testing.T) {
//		replay.Verify(t, "testdata/trunk-hash.pcapng", "#")
//	}
//
// Here a capture in which the callee pressed nothing is checked for a #.
func ExampleVerify() {
	var t printTB
	replay.Verify(t, "testdata/nokey-pcma-any-sll2.pcap", "#")
	replay.Verify(t, "testdata/nokey-pcma-any-sll2.pcap", "")
	replay.Verify(t, "testdata/rfc4733-wrongkey-lo.pcapng", "5")
	replay.AssertVerified(t, "testdata/inband-pcma-lo.pcapng")
	// Output:
	// FAIL: replay testdata/nokey-pcma-any-sll2.pcap: accepted presses "", expected "#"
}
