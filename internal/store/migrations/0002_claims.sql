-- Single-use request state: a key (such as an authorization request's
-- nonce and state) claimed once until it expires.
CREATE TABLE claims (
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX claims_expires ON claims (expires_at);
