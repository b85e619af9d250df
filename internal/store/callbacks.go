package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// PendingCallback is a callback claimed for delivery.
type PendingCallback struct {
	VerificationID string
	URL            string
	Body           []byte
	Attempts       int // including this one
	Deadline       time.Time
}

// ClaimCallbacks claims up to limit callbacks that are due for this node
// for claimFor: no other node delivers them meanwhile (on PostgreSQL the
// rows are picked with FOR UPDATE SKIP LOCKED, so nodes claiming at once
// take different rows). A claim that lapses (the node died) is due again.
func (s *Store) ClaimCallbacks(ctx context.Context, limit int, claimFor time.Duration) ([]PendingCallback, error) {
	now := s.now()
	var out []PendingCallback
	err := s.tx(ctx, "claim_callbacks", func(tx *sql.Tx) error {
		ids, err := queryIDs(ctx, tx, s.q(`SELECT verification_id FROM callbacks
			WHERE state = 'pending' AND next_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)
			ORDER BY next_at LIMIT ?`+s.forUpdate(true)), ms(now), ms(now), limit)
		if err != nil {
			return fmt.Errorf("store: callbacks: %w", err)
		}
		for _, id := range ids {
			var c PendingCallback
			var body string
			var deadline int64
			if err := tx.QueryRowContext(ctx, s.q(`UPDATE callbacks SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1
				WHERE verification_id = ? RETURNING verification_id, url, body, attempts, deadline`),
				s.node, ms(now.Add(claimFor)), id).Scan(&c.VerificationID, &c.URL, &body, &c.Attempts, &deadline); err != nil {
				return fmt.Errorf("store: callbacks: %w", err)
			}
			c.Body, c.Deadline = []byte(body), fromMS(deadline)
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// CallbackDelivered marks a claimed callback delivered. It returns
// ErrNotFound when this node's claim was lost (it lapsed and another node
// took the row).
func (s *Store) CallbackDelivered(ctx context.Context, id string) error {
	return s.finishCallback(ctx, "callback_delivered", `UPDATE callbacks SET state = 'delivered', done_at = ?, claimed_until = NULL, last_error = NULL
		WHERE verification_id = ? AND claimed_by = ? AND state = 'pending'`, ms(s.now()), id, s.node)
}

// CallbackRetry releases a claimed callback after a failed attempt: due
// again at next, or given up (state failed) when giveUp.
func (s *Store) CallbackRetry(ctx context.Context, id string, next time.Time, lastErr string, giveUp bool) error {
	if giveUp {
		return s.finishCallback(ctx, "callback_failed", `UPDATE callbacks SET state = 'failed', done_at = ?, claimed_until = NULL, last_error = ?
			WHERE verification_id = ? AND claimed_by = ? AND state = 'pending'`, ms(s.now()), lastErr, id, s.node)
	}
	return s.finishCallback(ctx, "callback_retry", `UPDATE callbacks SET next_at = ?, claimed_until = NULL, last_error = ?
		WHERE verification_id = ? AND claimed_by = ? AND state = 'pending'`, ms(next), lastErr, id, s.node)
}

func (s *Store) finishCallback(ctx context.Context, op, query string, args ...any) error {
	start := time.Now()
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	if err == nil {
		if n, _ := res.RowsAffected(); n != 1 {
			err = ErrNotFound
		}
	} else {
		err = fmt.Errorf("store: %s: %w", op, err)
	}
	s.m.done(op, start, err)
	return err
}

// CallbackState returns a callback's state (pending, delivered, failed)
// and attempts so far.
func (s *Store) CallbackState(ctx context.Context, id string) (state string, attempts int, err error) {
	err = s.db.QueryRowContext(ctx, s.q(`SELECT state, attempts FROM callbacks WHERE verification_id = ?`), id).Scan(&state, &attempts)
	if err == sql.ErrNoRows {
		return "", 0, ErrNotFound
	}
	return state, attempts, err
}

// queryIDs runs query in tx and returns its rows' one text column, read
// to the end before tx is used again.
func queryIDs(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
