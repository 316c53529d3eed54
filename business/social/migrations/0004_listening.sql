-- Listening and inbox (business/social/listening.py, inbox.py): streams polled from the
-- networks, the items they found, assignment rules and spike alerts. Keyed by account_id.

CREATE TABLE social_listen_queries (
    account_id TEXT NOT NULL,
    query_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    network TEXT NOT NULL,
    kind TEXT NOT NULL,
    term TEXT NOT NULL DEFAULT '',
    sensitivity DOUBLE PRECISION NOT NULL,
    min_count INTEGER NOT NULL,
    cooldown_s DOUBLE PRECISION NOT NULL,
    notify_email TEXT NOT NULL DEFAULT '',
    since TEXT NOT NULL DEFAULT '',
    polled_at DOUBLE PRECISION,
    last_error TEXT NOT NULL DEFAULT '',
    last_alert_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, query_id)
);

CREATE TABLE social_inbox_items (
    account_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    query_id TEXT NOT NULL,
    network TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    url TEXT NOT NULL,
    posted_at DOUBLE PRECISION NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    language TEXT NOT NULL,
    sentiment TEXT NOT NULL,
    score DOUBLE PRECISION,
    assignee TEXT NOT NULL DEFAULT '',
    rule_id TEXT NOT NULL DEFAULT '',
    first_response_at DOUBLE PRECISION,
    responder TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, item_id),
    UNIQUE (account_id, query_id, remote_id)
);
CREATE INDEX social_inbox_items_received ON social_inbox_items (account_id, received_at);

CREATE TABLE social_inbox_rules (
    account_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    kind TEXT NOT NULL,
    pattern TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    team TEXT NOT NULL,
    next_index INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, rule_id)
);

CREATE TABLE social_spike_alerts (
    account_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    query_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    last_hour INTEGER NOT NULL,
    baseline DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, alert_id)
);
