package eam

import (
	"context"
	"errors"
	"time"

	"github.com/hashcall/hashcall/internal/store"
)

// StoreBacked is Enrolments and Claims in hashcall's durable store, so
// enrolled numbers and used (nonce, state) pairs survive a restart and hold
// across nodes. Enrolments are keyed "eam:TID/OID".
type StoreBacked struct{ Store *store.Store }

func enrolKey(tid, oid string) string { return "eam:" + tid + "/" + oid }

// Enrolled implements Enrolments: only a number a verified call confirmed.
func (s StoreBacked) Enrolled(ctx context.Context, tid, oid string) (string, error) {
	e, err := s.Store.Enrolment(ctx, enrolKey(tid, oid))
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && e.ConfirmedAt == nil):
		return "", ErrNotEnrolled
	case err != nil:
		return "", err
	}
	return e.E164, nil
}

// Enrol implements Enrolments.
func (s StoreBacked) Enrol(ctx context.Context, tid, oid, e164, verificationID string) error {
	return s.Store.Enrol(ctx, enrolKey(tid, oid), e164, verificationID)
}

// Claim implements Claims.
func (s StoreBacked) Claim(ctx context.Context, nonce, state string, expires time.Time) (bool, error) {
	return s.Store.Claim(ctx, "eam", nonce+"\x00"+state, expires)
}
