-- Distribution: event outbox. Every table is keyed by account_id first.
CREATE TABLE dist_outbox (account_id TEXT NOT NULL, event_id TEXT NOT NULL,
  name TEXT NOT NULL, payload TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
  attempts INTEGER NOT NULL, next_attempt_at DOUBLE PRECISION NOT NULL,
  lease_until DOUBLE PRECISION NOT NULL, delivered_at DOUBLE PRECISION,
  last_error TEXT NOT NULL, PRIMARY KEY (account_id, event_id));
CREATE INDEX dist_outbox_due ON dist_outbox (delivered_at, next_attempt_at);
