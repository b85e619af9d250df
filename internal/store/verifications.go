package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashcall/hashcall/verify"
)

// Verification is a stored verification.
type Verification struct {
	ID          string
	Scope       string // who created it: only they may read or cancel it
	Status      string
	Final       bool
	Request     Request
	Result      *verify.Result // once final
	Node        string
	LeaseUntil  time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt *time.Time
}

// Limit is a rate-limit window: at most N calls counted under (Kind, Key)
// in any Per.
type Limit struct {
	Kind string // e.g. number, global, token
	Key  string // e.g. the number's HMAC, "", the token's digest
	N    int
	Per  time.Duration
}

// LimitError is a window that is full.
type LimitError struct {
	Limit
	Count      int
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("store: %s limit: %d calls in the last %v (at most %d)", e.Kind, e.Count, e.Per, e.N)
}

// Create is what Create commits: the verification, its idempotency key and
// the limits it counts against.
type Create struct {
	ID      string
	Scope   string
	Status  string
	Request Request
	// IdemKey, when not empty, binds the key (within Scope) to Digest for
	// IdemTTL.
	IdemKey string
	Digest  string
	IdemTTL time.Duration
	Limits  []Limit
}

// Create commits a new verification owned by this node, in one
// transaction with its idempotency key and its count in every limit. When
// the key is already bound to the same digest it returns that verification
// and created false, changing nothing; bound to another digest, it returns
// ErrIdempotencyReused; when a limit is full, a *LimitError. It returns
// once the verification is committed (or refused); it waits for the commit
// even when ctx ends, so its answer is always the truth.
//
// Creates are group-committed: one writer per node takes every create
// waiting and commits them in one transaction, each in its own savepoint
// (a refusal rolls back only itself). On PostgreSQL the writers of all
// nodes take a transaction-scoped advisory lock, so concurrent creates on
// several nodes count each call once, never dial past a limit, and never
// deadlock on the windows.
func (s *Store) Create(ctx context.Context, c Create) (v Verification, created bool, err error) {
	req, err := json.Marshal(c.Request)
	if err != nil {
		return Verification{}, false, fmt.Errorf("store: create: %w", err)
	}
	r := &createReq{c: c, req: req, done: make(chan createRes, 1)}
	select {
	case s.creates <- r:
	case <-ctx.Done():
		return Verification{}, false, ctx.Err()
	case <-s.stop:
		return Verification{}, false, ErrClosed
	}
	res := <-r.done
	if res.err != nil {
		return Verification{}, false, res.err
	}
	if res.existing != "" {
		v, err := s.Get(ctx, res.existing)
		return v, false, err
	}
	return Verification{ID: c.ID, Scope: c.Scope, Status: c.Status, Request: c.Request, Node: s.node,
		LeaseUntil: fromMS(ms(res.now.Add(s.lease))), CreatedAt: fromMS(ms(res.now)), UpdatedAt: fromMS(ms(res.now))}, true, nil
}

// ErrClosed: the store was closed.
var ErrClosed = errors.New("store: closed")

type createReq struct {
	c    Create
	req  []byte
	done chan createRes
}

type createRes struct {
	existing string
	now      time.Time
	err      error
}

// createLock is the PostgreSQL advisory lock the create writers hold.
const createLock = 0x68617369

// maxBatch bounds one group commit.
const maxBatch = 128

// writer group-commits the creates until the store closes.
func (s *Store) writer() {
	defer close(s.writerDone)
	for {
		var batch []*createReq
		select {
		case r := <-s.creates:
			batch = append(batch, r)
		case <-s.stop:
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-s.creates:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.commitBatch(batch)
	}
}

func (s *Store) commitBatch(batch []*createReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := s.now()
	res := make([]createRes, len(batch))
	err := s.tx(ctx, "create", func(tx *sql.Tx) error {
		if s.driver == DriverPostgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", createLock); err != nil {
				return fmt.Errorf("store: create: lock: %w", err)
			}
		}
		for i, r := range batch {
			res[i].now = now
			if len(batch) == 1 {
				res[i].existing, res[i].err = s.createOne(ctx, tx, r, now)
				return res[i].err
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT c"); err != nil {
				return fmt.Errorf("store: create: %w", err)
			}
			res[i].existing, res[i].err = s.createOne(ctx, tx, r, now)
			sp := "RELEASE SAVEPOINT c"
			if res[i].err != nil {
				sp = "ROLLBACK TO SAVEPOINT c"
			}
			if _, err := tx.ExecContext(ctx, sp); err != nil {
				return fmt.Errorf("store: create: %w", err)
			}
		}
		return nil
	})
	for i, r := range batch {
		if err != nil && res[i].err == nil {
			res[i].err = err
		}
		r.done <- res[i]
	}
}

