-- hashcall's schema, version 1. One schema for SQLite and PostgreSQL: only
-- types and statements both understand (TEXT, BIGINT, INTEGER; times are
-- Unix milliseconds; JSON is stored as TEXT and decoded by the store).

-- Verifications: the request, status, result and the node that owns the
-- call with its lease (renewed while the call runs).
CREATE TABLE verifications (
    id           TEXT PRIMARY KEY,
    scope        TEXT NOT NULL,
    status       TEXT NOT NULL,
    final        INTEGER NOT NULL DEFAULT 0,
    request      TEXT NOT NULL,
    result       TEXT,
    node         TEXT NOT NULL,
    lease_until  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX verifications_open ON verifications (final, node, lease_until);
CREATE INDEX verifications_created ON verifications (created_at);

-- Idempotency keys, bound to the digest of the request that first used them.
CREATE TABLE idempotency (
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    digest          TEXT NOT NULL,
    verification_id TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_expires ON idempotency (expires_at);

-- Rate-limit windows: calls counted per window (kind, key) in one-second
-- buckets, so a check sums at most one row per second of the window
-- (and one per call for a sparse window such as one number's).
CREATE TABLE rate_events (
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    at   BIGINT NOT NULL,
    n    INTEGER NOT NULL,
    PRIMARY KEY (kind, key, at)
);

-- Callbacks waiting to be delivered: claimed by one node at a time.
CREATE TABLE callbacks (
    verification_id TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         BIGINT NOT NULL,
    deadline        BIGINT NOT NULL,
    claimed_by      TEXT,
    claimed_until   BIGINT,
    last_error      TEXT,
    done_at         BIGINT
);
CREATE INDEX callbacks_due ON callbacks (state, next_at);

-- Enrolled phone numbers: a user key to an E.164 number, confirmed by a
-- verification.
CREATE TABLE enrolments (
    user_key        TEXT PRIMARY KEY,
    e164            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    confirmed_at    BIGINT,
    verification_id TEXT
);

-- Answered dialogs: what a BYE needs if the node stops during the call.
CREATE TABLE dialogs (
    verification_id TEXT PRIMARY KEY,
    node            TEXT NOT NULL,
    state           TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- The audit log: append-only, each row holding the SHA-256 of the previous
-- one. audit_head is the chain's tip (locked to append) and its anchor: the
-- hash before the oldest row kept after a retention purge.
CREATE TABLE audit (
    seq             BIGINT PRIMARY KEY,
    at              BIGINT NOT NULL,
    event           TEXT NOT NULL,
    verification_id TEXT NOT NULL,
    scope           TEXT NOT NULL,
    number_masked   TEXT NOT NULL,
    number_hmac     TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    rule            TEXT NOT NULL,
    detail          TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_number ON audit (number_hmac);
CREATE TABLE audit_head (
    id          INTEGER PRIMARY KEY,
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    anchor_seq  BIGINT NOT NULL,
    anchor_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash, anchor_seq, anchor_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000',
        0, '0000000000000000000000000000000000000000000000000000000000000000');
