-- Developer webhooks: subscriptions, deliveries (one per event and subscription) and
-- the attempts of each delivery. Distributed by account_id (the Citus rule): it leads
-- every primary key.
CREATE TABLE webhook_subscriptions (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT NOT NULL,
    secret TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    disabled_reason TEXT NOT NULL,
    failing_since DOUBLE PRECISION,
    consecutive_failures INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE webhook_deliveries (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_status INTEGER,
    first_attempt_at DOUBLE PRECISION,
    next_attempt_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    replays INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX webhook_deliveries_log
    ON webhook_deliveries (account_id, subscription_id, created_at);
CREATE TABLE webhook_attempts (
    account_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    subscription_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    status INTEGER,
    latency_ms DOUBLE PRECISION NOT NULL,
    response TEXT NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (account_id, delivery_id, attempt)
);
