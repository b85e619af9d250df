package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Retention says how long rows are kept.
type Retention struct {
	// Verifications: final verifications, their callbacks and expired
	// idempotency keys (store.retention, default 30 days).
	Verifications time.Duration
	// Audit: audit rows (audit.retention, default 400 days).
	Audit time.Duration
	// RateWindow: the longest rate-limit window; older counts go.
	RateWindow time.Duration
}

// Purged counts what Purge removed.
type Purged struct {
	Verifications, Audit int64
}

// Purge deletes what is older than the retention. Purging the audit log
// moves the chain's anchor to the last row deleted, so VerifyAudit still
// checks every row kept.
func (s *Store) Purge(ctx context.Context, r Retention) (Purged, error) {
	now := s.now()
	var p Purged
	err := s.tx(ctx, "purge", func(tx *sql.Tx) error {
		if r.Verifications > 0 {
			cut := ms(now.Add(-r.Verifications))
			res, err := tx.ExecContext(ctx, s.q(`DELETE FROM verifications WHERE final = 1 AND completed_at < ?`), cut)
			if err != nil {
				return fmt.Errorf("store: purge: %w", err)
			}
			p.Verifications, _ = res.RowsAffected()
			for _, q := range []string{
				`DELETE FROM callbacks WHERE state <> 'pending' AND done_at < ?`,
				`DELETE FROM dialogs WHERE created_at < ? AND verification_id NOT IN (SELECT id FROM verifications WHERE final = 0)`,
			} {
				if _, err := tx.ExecContext(ctx, s.q(q), cut); err != nil {
					return fmt.Errorf("store: purge: %w", err)
				}
			}
		}
		for _, q := range []string{`DELETE FROM idempotency WHERE expires_at <= ?`, `DELETE FROM claims WHERE expires_at <= ?`} {
			if _, err := tx.ExecContext(ctx, s.q(q), ms(now)); err != nil {
				return fmt.Errorf("store: purge: %w", err)
			}
		}
		if r.RateWindow > 0 {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM rate_events WHERE at <= ?`), ms(now.Add(-r.RateWindow))); err != nil {
				return fmt.Errorf("store: purge: %w", err)
			}
		}
		if r.Audit > 0 {
			var seq int64
			var hash string
			err := tx.QueryRowContext(ctx, s.q(`SELECT seq, hash FROM audit WHERE at < ? ORDER BY seq DESC LIMIT 1`), ms(now.Add(-r.Audit))).Scan(&seq, &hash)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return fmt.Errorf("store: purge audit: %w", err)
			default:
				var head int64
				if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = 1`+s.forUpdate(false)).Scan(&head); err != nil {
					return fmt.Errorf("store: purge audit: %w", err)
				}
				res, err := tx.ExecContext(ctx, s.q(`DELETE FROM audit WHERE seq <= ?`), seq)
				if err != nil {
					return fmt.Errorf("store: purge audit: %w", err)
				}
				p.Audit, _ = res.RowsAffected()
				if _, err := tx.ExecContext(ctx, s.q(`UPDATE audit_head SET anchor_seq = ?, anchor_hash = ? WHERE id = 1`), seq, hash); err != nil {
					return fmt.Errorf("store: purge audit: %w", err)
				}
			}
		}
		return nil
	})
	return p, err
}