func (s *Store) createOne(ctx context.Context, tx *sql.Tx, r *createReq, now time.Time) (string, error) {
	c := r.c
	if c.IdemKey != "" {
		id, err := s.bindKey(ctx, tx, c, now)
		if err != nil || id != "" {
			return id, err
		}
	}
	limits := append([]Limit(nil), c.Limits...)
	sort.Slice(limits, func(i, j int) bool {
		if limits[i].Kind != limits[j].Kind {
			return limits[i].Kind < limits[j].Kind
		}
		return limits[i].Key < limits[j].Key
	})
	for _, l := range limits {
		if err := s.count(ctx, tx, l, now); err != nil {
			return "", err
		}
	}
	_, err := s.stmt(ctx, tx, qInsert).ExecContext(ctx,
		c.ID, c.Scope, c.Status, string(r.req), s.node, ms(now.Add(s.lease)), ms(now), ms(now))
	if err != nil {
		return "", fmt.Errorf("store: create: %w", err)
	}
	return "", nil
}

// bindKey binds c's idempotency key, or returns the verification it is
// already bound to. A concurrent insert of the same key on PostgreSQL waits
// for the first transaction and then sees its row.
func (s *Store) bindKey(ctx context.Context, tx *sql.Tx, c Create, now time.Time) (string, error) {
	res, err := s.stmt(ctx, tx, qBind).ExecContext(ctx,
		c.Scope, c.IdemKey, c.Digest, c.ID, ms(now.Add(c.IdemTTL)))
	if err != nil {
		return "", fmt.Errorf("store: idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return "", nil
	}
	var digest, id string
	var expires int64
	err = tx.QueryRowContext(ctx, s.q(`SELECT digest, verification_id, expires_at FROM idempotency WHERE scope = ? AND key = ?`+s.forUpdate(false)),
		c.Scope, c.IdemKey).Scan(&digest, &id, &expires)
	if err != nil {
		return "", fmt.Errorf("store: idempotency key: %w", err)
	}
	if expires <= ms(now) {
		// Expired: the key starts over with this request.
		_, err := tx.ExecContext(ctx, s.q(`UPDATE idempotency SET digest = ?, verification_id = ?, expires_at = ? WHERE scope = ? AND key = ?`),
			c.Digest, c.ID, ms(now.Add(c.IdemTTL)), c.Scope, c.IdemKey)
		if err != nil {
			return "", fmt.Errorf("store: idempotency key: %w", err)
		}
		return "", nil
	}
	if digest != c.Digest {
		return "", ErrIdempotencyReused
	}
	return id, nil
}

// count locks l's window, refuses when it is full, or counts one call.
func (s *Store) count(ctx context.Context, tx *sql.Tx, l Limit, now time.Time) error {
	if l.N <= 0 || l.Per <= 0 {
		return nil
	}
	// The create writers are serialised (one writer; on PostgreSQL an
	// advisory lock across nodes), so counting and adding cannot race.
	from := ms(now) - l.Per.Milliseconds()
	var n int
	var oldest int64
	if err := s.stmt(ctx, tx, qWindow).QueryRowContext(ctx, l.Kind, l.Key, from).Scan(&n, &oldest); err != nil {
		return fmt.Errorf("store: limit %s: %w", l.Kind, err)
	}
	if n >= l.N {
		retry := fromMS(oldest).Add(l.Per).Sub(now)
		return &LimitError{Limit: l, Count: n, RetryAfter: max(retry.Round(time.Second), time.Second)}
	}
	bucket := now.Truncate(time.Second)
	if _, err := s.stmt(ctx, tx, qCount).ExecContext(ctx, l.Kind, l.Key, ms(bucket)); err != nil {
		return fmt.Errorf("store: limit %s: %w", l.Kind, err)
	}
	if n == 0 {
		// The window is empty: forget its old buckets.
		if _, err := s.stmt(ctx, tx, qForget).ExecContext(ctx, l.Kind, l.Key, from); err != nil {
			return fmt.Errorf("store: limit %s: %w", l.Kind, err)
		}
	}
	return nil
}

// The create path's statements, prepared once at Open.
const (
	qWindow = `SELECT COALESCE(SUM(n), 0), COALESCE(MIN(at), 0) FROM rate_events WHERE kind = ? AND key = ? AND at > ?`
	qCount  = `INSERT INTO rate_events (kind, key, at, n) VALUES (?, ?, ?, 1) ON CONFLICT (kind, key, at) DO UPDATE SET n = rate_events.n + 1`
	qForget = `DELETE FROM rate_events WHERE kind = ? AND key = ? AND at <= ?`
	qBind   = `INSERT INTO idempotency (scope, key, digest, verification_id, expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING`
	qInsert = `INSERT INTO verifications (id, scope, status, final, request, node, lease_until, created_at, updated_at) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?)`
)

var prepared = []string{qWindow, qCount, qForget, qBind, qInsert}

// prepare prepares the create path's statements.
func (s *Store) prepare(ctx context.Context) error {
	s.stmts = map[string]*sql.Stmt{}
	for _, q := range prepared {
		st, err := s.db.PrepareContext(ctx, s.q(q))
		if err != nil {
			return fmt.Errorf("store: prepare: %w", err)
		}
		s.stmts[q] = st
	}
	return nil
}

// stmt returns the prepared statement q in tx.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	return tx.StmtContext(ctx, s.stmts[q])
}

