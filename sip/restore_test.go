package sip

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestByeFromState: a call placed by one UA is ended by another (the
// process after a restart) from the state the first stored.
func TestByeFromState(t *testing.T) {
	ft := newFakeTrunk(t)
	first := newTestUA(t, ft, nil)
	call, err := first.Dial(context.Background(), "+447700900123", DialOptions{Offer: []byte(testSDP)})
	if err != nil {
		t.Fatal(err)
	}
	ft.await(t, "ACK", func() bool { return ft.acks.Load() == 1 })
	st := call.State()
	if st.CallID != call.CallID() || st.LocalTag == "" || st.RemoteTag == "" || st.RemoteTarget == "" || st.CSeq == 0 || st.Transport == "" {
		t.Fatalf("state %+v", st)
	}
	second := newTestUA(t, ft, nil)
	cases := []struct {
		name  string
		state DialogState
		want  error
		byes  int32
	}{
		{"incomplete state", DialogState{CallID: st.CallID}, ErrBadDialogState, 0},
		{"the stored dialog", st, nil, 1},
		{"again: the far end answers 481, which counts as ended", st, nil, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := second.ByeFromState(context.Background(), tc.state)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got := ft.byes.Load(); got != tc.byes {
				t.Errorf("%d BYEs reached the trunk, want %d", got, tc.byes)
			}
		})
	}
}

// TestCancelFromState: a ringing call placed by one UA is cancelled by
// another (the process after a restart) from the state the first reported.
func TestCancelFromState(t *testing.T) {
	ft := newFakeTrunk(t)
	first := newTestUA(t, ft, func(c *Config) { c.RingTimeout = 10 * time.Second })
	ringing := make(chan CancelState, 4)
	dialled := make(chan error, 1)
	go func() {
		_, err := first.Dial(context.Background(), "1000", DialOptions{Offer: []byte(testSDP), OnProgress: func(p Progress) {
			if p.Cancel != nil {
				ringing <- *p.Cancel
			}
		}})
		dialled <- err
	}()
	var st CancelState
	select {
	case st = <-ringing:
	case <-time.After(5 * time.Second):
		t.Fatal("no ringing")
	}
	if st.CallID == "" || st.Via == "" || st.RequestURI == "" || st.CSeq == 0 {
		t.Fatalf("state %+v", st)
	}
	second := newTestUA(t, ft, nil)
	if err := second.CancelFromState(context.Background(), CancelState{CallID: "x"}); !errors.Is(err, ErrBadDialogState) {
		t.Errorf("incomplete state: %v", err)
	}
	if err := second.CancelFromState(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	// sipgo answers the CANCEL before it runs the trunk's OnCancel.
	ft.await(t, "the CANCEL at the trunk", func() bool { return ft.cancels.Load() == 1 })
	select {
	case err := <-dialled:
		var de *DialError
		if !errors.As(err, &de) || de.Code != 487 {
			t.Errorf("the first UA's Dial: %v, want a 487", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the INVITE was not ended by the CANCEL")
	}
}
