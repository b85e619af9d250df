package eam

import (
	"context"
	"errors"
	"sync"
	"time"
)

// The durable store (internal/store) is to implement these two interfaces;
// until it is wired in, MemoryStore holds both in memory (lost on restart:
// enrolments recorded by a verified call are then looked up again in the
// directory, and a (nonce, state) could be replayed across a restart within
// eam.hint_max_age).

// ErrNotEnrolled is returned by Enrolments.Enrolled for a user with no
// enrolled number.
var ErrNotEnrolled = errors.New("eam: not enrolled")

// Enrolments holds each user's phone number, by (tenant id, object id).
type Enrolments interface {
	// Enrolled returns the E.164 number enrolled for (tid, oid), or
	// ErrNotEnrolled.
	Enrolled(ctx context.Context, tid, oid string) (string, error)
	// Enrol records e164 for (tid, oid), confirmed by the verified call
	// verificationID, replacing any earlier number.
	Enrol(ctx context.Context, tid, oid, e164, verificationID string) error
}

// Claims makes each (nonce, state) of an authorization request usable once.
type Claims interface {
	// Claim records (nonce, state) until expires and reports whether it
	// was new: false means it was seen before (a replay).
	Claim(ctx context.Context, nonce, state string, expires time.Time) (bool, error)
}

// MemoryStore is Enrolments and Claims in memory.
type MemoryStore struct {
	mu         sync.Mutex
	enrolments map[[2]string]string
	claims     map[[2]string]time.Time
	now        func() time.Time
}

// NewMemoryStore returns an empty store; now is its clock (nil: time.Now).
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{enrolments: map[[2]string]string{}, claims: map[[2]string]time.Time{}, now: now}
}

// Enrolled implements Enrolments.
func (m *MemoryStore) Enrolled(_ context.Context, tid, oid string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.enrolments[[2]string{tid, oid}]; ok {
		return n, nil
	}
	return "", ErrNotEnrolled
}

// Enrol implements Enrolments.
func (m *MemoryStore) Enrol(_ context.Context, tid, oid, e164, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enrolments[[2]string{tid, oid}] = e164
	return nil
}

// Claim implements Claims; expired claims are dropped as it goes.
func (m *MemoryStore) Claim(_ context.Context, nonce, state string, expires time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for k, exp := range m.claims {
		if now.After(exp) {
			delete(m.claims, k)
		}
	}
	k := [2]string{nonce, state}
	if _, seen := m.claims[k]; seen {
		return false, nil
	}
	m.claims[k] = expires
	return true, nil
}
