-- Marketplace storefronts ("Pro Page"): one per seller, keyed by the seller's account_id
-- first (the Citus rule). A handle and a custom domain are unique across sellers, so the
-- claims live in a small reference table keyed by the name itself (every node holds it
-- whole): (kind, name) -> the account that holds it.
CREATE TABLE mkt_storefronts (
  account_id TEXT NOT NULL,
  handle TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  bio TEXT NOT NULL DEFAULT '',
  theme TEXT NOT NULL DEFAULT '{}',
  template TEXT,
  domain TEXT,
  domain_token TEXT,
  domain_verified_at DOUBLE PRECISION,
  updated_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id)
);
-- reference table: mkt_store_names
CREATE TABLE mkt_store_names (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  account_id TEXT NOT NULL,
  PRIMARY KEY (kind, name)
);
-- A seller's coupons: percent or fixed (in the coupon's currency), store-wide or for one
-- beat, with an expiry and a limit of uses (counted when a checkout is opened with it).
CREATE TABLE mkt_coupons (
  account_id TEXT NOT NULL,
  code TEXT NOT NULL,
  kind TEXT NOT NULL,
  value BIGINT NOT NULL,
  currency TEXT,
  beat_id TEXT,
  expires_at DOUBLE PRECISION,
  max_uses INTEGER,
  uses INTEGER NOT NULL DEFAULT 0,
  created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, code)
);
