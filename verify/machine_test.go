package verify

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"

	"github.com/hashcall/hashcall/internal/phone"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/sip"
)

// TestVerifyMachinesAndForwarding runs calls to the simulated phone that
// answers as an answering machine (its greeting is speech: our own
// prompts, played back), that says hello and presses #, and whose 200
// carries a Diversion header, with both verify.on_diversion policies.
func TestVerifyMachinesAndForwarding(t *testing.T) {
	loopback(t)
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	greeting := slices.Concat(set.Ask, set.WrongKey, set.Goodbye) // several seconds of speech
	hello := set.Success[:min(len(set.Success), 6400)]            // 0.8 s of it
	diversion := sipgosip.NewHeader("Diversion", "<sip:+447700900123@192.0.2.1>;reason=unconditional;counter=1")
	tests := []struct {
		name      string
		ph        phone.Config
		policy    DiversionPolicy
		noVM      bool
		want      Outcome
		diverted  bool
		vmReason  string
		fasterThn time.Duration // the outcome must come sooner than this
	}{
		{name: "voicemail_greeting", ph: phone.Config{Method: phone.MethodNone, Greeting: greeting}, want: Voicemail, vmReason: "greeting", fasterThn: 5 * time.Second},
		{name: "voicemail_greeting_then_hash", ph: phone.Config{Method: phone.MethodInband, Key: '#', After: 4 * time.Second, Greeting: greeting}, want: Voicemail, vmReason: "greeting"},
		{name: "voicemail_detection_off", ph: phone.Config{Method: phone.MethodNone, Greeting: greeting}, noVM: true, want: NoKey},
		{name: "hello_then_hash", ph: phone.Config{Method: phone.MethodRFC4733, Key: '#', After: 1500 * time.Millisecond, Greeting: hello}, want: Verified},
		{name: "diverted_refused", ph: phone.Config{Method: phone.MethodRFC4733, Key: '#', After: 800 * time.Millisecond, AnswerHeaders: []sipgosip.Header{diversion}}, want: Diverted, diverted: true},
		{name: "diverted_flagged", ph: phone.Config{Method: phone.MethodRFC4733, Key: '#', After: 800 * time.Millisecond, AnswerHeaders: []sipgosip.Header{diversion}}, policy: DiversionFlag, want: Verified, diverted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := tc.ph
			cfg.Ports = media.PortRange{Low: 31000, High: 31999}
			ph, err := phone.Start(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer ph.Close()
			ua, err := sip.NewUA(ctx, sip.Config{Listen: "127.0.0.1:0", Trunk: sip.Trunk{Address: ph.Addr(), OptionsInterval: -1}, From: "hashcall"})
			if err != nil {
				t.Fatal(err)
			}
			defer ua.Close()
			v := &Verifier{UA: ua, Config: Config{
				AnswerTimeout: time.Second, Attempts: 3, OnDiversion: tc.policy, NoVoicemail: tc.noVM,
				// Keys count from 0.4 s after the answer and the cut ask
				// prompt's press point (0.2 s): the phones press after both.
				MinKeyDelay: 400 * time.Millisecond,
				Media:       media.SessionConfig{IP: netip.MustParseAddr("127.0.0.1"), Ports: media.PortRange{Low: 32000, High: 32999}},
			}}
			short := *set
			short.Ask = short.Ask[:8000]
			short.AskPressAt = 200 * time.Millisecond
			short.Success, short.Goodbye, short.WrongKey = short.Success[:1600], short.Goodbye[:1600], short.WrongKey[:1600]
			start := time.Now()
			res := v.Run(ctx, Request{To: "100", Prompts: &short})
			elapsed := time.Since(start)
			t.Logf("result %+v after %v", res, elapsed)
			if tc.want != Verified && res.Outcome == Verified {
				t.Fatal("VERIFIED")
			}
			if res.Outcome != tc.want || res.Diverted != tc.diverted || res.VoicemailReason != tc.vmReason {
				t.Errorf("outcome %s diverted %v voicemail %q, want %s %v %q", res.Outcome, res.Diverted, res.VoicemailReason, tc.want, tc.diverted, tc.vmReason)
			}
			if tc.diverted && !slices.Equal(res.DiversionReasons, []string{"unconditional"}) {
				t.Errorf("diversion reasons %q", res.DiversionReasons)
			}
			if tc.fasterThn > 0 && elapsed > tc.fasterThn {
				t.Errorf("took %v: the machine was not hung up on at once", elapsed)
			}
		})
	}
}