// LookupKey returns the verification an unexpired idempotency key is bound
// to, ErrIdempotencyReused when bound to another digest, or ErrNotFound.
func (s *Store) LookupKey(ctx context.Context, scope, key, digest string) (Verification, error) {
	start := time.Now()
	var d, id string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT digest, verification_id FROM idempotency WHERE scope = ? AND key = ? AND expires_at > ?`),
		scope, key, ms(s.now())).Scan(&d, &id)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	s.m.done("lookup_key", start, err)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Verification{}, err
		}
		return Verification{}, fmt.Errorf("store: idempotency key: %w", err)
	}
	if d != digest {
		return Verification{}, ErrIdempotencyReused
	}
	return s.Get(ctx, id)
}

const verificationCols = `id, scope, status, final, request, result, node, lease_until, created_at, updated_at, completed_at`

type scanner interface{ Scan(...any) error }

func scanVerification(r scanner) (Verification, error) {
	var v Verification
	var final int
	var req string
	var res sql.NullString
	var lease, created, updated int64
	var completed sql.NullInt64
	if err := r.Scan(&v.ID, &v.Scope, &v.Status, &final, &req, &res, &v.Node, &lease, &created, &updated, &completed); err != nil {
		return Verification{}, err
	}
	v.Final = final != 0
	var err error
	if v.Request, err = DecodeRequest([]byte(req)); err != nil {
		return Verification{}, err
	}
	if res.Valid {
		r, err := DecodeResult([]byte(res.String))
		if err != nil {
			return Verification{}, err
		}
		v.Result = &r
	}
	v.LeaseUntil, v.CreatedAt, v.UpdatedAt, v.CompletedAt = fromMS(lease), fromMS(created), fromMS(updated), nullMS(completed)
	return v, nil
}

// Get returns the verification id.
func (s *Store) Get(ctx context.Context, id string) (Verification, error) {
	start := time.Now()
	v, err := scanVerification(s.db.QueryRowContext(ctx, s.q(`SELECT `+verificationCols+` FROM verifications WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	} else if err != nil {
		err = fmt.Errorf("store: get: %w", err)
	}
	s.m.done("get", start, err)
	return v, err
}

// SetStatus records a verification's progress (calling, ringing,
// answered); a final one is left alone.
func (s *Store) SetStatus(ctx context.Context, id, status string) error {
	start := time.Now()
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE verifications SET status = ?, updated_at = ? WHERE id = ? AND final = 0`), status, ms(s.now()), id)
	if err != nil {
		err = fmt.Errorf("store: status: %w", err)
	}
	s.m.done("status", start, err)
	return err
}

// Callback is a callback to queue with a final outcome.
type Callback struct {
	URL      string
	Body     []byte
	Deadline time.Time // give up after
}

// Complete is a final outcome to commit.
type Complete struct {
	ID       string
	Status   string
	Result   verify.Result
	Callback *Callback
	Audit    AuditEvent
}

// Complete commits a verification's final outcome with its callback and
// audit row, and forgets its dialog, in one transaction. It returns
// ErrFinal, changing nothing, when the verification is already final.
func (s *Store) Complete(ctx context.Context, c Complete) error {
	res, err := json.Marshal(c.Result)
	if err != nil {
		return fmt.Errorf("store: complete: %w", err)
	}
	now := s.now()
	err = s.tx(ctx, "complete", func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, s.q(`UPDATE verifications SET status = ?, final = 1, result = ?, updated_at = ?, completed_at = ?
			WHERE id = ? AND final = 0`), c.Status, string(res), ms(now), ms(now), c.ID)
		if err != nil {
			return fmt.Errorf("store: complete: %w", err)
		}
		if n, _ := r.RowsAffected(); n != 1 {
			if _, err := s.getTx(ctx, tx, c.ID); err != nil {
				return err
			}
			return ErrFinal
		}
		if c.Callback != nil {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO callbacks (verification_id, url, body, state, attempts, next_at, deadline)
				VALUES (?, ?, ?, 'pending', 0, ?, ?)`), c.ID, c.Callback.URL, string(c.Callback.Body), ms(now), ms(c.Callback.Deadline)); err != nil {
				return fmt.Errorf("store: complete: callback: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM dialogs WHERE verification_id = ?`), c.ID); err != nil {
			return fmt.Errorf("store: complete: dialog: %w", err)
		}
		if s.driver == DriverPostgres {
			// Delivered to the listening nodes when the transaction commits.
			if _, err := tx.ExecContext(ctx, "SELECT pg_notify($1, $2)", finalChannel, c.ID); err != nil {
				return fmt.Errorf("store: complete: notify: %w", err)
			}
		}
		c.Audit.VerificationID = c.ID
		return s.appendAudit(ctx, tx, c.Audit, now)
	})
	if err == nil {
		s.watch.notify(c.ID)
	}
	return err
}

