package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Enrolment is a user's enrolled phone number.
type Enrolment struct {
	UserKey        string // the door's user identity (e.g. a RADIUS user, an Entra object id)
	E164           string
	CreatedAt      time.Time
	ConfirmedAt    *time.Time // when a verification to the number succeeded
	VerificationID string     // that verification
}

// PutEnrolment records (or replaces) a user's number, unconfirmed.
func (s *Store) PutEnrolment(ctx context.Context, userKey, e164 string) error {
	start := time.Now()
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO enrolments (user_key, e164, created_at) VALUES (?, ?, ?)
		ON CONFLICT (user_key) DO UPDATE SET e164 = excluded.e164, created_at = excluded.created_at, confirmed_at = NULL, verification_id = NULL`),
		userKey, e164, ms(s.now()))
	if err != nil {
		err = fmt.Errorf("store: enrolment: %w", err)
	}
	s.m.done("enrol", start, err)
	return err
}

// ConfirmEnrolment marks a user's number confirmed by verification id.
func (s *Store) ConfirmEnrolment(ctx context.Context, userKey, verificationID string) error {
	start := time.Now()
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE enrolments SET confirmed_at = ?, verification_id = ? WHERE user_key = ?`),
		ms(s.now()), verificationID, userKey)
	if err == nil {
		if n, _ := res.RowsAffected(); n != 1 {
			err = ErrNotFound
		}
	} else {
		err = fmt.Errorf("store: enrolment: %w", err)
	}
	s.m.done("enrol_confirm", start, err)
	return err
}

// Enrolment returns a user's enrolment, or ErrNotFound.
func (s *Store) Enrolment(ctx context.Context, userKey string) (Enrolment, error) {
	var e Enrolment
	var created int64
	var confirmed sql.NullInt64
	var vid sql.NullString
	err := s.db.QueryRowContext(ctx, s.q(`SELECT user_key, e164, created_at, confirmed_at, verification_id FROM enrolments WHERE user_key = ?`), userKey).
		Scan(&e.UserKey, &e.E164, &created, &confirmed, &vid)
	if errors.Is(err, sql.ErrNoRows) {
		return Enrolment{}, ErrNotFound
	}
	if err != nil {
		return Enrolment{}, fmt.Errorf("store: enrolment: %w", err)
	}
	e.CreatedAt, e.ConfirmedAt, e.VerificationID = fromMS(created), nullMS(confirmed), vid.String
	return e, nil
}

// DeleteEnrolment forgets a user's number.
func (s *Store) DeleteEnrolment(ctx context.Context, userKey string) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM enrolments WHERE user_key = ?`), userKey)
	if err != nil {
		return fmt.Errorf("store: enrolment: %w", err)
	}
	return nil
}
