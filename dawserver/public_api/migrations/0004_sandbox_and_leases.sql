-- Test mode: the objects test-mode API keys made (a per-account sandbox). A test-mode
-- key reaches only these; a live key never does. account_id is the account that owns
-- the object (the Citus rule: it leads the primary key).
CREATE TABLE api_sandbox (
    account_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, object_id)
);
CREATE INDEX api_sandbox_object ON api_sandbox (object_id);
-- An Idempotency-Key's claim is a lease: a claim whose request died (a crash between
-- claim and answer) may be taken over once claimed_until has passed.
ALTER TABLE api_idempotency ADD COLUMN claimed_until DOUBLE PRECISION;
CREATE INDEX api_idempotency_expires ON api_idempotency (expires_at);
-- The delivery log's purge reads deliveries by age.
CREATE INDEX webhook_deliveries_age ON webhook_deliveries (created_at);
