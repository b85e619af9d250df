package replay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/internal/phone"
	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/replay"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

// Ports of the recorded calls, named in the capture filter so that other
// traffic on a shared machine stays out of the goldens.
const (
	recPhoneSIP = 45060
	recUASIP    = 45070
	recPhoneRTP = 41000 // –41099
	recUARTP    = 42000 // –42099
	recFilter   = "udp and (port 45060 or port 45070 or portrange 41000-41099 or portrange 42000-42099)"
)

// golden describes one recorded capture.
type golden struct {
	file   string // under testdata/
	iface  string // lo or any
	link   string // tshark -y, "" for the default
	pcap   bool   // tshark -F pcap (default pcapng)
	method string
	key    dtmf.Key
	codecs []media.Codec
}

var goldens = []golden{
	{"rfc4733-pcmu-lo.pcap", "lo", "", true, phone.MethodRFC4733, '#', []media.Codec{media.PCMU}},
	{"rfc4733-pcma-any-sll2.pcapng", "any", "LINUX_SLL2", false, phone.MethodRFC4733, '#', []media.Codec{media.PCMA}},
	{"inband-pcma-lo.pcapng", "lo", "", false, phone.MethodInband, '#', []media.Codec{media.PCMA}},
	{"inband-pcmu-any-sll.pcap", "any", "LINUX_SLL", true, phone.MethodInband, '#', []media.Codec{media.PCMU}},
	{"sipinfo-pcmu-any-sll.pcapng", "any", "LINUX_SLL", false, phone.MethodInfo, '#', []media.Codec{media.PCMU}},
	{"rfc4733-wrongkey-lo.pcapng", "lo", "", false, phone.MethodRFC4733, '5', []media.Codec{media.PCMU}},
	{"nokey-pcma-any-sll2.pcap", "any", "LINUX_SLL2", true, phone.MethodNone, '#', []media.Codec{media.PCMA}},
}

// TestRecordGoldens records the golden captures in testdata/ from calls of
// hashcall's own stack (verify.Verifier and sip.UA against the simulated
// phone over 127.0.0.1), captured by tshark, and writes each one's expected
// result beside it. It runs only with HASHCALL_RECORD_GOLDEN=1, as root:
//
//	HASHCALL_RECORD_GOLDEN=1 go test ./replay/ -run TestRecordGoldens -v
func TestRecordGoldens(t *testing.T) {
	if os.Getenv("HASHCALL_RECORD_GOLDEN") != "1" {
		t.Skip("set HASHCALL_RECORD_GOLDEN=1 to record the golden captures (root, tshark)")
	}
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	short := *set
	short.Ask = short.Ask[:4000] // half a second
	short.AskPressAt = 500 * time.Millisecond
	short.Success, short.Goodbye, short.WrongKey = short.Success[:800], short.Goodbye[:800], short.WrongKey[:800]
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			out := filepath.Join("testdata", g.file)
			capture := startCapture(t, out, g.iface, g.link, g.pcap)
			res := recordCall(t, g, &short)
			capture.Stop(t)
			t.Logf("call: %+v", res)

			rep, err := replay.File(out, replay.Options{})
			if err != nil {
				t.Fatal(err)
			}
			exp := expectedOf(rep)
			exp.Call = string(res.Outcome)
			exp.Method = g.method
			b, _ := json.MarshalIndent(exp, "", "  ")
			if err := os.WriteFile(strings.TrimSuffix(out, filepath.Ext(out))+".expected.json", append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			// The live call and the replay must agree.
			if wantKeys := res.Keys; wantKeys != rep.Keys() {
				t.Errorf("live call heard %q, replay %q", wantKeys, rep.Keys())
			}
		})
	}
}

func recordCall(t *testing.T, g golden, p *prompts.Set) verify.Result {
	ctx := context.Background()
	ph, err := phone.Start(ctx, phone.Config{
		Listen: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), recPhoneSIP).String(),
		// As a callee presses: after verify's early-key guard.
		Method: g.method, Key: g.key, After: max(verify.DefaultMinKeyDelay, p.AskPressAt) + 300*time.Millisecond, Codecs: g.codecs,
		Ports: media.PortRange{Low: recPhoneRTP, High: recPhoneRTP + 99},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	ua, err := sip.NewUA(ctx, sip.Config{
		Listen: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), recUASIP).String(),
		Trunk:  sip.Trunk{Address: ph.Addr(), OptionsInterval: -1}, From: "hashcall",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	v := &verify.Verifier{UA: ua, Config: verify.Config{
		AnswerTimeout: 2 * time.Second, Attempts: 1,
		Media: media.SessionConfig{IP: netip.MustParseAddr("127.0.0.1"), Ports: media.PortRange{Low: recUARTP, High: recUARTP + 99}},
	}}
	return v.Run(ctx, verify.Request{To: "100", Prompts: p})
}

// interop is a golden recorded against a real softphone.
type interop struct {
	file   string
	iface  string
	link   string
	pcap   bool
	peer   string // baresip or linphonec
	method string // rfc4733, info, inband (linphonec)
	codecs []media.Codec
}

var interops = []interop{
	{"baresip-rfc4733-pcmu-lo.pcapng", "lo", "", false, "baresip", "rfc4733", []media.Codec{media.PCMU}},
	{"baresip-rfc4733-pcma-any-sll2.pcap", "any", "LINUX_SLL2", true, "baresip", "rfc4733", []media.Codec{media.PCMA}},
	{"linphone-sipinfo-pcmu-lo.pcap", "lo", "", true, "linphonec", "info", []media.Codec{media.PCMU}},
	{"linphone-inband-pcmu-any-sll.pcapng", "any", "LINUX_SLL", false, "linphonec", "inband", []media.Codec{media.PCMU}},
	{"linphone-rfc4733-pcma-lo.pcapng", "lo", "", false, "linphonec", "rfc4733", []media.Codec{media.PCMA}},
}

