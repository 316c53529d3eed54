-- Milestones and their alerts (business/analytics/milestones.py, alerts.py).

-- A milestone of one platform series, stored once: ``milestone_key`` names it without
-- its day (a threshold crossed, or unusual growth near a day), so re-ingesting or
-- back-filling a window never stores it twice. kind: threshold | unusual_growth.
CREATE TABLE analytics_milestones (
    account_id TEXT NOT NULL,
    milestone_id TEXT NOT NULL,
    milestone_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    entity_kind TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    entity_id TEXT NOT NULL DEFAULT '',
    entity_name TEXT NOT NULL DEFAULT '',
    metric TEXT NOT NULL,
    day TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    threshold DOUBLE PRECISION,
    detail TEXT NOT NULL DEFAULT '{}',
    alerted INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, milestone_id),
    UNIQUE (account_id, milestone_key)
);
CREATE INDEX analytics_milestones_day ON analytics_milestones (account_id, day);

-- Thresholds people add to the round numbers (a metric, optionally one catalogue entity).
CREATE TABLE analytics_thresholds (
    account_id TEXT NOT NULL,
    threshold_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    entity_id TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, threshold_id),
    UNIQUE (account_id, metric, value, entity_id)
);

-- A person's alert preferences on an account: mail or not, which kinds, the cooldown.
CREATE TABLE analytics_alert_preferences (
    account_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    email INTEGER NOT NULL DEFAULT 1,
    kinds TEXT NOT NULL DEFAULT 'threshold,unusual_growth',
    cooldown_s DOUBLE PRECISION NOT NULL DEFAULT 21600,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, person_id)
);

-- When each recipient (a hash of the address) was last mailed an alert: the cooldown.
CREATE TABLE analytics_alert_mail (
    account_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    last_mailed_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, recipient)
);
