-- The analytics module's tables, each keyed by account_id first (the Citus rule).

-- Time-series points (``at``: epoch seconds, UTC; midnight for daily grain). Upserted
-- by the whole key, so fetching a window again overwrites and never adds. On SQLite
-- one plain table; PostgreSQL's file of this version partitions it by month.
CREATE TABLE analytics_points (
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    grain TEXT NOT NULL,
    dimensions TEXT NOT NULL DEFAULT '',
    at BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    fetched_at DOUBLE PRECISION NOT NULL,
    stored_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, source, entity_kind, entity_id, metric, grain, dimensions, at)
);
CREATE INDEX analytics_points_time ON analytics_points (account_id, at);

-- A connected source of an account: which platform, which of its entities, the
-- credentials sealed (business/analytics/credentials.py), and its schedule.
-- state: active | needs_reconnect (the token died) | failing (a changed answer
-- shape) | disconnected.
CREATE TABLE analytics_sources (
    account_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    source TEXT NOT NULL,
    entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    entity_name TEXT NOT NULL DEFAULT '',
    credentials TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'active',
    last_error TEXT NOT NULL DEFAULT '',
    connected_by TEXT NOT NULL DEFAULT '',
    next_run_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_run_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, source_id),
    UNIQUE (account_id, source, entity_kind, entity_id)
);
CREATE INDEX analytics_sources_due ON analytics_sources (state, next_run_at);

-- One ingestion run (scheduled or a back-fill) of one source over a day range,
-- and how far it got: complete_through is the last day stored completely, so a
-- run rescheduled (rate limit, quota) or stopped (token revoked) keeps its progress.
CREATE TABLE analytics_runs (
    account_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    complete_through TEXT,
    points BIGINT NOT NULL DEFAULT 0,
    pages BIGINT NOT NULL DEFAULT 0,
    gaps BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'queued',
    job_id TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, run_id)
);
CREATE INDEX analytics_runs_job ON analytics_runs (account_id, job_id);

-- Per source, the last batch's freshness: fetched from the platform, then queryable.
CREATE TABLE analytics_freshness (
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    fetched_at DOUBLE PRECISION NOT NULL,
    queryable_at DOUBLE PRECISION NOT NULL,
    points BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, source)
);

-- The catalogue: one row per artist, recording, release, playlist or venue of the
-- account; merged_into names the entity a merge folded this one into.
CREATE TABLE analytics_entities (
    account_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    norm_name TEXT NOT NULL DEFAULT '',
    artist_name TEXT NOT NULL DEFAULT '',
    isrc TEXT NOT NULL DEFAULT '',
    upc TEXT NOT NULL DEFAULT '',
    duration_ms BIGINT,
    merged_into TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, entity_id)
);
CREATE INDEX analytics_entities_isrc ON analytics_entities (account_id, kind, isrc);
CREATE INDEX analytics_entities_upc ON analytics_entities (account_id, kind, upc);

-- A platform's id of a catalogue entity: how it was matched and how sure we are.
-- manual = 1: a person decided it (merge or split); re-ingestion never changes it.
CREATE TABLE analytics_links (
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    platform_kind TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    method TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    manual INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL DEFAULT '',
    isrc TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, source, platform_kind, platform_id)
);
CREATE INDEX analytics_links_entity ON analytics_links (account_id, entity_id);

-- Who merged or split what, and when (kept; the catalogue's audit trail).
CREATE TABLE analytics_catalog_audit (
    account_id TEXT NOT NULL,
    audit_id TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL DEFAULT '',
    entity_id TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, audit_id)
);
