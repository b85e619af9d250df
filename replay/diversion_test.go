package replay_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/hashcall/hashcall/replay"
)

// A capture whose call was forwarded (a 181 with a Diversion header before
// the 200) says so in its Call; one without does not.
func TestReplayDiversion(t *testing.T) {
	plain := seedPkts()
	ok := plain[1] // the 200 OK to the INVITE
	if !bytes.HasPrefix(ok.data, []byte("SIP/2.0 200 OK\r\n")) {
		t.Fatalf("seed packet 1 is %q", ok.data[:20])
	}
	head, _, _ := bytes.Cut(ok.data, []byte("\r\n\r\n"))
	head = bytes.Replace(head, []byte("SIP/2.0 200 OK"), []byte("SIP/2.0 181 Call Is Being Forwarded"), 1)
	head = regexpContentLength(head)
	fwd := ok
	fwd.data = append(bytes.Clone(head), "\r\nDiversion: <sip:+447700900123@192.0.2.9>;reason=no-answer;counter=1\r\n\r\n"...)
	fwd.at -= 1 // just before the 200
	forwarded := slices.Insert(slices.Clone(plain), 1, fwd)
	tests := []struct {
		name     string
		pkts     []pkt
		diverted bool
		reasons  []string
	}{
		{"not_forwarded", plain, false, nil},
		{"181_with_diversion", forwarded, true, []string{"no-answer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := replay.Read(bytes.NewReader(buildCapture(t, tc.pkts, capOpts{})), replay.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Calls) != 1 {
				t.Fatalf("%d calls", len(rep.Calls))
			}
			c := rep.Calls[0]
			if c.Diverted != tc.diverted || !slices.Equal(c.DiversionReasons, tc.reasons) {
				t.Errorf("diverted %v %q, want %v %q", c.Diverted, c.DiversionReasons, tc.diverted, tc.reasons)
			}
		})
	}
}

// regexpContentLength sets a header block's Content-Length to 0.
func regexpContentLength(head []byte) []byte {
	return contentLength.ReplaceAll(head, []byte("Content-Length: 0"))
}
