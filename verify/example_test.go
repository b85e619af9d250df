package verify_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

// busyTrunk is a verify.Dialer whose every call gets 486 Busy Here, as a
// *sip.UA's Dial reports it.
type busyTrunk struct{}

func (busyTrunk) Dial(ctx context.Context, number string, opts sip.DialOptions) (verify.Call, error) {
	return nil, &sip.DialError{Kind: sip.KindResponse, Code: 486, Reason: "Busy Here"}
}

// A Verifier places its calls through a Dialer: a *sip.UA (verify.UADialer,
// or the UA field) in the product, anything that behaves like one in a test.
func ExampleVerifier_dialer() {
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		fmt.Println(err)
		return
	}
	v := &verify.Verifier{Dialer: busyTrunk{}, Config: verify.Config{
		Media: media.SessionConfig{IP: netip.MustParseAddr("127.0.0.1"), Ports: media.PortRange{Low: 32000, High: 32999}},
	}}
	res := v.Run(context.Background(), verify.Request{To: "+447700900123", Prompts: set})
	fmt.Println(res.Outcome, res.SIPCode, res.SIPReason)
	// Output: busy 486 Busy Here
}
