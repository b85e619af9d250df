package interop

import (
	"context"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/verify"
)

// TestSoftphonesThroughKamailio: real softphones register at the lab's
// Kamailio with their own digest credentials (testdata/kamailio.cfg users
// baresip and linphone), and hashcall calls their numbers (the aliases 2001
// and 2002) through it; each phone answers and presses # its own way.
// The runners are internal/testpeers' (see its tests for direct calls).
func TestSoftphonesThroughKamailio(t *testing.T) {
	// As a callee: after verify.min_key_delay and the ask's press point.
	const pressDelay = 2 * time.Second
	l := startLab(t)
	tests := []struct {
		name   string
		number string
		source string
		start  func(t *testing.T) (press func(ctx context.Context) error)
	}{
		{"baresip_rfc4733", "2001", "rfc4733", func(t *testing.T) func(context.Context) error {
			b := testpeers.RunBaresip(t, testpeers.BaresipConfig{
				User:      "baresip",
				Registrar: &testpeers.Registrar{Address: l.kamAddr, Password: "baresip-pw"},
			})
			if err := b.WaitRegistered(ctxFor(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			mark := b.Mark()
			return func(ctx context.Context) error { return b.PressAfterAnswer(ctx, mark, pressDelay, '#') }
		}},
		{"linphone_sip_info", "2002", "sip_info", func(t *testing.T) func(context.Context) error {
			ph := testpeers.RunLinphone(t, testpeers.LinphoneConfig{
				User:      "linphone",
				DTMF:      testpeers.DTMFInfo,
				Registrar: &testpeers.Registrar{Address: l.kamAddr, Password: "linphone-pw"},
			})
			if err := ph.WaitRegistered(ctxFor(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			mark := ph.Mark()
			return func(ctx context.Context) error { return ph.PressAfterAnswer(ctx, mark, pressDelay, '#') }
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			press := tc.start(t)
			v, _ := l.newVerifier(t, uaOptions{})
			pressed := make(chan error, 1)
			pctx := ctxFor(t, 20*time.Second)
			go func() { pressed <- press(pctx) }()
			stages := &stageLog{}
			res := v.Run(ctxFor(t, callTimeout), verify.Request{To: tc.number, Prompts: shortPrompts(t), OnProgress: stages.record})
			logResult(t, res, stages)
			if err := <-pressed; err != nil {
				t.Errorf("pressing #: %v", err)
			}
			if res.Outcome != verify.Verified || res.DTMFSource != tc.source {
				t.Errorf("outcome %s by %q, want verified by %s", res.Outcome, res.DTMFSource, tc.source)
			} else {
				t.Logf("%s through Kamailio: set-up %.1f ms, #-to-decision %.1f ms", tc.name, res.SetupMS, res.HashToDecisionMS)
			}
		})
	}
}
