-- Saved custom dashboards (business/analytics/dashboards.py): a person's own, or shared
-- with everyone who may read the account's analytics. widgets and filters are JSON.
CREATE TABLE analytics_dashboards (
    account_id TEXT NOT NULL,
    dashboard_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    shared INTEGER NOT NULL DEFAULT 0,
    filters TEXT NOT NULL DEFAULT '{}',
    widgets TEXT NOT NULL DEFAULT '[]',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, dashboard_id)
);
CREATE INDEX analytics_dashboards_owner ON analytics_dashboards (account_id, owner);
