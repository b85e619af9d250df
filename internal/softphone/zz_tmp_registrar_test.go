package softphone_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/softphone"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

func TestTmpRegistrar(t *testing.T) {
	addr := os.Getenv("TMP_REGISTRAR")
	if addr == "" {
		t.Skip()
	}
	t.Run("baresip", func(t *testing.T) {
		b := softphone.RunBaresip(t, softphone.BaresipConfig{User: "2001", SIPPort: 27090, CtrlPort: 27095,
			Registrar: &softphone.Registrar{Address: addr, Domain: "127.0.0.1", Username: "baresip", Password: "bsecret"}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.WaitRegistered(ctx); err != nil {
			t.Fatal(err)
		}
		v := newVerifier(t, sip.Trunk{Address: addr, Username: "hashcall", Password: "hsecret"})
		pressed := pressWhenUp(t, func(ctx context.Context, mark int) error {
			if _, err := b.WaitEvent(ctx, mark, "CALL_ESTABLISHED"); err != nil {
				return err
			}
			time.Sleep(pressAfter)
			return b.Press(ctx, '#')
		}, b.Mark())
		run(t, v, "2001", verify.Verified, "rfc4733")
		if err := <-pressed; err != nil {
			t.Error(err)
		}
	})
	t.Run("linphone", func(t *testing.T) {
		l := softphone.RunLinphone(t, softphone.LinphoneConfig{User: "2002", SIPPort: 27190, DTMF: softphone.DTMFInfo,
			Registrar: &softphone.Registrar{Address: addr, Domain: "127.0.0.1", Username: "linphone", Password: "lsecret"}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.WaitRegistered(ctx); err != nil {
			t.Fatal(err)
		}
		v := newVerifier(t, sip.Trunk{Address: addr, Username: "hashcall", Password: "hsecret"})
		pressed := pressWhenUp(t, func(ctx context.Context, mark int) error {
			if err := l.WaitEstablished(ctx, mark); err != nil {
				return err
			}
			time.Sleep(pressAfter)
			return l.Press('#')
		}, l.Mark())
		run(t, v, "2002", verify.Verified, "sip_info")
		if err := <-pressed; err != nil {
			t.Error(err)
		}
	})
}
