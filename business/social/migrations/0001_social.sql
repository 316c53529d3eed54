-- The social module's tables, each keyed by account_id first (the Citus rule).

-- A connected account on one network; tokens sealed (business/social/tokens.py).
-- token_generation grows with every token change: writes compare-and-set on it, and
-- refresh_lease serialises refreshes of one channel across processes.
CREATE TABLE social_channels (
    account_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    network TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    handle TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'active',
    access_token TEXT NOT NULL DEFAULT '',
    refresh_token TEXT NOT NULL DEFAULT '',
    expires_at DOUBLE PRECISION,
    scope TEXT NOT NULL DEFAULT '',
    token_generation BIGINT NOT NULL DEFAULT 0,
    token_issued_at DOUBLE PRECISION NOT NULL,
    refresh_issued_at DOUBLE PRECISION,
    refresh_lease TEXT NOT NULL DEFAULT '',
    refresh_lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    connected_by TEXT NOT NULL DEFAULT '',
    approval_tiers TEXT NOT NULL DEFAULT '[]',
    queue_slots TEXT NOT NULL DEFAULT '[]',
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, channel_id),
    UNIQUE (account_id, network, remote_id)
);
CREATE INDEX social_channels_expiry ON social_channels (state, expires_at);

-- An OAuth connect in progress: the state's SHA-256, the PKCE verifier (sealed).
CREATE TABLE social_connects (
    account_id TEXT NOT NULL,
    state_hash TEXT NOT NULL,
    network TEXT NOT NULL,
    person_id TEXT NOT NULL DEFAULT '',
    channel_id TEXT NOT NULL DEFAULT '',
    code_verifier TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, state_hash)
);
CREATE INDEX social_connects_state ON social_connects (state_hash);

CREATE TABLE social_posts (
    account_id TEXT NOT NULL,
    post_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    media TEXT NOT NULL DEFAULT '[]',
    link TEXT,
    first_comment TEXT,
    campaign TEXT NOT NULL DEFAULT '',
    publish_at DOUBLE PRECISION,
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    state TEXT NOT NULL DEFAULT 'draft',
    version BIGINT NOT NULL DEFAULT 1,
    submitted_at DOUBLE PRECISION,
    deleted INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, post_id)
);
CREATE INDEX social_posts_time ON social_posts (account_id, publish_at);
CREATE INDEX social_posts_state ON social_posts (state, publish_at);

-- One channel of a post: its variant (NULL: the post's own field) and its progress.
CREATE TABLE social_post_targets (
    account_id TEXT NOT NULL,
    post_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    text TEXT,
    media TEXT,
    link TEXT,
    first_comment TEXT,
    state TEXT NOT NULL DEFAULT 'draft',
    approval_tier INTEGER NOT NULL DEFAULT 0,
    dedupe_key TEXT NOT NULL,
    remote_id TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (account_id, post_id, channel_id)
);
CREATE INDEX social_post_targets_channel ON social_post_targets (account_id, channel_id);

-- Each approval decision: one per (post, channel, version, tier).
CREATE TABLE social_approval_steps (
    account_id TEXT NOT NULL,
    post_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    tier INTEGER NOT NULL,
    decision TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    decided_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, post_id, channel_id, version, tier)
);

-- Every step of a post or channel, oldest first (who, what, when, details as JSON).
CREATE TABLE social_audit (
    account_id TEXT NOT NULL,
    audit_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}',
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, audit_id)
);
CREATE INDEX social_audit_subject ON social_audit (account_id, subject, at);
