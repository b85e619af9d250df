package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/replay"
	"github.com/hashcall/hashcall/verify"
)

// Golden captures for the replay package, recorded from calls of this lab:
// hashcall's sip.UA and verify.Verifier through Kamailio (407 challenge,
// Record-Route, one Call-ID on both legs) to a SIPp UAS. They are written
// into ../../replay/testdata, where replay's TestReplayGoldens checks them.

// goldenDir is replay's testdata folder, from this package's folder.
const goldenDir = "../../replay/testdata"

// labGolden is one capture to record.
type labGolden struct {
	file     string // under goldenDir
	scenario string
	iface    string // lo or any
	link     string // tshark -y, "" for the default
	pcap     bool   // tshark -F pcap (default pcapng)
	want     verify.Outcome
	source   string // DTMF source of the deciding key
	accepted string // replay.Report.Accepted
	ignored  int    // presses replay lists as not live
}

var labGoldens = []labGolden{
	{"kamailio-sipp-rfc4733-pcmu-lo.pcapng", "rfc4733_pound", "lo", "", false, verify.Verified, "rfc4733", "#", 0},
	{"kamailio-sipp-inband-pcma-any-sll.pcap", "inband_pound_pcma", "any", "LINUX_SLL", true, verify.Verified, "inband", "#", 0},
	{"kamailio-sipp-early-inband-pcmu-lo.pcapng", "early_media_pound", "lo", "", false, verify.NoKey, "", "", 1},
}

// TestRecordLabGoldens records golden captures of real calls through this
// lab with tshark, for replay/testdata. It runs only with
// HASHCALL_RECORD_GOLDEN=1, as root (SIPp's play_pcap_audio and tshark):
//
//	HASHCALL_RECORD_GOLDEN=1 go test ./internal/interop/ -run TestRecordLabGoldens -v
//
// A capture is kept only when its replay agrees with the live call: the
// outcome, the DTMF source of the deciding key and the keys heard.
func TestRecordLabGoldens(t *testing.T) {
	if os.Getenv("HASHCALL_RECORD_GOLDEN") != "1" {
		t.Skip("set HASHCALL_RECORD_GOLDEN=1 to record the lab's golden captures for replay (root, tshark)")
	}
	tshark := testpeers.Program(t, "tshark", "tshark")
	requireRoot(t)
	l := startLab(t)
	set := shortPrompts(t)
	for _, g := range labGoldens {
		t.Run(g.file, func(t *testing.T) {
			u := l.startUAS(t, g.scenario)
			low, high := rtpPorts(t)
			v, _ := l.newVerifier(t, uaOptions{rtpLow: low, rtpHigh: high})
			// Kamailio's port carries SIP on both legs; SIPp's media and
			// hashcall's RTP are in 26000–26999.
			filter := fmt.Sprintf("udp and (port %s or portrange %d-%d)", l.kamAddr[strings.LastIndexByte(l.kamAddr, ':')+1:], uasMediaBase, rtpPortBase+499)
			tmp := filepath.Join(t.TempDir(), g.file)
			capture := testpeers.StartCapture(t, testpeers.CaptureConfig{Binary: tshark, Out: tmp, Iface: g.iface, Link: g.link, PCAP: g.pcap, Filter: filter})
			stages := &stageLog{}
			res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: set, OnProgress: stages.record})
			logResult(t, res, stages)
			code := u.finish(t, 10*time.Second)
			capture.Stop(t)
			if code != 0 {
				t.Fatalf("SIPp %s exited with status %d", g.scenario, code)
			}
			if res.Outcome != g.want || res.DTMFSource != g.source {
				t.Fatalf("live call: %s by %q, want %s by %q", res.Outcome, res.DTMFSource, g.want, g.source)
			}

			rep, err := replay.File(tmp, replay.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(rep.Summary())
			// The replay must agree with the live call before anything is
			// kept.
			var source string
			ignored := 0
			for _, p := range rep.Presses() {
				if p.Accepted && source == "" {
					source = p.Source.String()
				}
				if !p.Live {
					ignored++
				}
			}
			if rep.Keys() != res.Keys || rep.Accepted() != g.accepted || source != res.DTMFSource ||
				(res.Outcome == verify.Verified) != rep.Verified() || ignored != g.ignored {
				t.Fatalf("replay disagrees with the live call: replay keys %q accepted %q by %q, %d ignored; live %s keys %q by %q",
					rep.Keys(), rep.Accepted(), source, ignored, res.Outcome, res.Keys, res.DTMFSource)
			}
			if len(rep.Calls) != 1 || len(rep.Warnings) > 0 {
				t.Fatalf("replay found %d calls, warnings %q", len(rep.Calls), rep.Warnings)
			}
			b, err := os.ReadFile(tmp)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > 200<<10 {
				t.Fatalf("capture is %d bytes; goldens stay under 200 KB", len(b))
			}
			exp := rep.Golden()
			exp.Method = "sipp " + g.scenario + " via kamailio"
			exp.Call = string(res.Outcome)
			js, _ := json.MarshalIndent(exp, "", "  ")
			out := filepath.Join(goldenDir, g.file)
			if err := os.WriteFile(out, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(strings.TrimSuffix(out, filepath.Ext(out))+".expected.json", append(js, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d bytes)", out, len(b))
		})
	}
}