// TestRecordInterop records golden captures of hashcall calling real
// softphones (baresip 1.0, linphonec 5.1) that press # a moment after
// answering. Like TestRecordGoldens it runs only with
// HASHCALL_RECORD_GOLDEN=1, as root.
func TestRecordInterop(t *testing.T) {
	if os.Getenv("HASHCALL_RECORD_GOLDEN") != "1" {
		t.Skip("set HASHCALL_RECORD_GOLDEN=1 to record the golden captures (root, tshark, baresip, linphonec)")
	}
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range interops {
		t.Run(g.file, func(t *testing.T) {
			var press func(ctx context.Context) error
			switch g.peer {
			case "baresip":
				press = startBaresip(t, g)
			default:
				press = startLinphone(t, g)
			}
			out := filepath.Join("testdata", g.file)
			capture := startCapture(t, out, g.iface, g.link, g.pcap)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			pressed := make(chan error, 1)
			go func() { pressed <- press(ctx) }()
			res := dialPeer(t, set, g.codecs)
			if err := <-pressed; err != nil {
				t.Errorf("pressing #: %v", err)
			}
			capture.Stop(t)
			t.Logf("call: %+v", res)
			if res.Outcome != verify.Verified {
				t.Fatalf("the call was not verified: %s %s", res.Outcome, res.Error)
			}
			rep, err := replay.File(out, replay.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(rep.Summary())
			exp := expectedOf(rep)
			exp.Call, exp.Method = string(res.Outcome), g.peer+" "+g.method
			b, _ := json.MarshalIndent(exp, "", "  ")
			if err := os.WriteFile(strings.TrimSuffix(out, filepath.Ext(out))+".expected.json", append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			if res.Keys != rep.Keys() {
				t.Errorf("live call heard %q, replay %q", res.Keys, rep.Keys())
			}
		})
	}
}

// startCapture runs tshark on iface, writing the calls' packets (recFilter)
// to out.
func startCapture(t *testing.T, out, iface, link string, pcap bool) *testpeers.Capture {
	return testpeers.StartCapture(t, testpeers.CaptureConfig{Out: out, Iface: iface, Link: link, PCAP: pcap, Filter: recFilter})
}

// dialPeer places a verification call to the softphone on recPhoneSIP.
func dialPeer(t *testing.T, set *prompts.Set, codecs []media.Codec) verify.Result {
	ctx := context.Background()
	ua, err := sip.NewUA(ctx, sip.Config{
		Listen: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), recUASIP).String(),
		Trunk:  sip.Trunk{Address: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), recPhoneSIP).String(), OptionsInterval: -1}, From: "hashcall",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	short := *set
	short.Ask = short.Ask[:8000]
	short.AskPressAt = 500 * time.Millisecond
	short.Success, short.Goodbye, short.WrongKey = short.Success[:800], short.Goodbye[:800], short.WrongKey[:800]
	v := &verify.Verifier{UA: ua, Config: verify.Config{
		AnswerTimeout: 2 * time.Second, Attempts: 1,
		Media: media.SessionConfig{IP: netip.MustParseAddr("127.0.0.1"), Ports: media.PortRange{Low: recUARTP, High: recUARTP + 99}, Codecs: codecs},
	}}
	return v.Run(ctx, verify.Request{To: "100", Prompts: &short})
}

// pressAfter is how long after the answer the softphones press #: after
// verify's early-key guard.
const pressAfter = 2 * time.Second

// recPhoneRTPs is the phones' RTP port range.
var recPhoneRTPs = fmt.Sprintf("%d-%d", recPhoneRTP, recPhoneRTP+99)

// startBaresip runs baresip auto-answering on recPhoneSIP; the function
// returned waits until the call is established and sends # over ctrl_tcp
// (baresip sends RFC 4733 only).
func startBaresip(t *testing.T, g interop) func(ctx context.Context) error {
	var codecs []string
	for _, c := range g.codecs {
		codecs = append(codecs, c.Name+"/8000/1")
	}
	b := testpeers.RunBaresip(t, testpeers.BaresipConfig{User: "100", SIPPort: recPhoneSIP, CtrlPort: 45555, RTPPorts: recPhoneRTPs, Codecs: codecs})
	mark := b.Mark()
	return func(ctx context.Context) error { return b.PressAfterAnswer(ctx, mark, pressAfter, '#') }
}

// startLinphone runs linphonec auto-answering on recPhoneSIP with the DTMF
// method of g; the function returned presses # on its stdin once the call
// is answered.
func startLinphone(t *testing.T, g interop) func(ctx context.Context) error {
	dtmf := map[string]string{"info": testpeers.DTMFInfo, "rfc4733": testpeers.DTMFRFC4733, "inband": testpeers.DTMFInband}[g.method]
	var codecs []string
	for _, c := range g.codecs {
		codecs = append(codecs, c.Name)
	}
	l := testpeers.RunLinphone(t, testpeers.LinphoneConfig{User: "100", SIPPort: recPhoneSIP, RTPPorts: recPhoneRTPs, DTMF: dtmf, Codecs: codecs})
	mark := l.Mark()
	return func(ctx context.Context) error { return l.PressAfterAnswer(ctx, mark, pressAfter, '#') }
}
