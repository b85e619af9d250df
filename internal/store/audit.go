package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Audit events.
const (
	EventOutcome = "outcome" // a verification's final outcome
	EventRefusal = "refusal" // a request refused by policy or a limit
)

// AuditEvent is an audit row to append.
type AuditEvent struct {
	Event          string // EventOutcome or EventRefusal
	VerificationID string // empty for a refusal
	Scope          string
	E164           string // hashed with the audit key; never stored
	NumberHMAC     string // used when E164 is empty (NumberHMAC of it)
	Masked         string
	Outcome        string
	Rule           string
	Detail         map[string]any // more facts (SIP code, times, …)
}

// AuditRecord is a stored audit row.
type AuditRecord struct {
	Seq            int64          `json:"seq"`
	At             time.Time      `json:"at"`
	Event          string         `json:"event"`
	VerificationID string         `json:"verification_id,omitempty"`
	Scope          string         `json:"scope,omitempty"`
	Masked         string         `json:"to"`
	NumberHMAC     string         `json:"to_hmac"`
	Outcome        string         `json:"outcome,omitempty"`
	Rule           string         `json:"rule,omitempty"`
	Detail         map[string]any `json:"detail,omitempty"`
	DetailJSON     string         `json:"-"`
	PrevHash       string         `json:"prev_hash"`
	Hash           string         `json:"hash"`
}

// NumberHMAC is the keyed HMAC-SHA256 of an E.164 number, in hex, as the
// audit log holds it: an auditor with the key finds a number's rows
// without the log holding the number.
func (s *Store) NumberHMAC(e164 string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(e164))
	return hex.EncodeToString(m.Sum(nil))
}

// rowHash is the SHA-256 of the previous row's hash and this row's fields,
// each length-prefixed so no two rows encode alike.
func rowHash(r AuditRecord) string {
	h := sha256.New()
	for _, f := range []string{r.PrevHash, strconv.FormatInt(r.Seq, 10), strconv.FormatInt(r.At.UnixMilli(), 10), r.Event,
		r.VerificationID, r.Scope, r.Masked, r.NumberHMAC, r.Outcome, r.Rule, r.DetailJSON} {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Audit appends one audit row (a refusal; outcomes are appended by
// Complete in the same transaction).
func (s *Store) Audit(ctx context.Context, e AuditEvent) error {
	now := s.now()
	return s.tx(ctx, "audit", func(tx *sql.Tx) error { return s.appendAudit(ctx, tx, e, now) })
}

func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, e AuditEvent, now time.Time) error {
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("store: audit: %w", err)
		}
	}
	var r AuditRecord
	// The head row serialises appends: one chain, whatever the node.
	if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+s.forUpdate(false)).Scan(&r.Seq, &r.PrevHash); err != nil {
		return fmt.Errorf("store: audit: head: %w", err)
	}
	r.Seq++
	r.At = fromMS(ms(now))
	r.Event, r.VerificationID, r.Scope, r.Masked, r.Outcome, r.Rule = e.Event, e.VerificationID, e.Scope, e.Masked, e.Outcome, e.Rule
	r.NumberHMAC = e.NumberHMAC
	if e.E164 != "" {
		r.NumberHMAC = s.NumberHMAC(e.E164)
	}
	r.DetailJSON = string(detail)
	r.Hash = rowHash(r)
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO audit (seq, at, event, verification_id, scope, number_masked, number_hmac, outcome, rule, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), r.Seq, ms(r.At), r.Event, r.VerificationID, r.Scope, r.Masked, r.NumberHMAC,
		r.Outcome, r.Rule, r.DetailJSON, r.PrevHash, r.Hash); err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`), r.Seq, r.Hash); err != nil {
		return fmt.Errorf("store: audit: head: %w", err)
	}
	return nil
}

// BrokenError is the first audit row that breaks the chain.
type BrokenError struct {
	Seq    int64
	Reason string
	Row    *AuditRecord // nil when the row is missing
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit log broken at row %d: %s", e.Seq, e.Reason)
}

// ErrAuditBroken is wrapped by the errors VerifyAudit returns for a broken
// chain (as a *BrokenError).
var ErrAuditBroken = errors.New("audit log broken")

func (e *BrokenError) Unwrap() error { return ErrAuditBroken }

const auditCols = `seq, at, event, verification_id, scope, number_masked, number_hmac, outcome, rule, detail, prev_hash, hash`

func scanAudit(r scanner) (AuditRecord, error) {
	var a AuditRecord
	var at int64
	if err := r.Scan(&a.Seq, &at, &a.Event, &a.VerificationID, &a.Scope, &a.Masked, &a.NumberHMAC, &a.Outcome, &a.Rule, &a.DetailJSON, &a.PrevHash, &a.Hash); err != nil {
		return AuditRecord{}, err
	}
	a.At = fromMS(at)
	return a, nil
}

// VerifyAudit checks the audit chain from its anchor (the hash before the
// oldest row kept) to its head: consecutive rows, each hash recomputed and
// each row holding its predecessor's. It returns the rows checked, and a
// *BrokenError for the first row that breaks the chain.
func (s *Store) VerifyAudit(ctx context.Context) (int, error) {
	var headSeq, anchorSeq int64
	var headHash, anchorHash string
	if err := s.db.QueryRowContext(ctx, `SELECT seq, hash, anchor_seq, anchor_hash FROM audit_head WHERE id = 1`).Scan(&headSeq, &headHash, &anchorSeq, &anchorHash); err != nil {
		return 0, fmt.Errorf("store: audit head: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditCols+` FROM audit ORDER BY seq`)
	if err != nil {
		return 0, fmt.Errorf("store: audit: %w", err)
	}
	defer rows.Close()
	prevSeq, prevHash := anchorSeq, anchorHash
	n := 0
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return n, fmt.Errorf("store: audit: %w", err)
		}
		switch {
		case r.Seq != prevSeq+1:
			return n, &BrokenError{Seq: prevSeq + 1, Reason: fmt.Sprintf("row missing (next row is %d)", r.Seq)}
		case r.PrevHash != prevHash:
			return n, &BrokenError{Seq: r.Seq, Reason: "prev_hash is not the previous row's hash", Row: &r}
		case rowHash(r) != r.Hash:
			return n, &BrokenError{Seq: r.Seq, Reason: "the row was changed: its hash does not match its content", Row: &r}
		}
		prevSeq, prevHash = r.Seq, r.Hash
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("store: audit: %w", err)
	}
	if prevSeq != headSeq || prevHash != headHash {
		return n, &BrokenError{Seq: prevSeq + 1, Reason: fmt.Sprintf("rows %d to %d are missing (the head is at %d)", prevSeq+1, headSeq, headSeq)}
	}
	return n, nil
}

// ExportAudit calls fn for every audit row at or after since, in order.
func (s *Store) ExportAudit(ctx context.Context, since time.Time, fn func(AuditRecord) error) error {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+auditCols+` FROM audit WHERE at >= ? ORDER BY seq`), ms(since))
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return fmt.Errorf("store: audit: %w", err)
		}
		if r.Detail, err = DecodeAuditDetail([]byte(r.DetailJSON)); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}
