package sip

import (
	"context"
	"errors"
	"testing"
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
	waitFor(t, "ACK", func() bool { return ft.acks.Load() == 1 })
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
