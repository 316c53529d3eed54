-- The answers of POSTs made with an Idempotency-Key, replayed for 24 hours.
-- Distributed by account_id (the Citus rule): it leads the primary key.
CREATE TABLE api_idempotency (
    account_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER,
    content_type TEXT,
    location TEXT,
    body TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, idem_key)
);
CREATE INDEX api_idempotency_expiry ON api_idempotency (account_id, expires_at);
