package interop

import (
	"slices"
	"testing"
	"time"

	"github.com/hashcall/hashcall/verify"
)

// TestDiversionThroughKamailio calls SIPp phones through Kamailio that show
// the call forwarded — a 181 first, a 183 with Diversion, a 200 with
// Diversion and History-Info — with verify.on_diversion refuse (the
// default: cancelled or hung up, outcome diverted) and flag.
func TestDiversionThroughKamailio(t *testing.T) {
	l := startLab(t)
	set := shortPrompts(t)
	tests := []struct {
		name     string
		scenario string
		policy   verify.DiversionPolicy
		want     verify.Outcome
		reasons  []string
		cancel   bool // refused while ringing: Kamailio relays our CANCEL
		code     int
	}{
		{name: "181_first_refused", scenario: "forwarded_181", want: verify.Diverted, reasons: []string{"forwarded"}, cancel: true},
		{name: "183_diversion_refused", scenario: "diverted_183", want: verify.Diverted, reasons: []string{"no-answer"}, cancel: true},
		{name: "200_diversion_refused", scenario: "diverted_200", want: verify.Diverted, reasons: []string{"unconditional"}, code: 200},
		{name: "200_diversion_refused_explicitly", scenario: "diverted_200", policy: verify.DiversionRefuse, want: verify.Diverted, reasons: []string{"unconditional"}, code: 200},
		{name: "200_diversion_flagged", scenario: "diverted_200", policy: verify.DiversionFlag, want: verify.NoKey, reasons: []string{"unconditional"}, code: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := l.startUAS(t, tc.scenario)
			v, _ := l.newVerifier(t, uaOptions{})
			v.Config.OnDiversion = tc.policy
			mark := len(l.kamLog())
			stages := &stageLog{}
			start := time.Now()
			res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: set, OnProgress: stages.record})
			elapsed := time.Since(start)
			logResult(t, res, stages)
			t.Logf("diverted %v, reasons %q", res.Diverted, res.DiversionReasons)
			if res.Outcome == verify.Verified {
				t.Fatal("VERIFIED a forwarded call")
			}
			if res.Outcome != tc.want {
				t.Errorf("outcome %s, want %s", res.Outcome, tc.want)
			}
			if !res.Diverted || !slices.Equal(res.DiversionReasons, tc.reasons) {
				t.Errorf("diverted %v, reasons %q, want true %q", res.Diverted, res.DiversionReasons, tc.reasons)
			}
			if tc.code != 0 && res.SIPCode != tc.code {
				t.Errorf("SIP code %d, want %d", res.SIPCode, tc.code)
			}
			kam := l.kamLog()[mark:]
			if tc.cancel {
				if countLines(kam, "interop: relaying CANCEL") != 1 {
					t.Error("Kamailio relayed no CANCEL")
				}
				if elapsed >= ringTimeout {
					t.Errorf("refused after %v, not before the ring timeout (%v)", elapsed, ringTimeout)
				}
			}
			if tc.want == verify.Diverted && stages.has(verify.StagePrompt) {
				t.Error("a refused call played the prompt")
			}
			if code := u.finish(t, 10*time.Second); code != 0 {
				t.Errorf("SIPp %s exited with status %d, want 0", tc.scenario, code)
			}
		})
	}
}
