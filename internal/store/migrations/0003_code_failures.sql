-- Failed codes of mode code, per number (keyed by the number's HMAC, as the
-- audit log is), counted over a sliding window across calls, requests and
-- codes (NIST SP 800-63B rev 4: a new code does not reset the count).
CREATE TABLE code_failures (
    number_hmac TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX code_failures_number ON code_failures (number_hmac, at);