func (s *Store) getTx(ctx context.Context, tx *sql.Tx, id string) (Verification, error) {
	v, err := scanVerification(tx.QueryRowContext(ctx, s.q(`SELECT `+verificationCols+` FROM verifications WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, ErrNotFound
	}
	return v, err
}

// RenewLeases extends this node's lease on ids, its verifications whose
// calls are running. Only those: one this node took over but could not
// complete lets its lease lapse, so it is taken over again.
func (s *Store) RenewLeases(ctx context.Context, ids []string) (err error) {
	start := time.Now()
	defer func() { s.m.done("renew", start, err) }()
	until := ms(s.now().Add(s.lease))
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := []any{until, s.node}
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		q := `UPDATE verifications SET lease_until = ? WHERE final = 0 AND node = ? AND id IN (?` + strings.Repeat(", ?", n-1) + `)`
		if _, err := s.db.ExecContext(ctx, s.q(q), args...); err != nil {
			return fmt.Errorf("store: renew leases: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

// Orphan is a verification left without a live owner, and the dialog to
// end if its call was answered.
type Orphan struct {
	Verification
	Dialog *Dialog
}

// ClaimOrphans takes over the verifications that are not final and whose
// owner is gone: with own, every one this node owns (at start: nothing of
// them survives in memory); and every one whose lease has expired. They
// become this node's with a fresh lease, so no other node takes them too;
// the caller then completes each (outcome interrupted).
func (s *Store) ClaimOrphans(ctx context.Context, own bool) ([]Orphan, error) {
	now := s.now()
	var out []Orphan
	err := s.tx(ctx, "claim_orphans", func(tx *sql.Tx) error {
		self := ""
		if own {
			self = s.node
		}
		ids, err := queryIDs(ctx, tx, s.q(`SELECT id FROM verifications WHERE final = 0 AND (node = ? OR lease_until < ?)`+s.forUpdate(true)), self, ms(now))
		if err != nil {
			return fmt.Errorf("store: orphans: %w", err)
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE verifications SET node = ?, lease_until = ? WHERE id = ?`), s.node, ms(now.Add(s.lease)), id); err != nil {
				return fmt.Errorf("store: orphans: %w", err)
			}
			v, err := s.getTx(ctx, tx, id)
			if err != nil {
				return fmt.Errorf("store: orphans: %w", err)
			}
			o := Orphan{Verification: v}
			var state string
			switch err := tx.QueryRowContext(ctx, s.q(`SELECT state FROM dialogs WHERE verification_id = ?`), id).Scan(&state); {
			case err == nil:
				d, err := DecodeDialog([]byte(state))
				if err != nil {
					s.log.Warn("stored dialog unreadable: no BYE", "id", id, "err", err)
				} else {
					o.Dialog = &d
				}
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("store: orphans: dialog: %w", err)
			}
			out = append(out, o)
		}
		return nil
	})
	return out, err
}

// SaveDialog stores an answered call's dialog, so a BYE can be sent if
// this node stops during the call.
func (s *Store) SaveDialog(ctx context.Context, id string, d Dialog) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("store: dialog: %w", err)
	}
	start := time.Now()
	// Only while the verification is open: a late write must not outlive
	// the outcome (which deletes the dialog).
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO dialogs (verification_id, node, state, created_at)
		SELECT id, ?, ?, ? FROM verifications WHERE id = ? AND final = 0
		ON CONFLICT (verification_id) DO UPDATE SET state = excluded.state, node = excluded.node`), s.node, string(b), ms(s.now()), id)
	if err != nil {
		err = fmt.Errorf("store: dialog: %w", err)
	}
	s.m.done("dialog", start, err)
	return err
}

// Final reports whether the verification id is final, for a node polling
// for a verification another node runs.
func (s *Store) Final(ctx context.Context, id string) (bool, error) {
	var final int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT final FROM verifications WHERE id = ?`), id).Scan(&final)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("store: final: %w", err)
	}
	return final != 0, nil
}
