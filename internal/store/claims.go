package store

import (
	"context"
	"fmt"
	"time"
)

// Claim records (kind, key) until expires and reports whether it was new:
// false means it was claimed before and has not expired (a replay). On
// any node: the row's primary key settles a race.
func (s *Store) Claim(ctx context.Context, kind, key string, expires time.Time) (bool, error) {
	start := time.Now()
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO claims (kind, key, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (kind, key) DO UPDATE SET expires_at = excluded.expires_at WHERE claims.expires_at <= ?`),
		kind, key, ms(expires), ms(s.now()))
	s.m.done("claim", start, err)
	if err != nil {
		return false, fmt.Errorf("store: claim: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Enrol records a user's number as confirmed by the verified call
// verificationID, replacing any earlier number, in one statement.
func (s *Store) Enrol(ctx context.Context, userKey, e164, verificationID string) error {
	start := time.Now()
	now := ms(s.now())
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO enrolments (user_key, e164, created_at, confirmed_at, verification_id) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_key) DO UPDATE SET e164 = excluded.e164, created_at = excluded.created_at,
		confirmed_at = excluded.confirmed_at, verification_id = excluded.verification_id`),
		userKey, e164, now, now, verificationID)
	s.m.done("enrol", start, err)
	if err != nil {
		return fmt.Errorf("store: enrol: %w", err)
	}
	return nil
}
