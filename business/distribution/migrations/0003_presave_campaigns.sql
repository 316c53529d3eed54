-- Distribution: pre-save campaigns. Every table is keyed by account_id first.
CREATE TABLE dist_presave_campaigns (account_id TEXT NOT NULL, campaign_id TEXT NOT NULL,
  release_id TEXT NOT NULL, slug TEXT NOT NULL, title TEXT NOT NULL, artist TEXT NOT NULL,
  release_date TEXT NOT NULL, services TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
  fired_at DOUBLE PRECISION, PRIMARY KEY (account_id, campaign_id));
CREATE INDEX dist_presave_slug ON dist_presave_campaigns (slug);
CREATE TABLE dist_presaves (account_id TEXT NOT NULL, campaign_id TEXT NOT NULL,
  fan_key TEXT NOT NULL, service TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, campaign_id, fan_key, service));
