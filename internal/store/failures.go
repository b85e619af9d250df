package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Failures is a policy.FailureCounter in the store: failed codes per number
// over Window, shared by every node and kept across restarts. Rows older
// than the window are deleted as the number's failures are counted.
type Failures struct {
	S      *Store
	Window time.Duration
	// Timeout bounds each statement; default 5 s.
	Timeout time.Duration
}

func (f Failures) ctx() (context.Context, context.CancelFunc) {
	d := f.Timeout
	if d <= 0 {
		d = 5 * time.Second
	}
	return context.WithTimeout(context.Background(), d)
}

// AddFailure records a failed code for e164 now and returns how many the
// number has in the window, this one included.
func (f Failures) AddFailure(e164 string) (int, error) {
	ctx, cancel := f.ctx()
	defer cancel()
	s := f.S
	key := s.NumberHMAC(e164)
	now := s.now()
	var n int
	err := s.tx(ctx, "code_failure", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM code_failures WHERE number_hmac = ? AND at <= ?`), key, ms(now.Add(-f.Window))); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO code_failures (number_hmac, at) VALUES (?, ?)`), key, ms(now)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM code_failures WHERE number_hmac = ?`), key).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("store: record a failed code: %w", err)
	}
	return n, nil
}

// Failures returns the times of e164's failed codes in the window, oldest
// first.
func (f Failures) Failures(e164 string) ([]time.Time, error) {
	ctx, cancel := f.ctx()
	defer cancel()
	s := f.S
	start := time.Now()
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT at FROM code_failures WHERE number_hmac = ? AND at > ? ORDER BY at`),
		s.NumberHMAC(e164), ms(s.now().Add(-f.Window)))
	if err != nil {
		s.m.done("code_failures", start, err)
		return nil, fmt.Errorf("store: failed codes: %w", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			return nil, fmt.Errorf("store: failed codes: %w", err)
		}
		out = append(out, fromMS(at))
	}
	err = rows.Err()
	s.m.done("code_failures", start, err)
	if err != nil {
		return nil, fmt.Errorf("store: failed codes: %w", err)
	}
	return out, nil
}
