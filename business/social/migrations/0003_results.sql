-- Results (business/social/results.py, links.py, attribution.py): metrics snapshots,
-- their collection schedule, UTM short links, their clicks and attributed conversions.
-- Each table is keyed by account_id first (the Citus rule).

-- When each published channel of a post is read next, and how the last read went.
CREATE TABLE social_metric_schedule (
    account_id TEXT NOT NULL,
    post_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    next_at DOUBLE PRECISION NOT NULL,
    last_at DOUBLE PRECISION,
    last_error TEXT NOT NULL DEFAULT '',
    failures INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, post_id, channel_id)
);
CREATE INDEX social_metric_schedule_due ON social_metric_schedule (next_at);

-- One reading of a post's metrics on one channel; NULL: the network does not report it.
CREATE TABLE social_metric_snapshots (
    account_id TEXT NOT NULL,
    post_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    taken_at DOUBLE PRECISION NOT NULL,
    network TEXT NOT NULL,
    impressions BIGINT,
    reach BIGINT,
    likes BIGINT,
    comments BIGINT,
    shares BIGINT,
    clicks BIGINT,
    video_views BIGINT,
    PRIMARY KEY (account_id, post_id, channel_id, taken_at)
);
CREATE INDEX social_metric_snapshots_taken ON social_metric_snapshots (taken_at);

-- A short link /s/{code} of one channel of a post, to its original URL.
CREATE TABLE social_short_links (
    account_id TEXT NOT NULL,
    code TEXT NOT NULL,
    post_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    network TEXT NOT NULL,
    url TEXT NOT NULL,
    campaign TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, code),
    UNIQUE (account_id, post_id, channel_id)
);
CREATE INDEX social_short_links_code ON social_short_links (code);

-- A counted click: one per visitor (a salted hash, never an address) and hour.
CREATE TABLE social_link_clicks (
    account_id TEXT NOT NULL,
    code TEXT NOT NULL,
    hour BIGINT NOT NULL,
    visitor TEXT NOT NULL,
    post_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    clicked_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, code, hour, visitor)
);
CREATE INDEX social_link_clicks_post ON social_link_clicks (account_id, post_id);

-- A pre-save or a sale attributed to a post (once per event id).
CREATE TABLE social_attributions (
    account_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    post_id TEXT NOT NULL,
    channel_id TEXT NOT NULL DEFAULT '',
    code TEXT NOT NULL DEFAULT '',
    amount_cents BIGINT NOT NULL DEFAULT 0,
    currency TEXT NOT NULL DEFAULT '',
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, event_id)
);
CREATE INDEX social_attributions_post ON social_attributions (account_id, post_id);
