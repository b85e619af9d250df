// Package store is hashcall's durable state, over database/sql with two back
// ends and one schema:
//
//   - SQLite (modernc.org/sqlite, pure Go) in one file: WAL journal,
//     synchronous=FULL, one writer. The default, for one node.
//   - PostgreSQL (github.com/jackc/pgx/v5/stdlib), for several nodes sharing
//     the state: rows are claimed with SELECT … FOR UPDATE SKIP LOCKED.
//
// It holds the verifications (request, status, result, owner node and its
// lease), idempotency keys bound to a request digest, the rate-limit
// windows, the durable callback queue, enrolled phone numbers, the answered
// dialogs a BYE (or CANCEL) needs after a crash, single-use claims, and
// the audit log: append-only, each
// row holding the SHA-256 of the previous one, the number masked and as a
// keyed HMAC of its E.164 form.
//
// The schema's migrations are embedded (migrations/NNNN_name.sql) and
// applied by Open; a database whose schema is newer than the binary is
// refused with ErrSchemaTooNew.
package store
