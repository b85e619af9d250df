package media

import (
	"sync"
	"testing"
)

// TestSessionDialogSDP: the dialog's SDP exchange (sip.Media) on a session:
// StartAnswer starts it from the answer, a bad answer changes nothing, and
// re-offers, CurrentSDP and SIP INFO from several goroutines at once are
// safe under the session's own lock (-race).
func TestSessionDialogSDP(t *testing.T) {
	ours, phone := listen(t, SessionConfig{}), listen(t, SessionConfig{})
	offer, err := ours.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if err := ours.StartAnswer([]byte("v=0\r\nnot sdp")); err == nil {
		t.Fatal("StartAnswer took garbage")
	}
	if n := ours.Negotiated(); n.Remote.IsValid() || ours.AnsweredAt() != 0 {
		t.Fatalf("a refused answer changed the session: %+v at %v", n, ours.AnsweredAt())
	}
	answer, pn, err := phone.Local().Answer(offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := phone.Start(pn); err != nil {
		t.Fatal(err)
	}
	before := ours.Now()
	if err := ours.StartAnswer(answer); err != nil {
		t.Fatal(err)
	}
	if n := ours.Negotiated(); n.Remote != phone.LocalAddr() || n.Codec.Name == "" {
		t.Errorf("negotiated %+v, want the phone at %v", n, phone.LocalAddr())
	}
	if at := ours.AnsweredAt(); at < before || at > ours.Now() {
		t.Errorf("answered at %v, not between %v and now", at, before)
	}
	if err := ours.StartAnswer(answer); err == nil {
		t.Error("a second StartAnswer was taken")
	}
	reoffer, err := phone.Local().Offer()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			if _, err := ours.AnswerOffer(reoffer); err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			if len(ours.CurrentSDP()) == 0 {
				t.Error("no current SDP")
			}
			ours.Info('5', 0)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("re-offer: %v", err)
	}
	if _, err := ours.AnswerOffer([]byte("garbage")); err == nil {
		t.Error("AnswerOffer took garbage")
	}
}
