-- Marketplace: the catalogue, checkout and delivery. Every table is keyed by account_id
-- first (the Citus rule): beats, tiers, orders and licences by the SELLER's account (the
-- buyer is a column, indexed for the buyer's library); the webhook inbox by the seller
-- the event is about ('' for events about nothing of ours).
CREATE TABLE mkt_sellers (
  account_id TEXT NOT NULL,
  stripe_account TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id)
);
CREATE TABLE mkt_beats (
  account_id TEXT NOT NULL,
  beat_id TEXT NOT NULL,
  title TEXT NOT NULL,
  bpm INTEGER NOT NULL,
  musical_key TEXT NOT NULL,
  genre TEXT NOT NULL DEFAULT '',
  mood TEXT NOT NULL DEFAULT '',
  tags TEXT NOT NULL DEFAULT '[]',
  files TEXT NOT NULL DEFAULT '[]',
  currency TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'on_sale',
  reserved_order TEXT,
  reserved_until DOUBLE PRECISION,
  sold_order TEXT,
  leases_sold INTEGER NOT NULL DEFAULT 0,
  created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, beat_id)
);
CREATE INDEX mkt_beats_listing ON mkt_beats (status, created_at, account_id, beat_id);
CREATE TABLE mkt_tiers (
  account_id TEXT NOT NULL,
  beat_id TEXT NOT NULL,
  tier TEXT NOT NULL,
  name TEXT NOT NULL,
  price BIGINT NOT NULL,
  currency TEXT NOT NULL,
  files TEXT NOT NULL,
  rights TEXT NOT NULL,
  exclusive INTEGER NOT NULL DEFAULT 0,
  download_limit INTEGER NOT NULL,
  active INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (account_id, beat_id, tier)
);
CREATE TABLE mkt_orders (
  account_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  beat_id TEXT NOT NULL,
  tier TEXT NOT NULL,
  buyer_account TEXT NOT NULL,
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  exclusive INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL,
  stripe_account TEXT NOT NULL,
  session_id TEXT,
  payment_intent TEXT,
  note TEXT NOT NULL DEFAULT '',
  created_at DOUBLE PRECISION NOT NULL,
  paid_at DOUBLE PRECISION,
  refunded_at DOUBLE PRECISION,
  PRIMARY KEY (account_id, order_id)
);
CREATE INDEX mkt_orders_buyer ON mkt_orders (buyer_account, created_at);
CREATE TABLE mkt_licences (
  account_id TEXT NOT NULL,
  licence_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  beat_id TEXT NOT NULL,
  tier TEXT NOT NULL,
  buyer_account TEXT NOT NULL,
  title TEXT NOT NULL,
  files TEXT NOT NULL,
  rights TEXT NOT NULL,
  exclusive_beat TEXT,
  downloads INTEGER NOT NULL DEFAULT 0,
  download_limit INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'active',
  granted_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, licence_id),
  UNIQUE (account_id, order_id),
  UNIQUE (account_id, exclusive_beat)
);
CREATE INDEX mkt_licences_buyer ON mkt_licences (buyer_account, granted_at);
CREATE INDEX mkt_licences_id ON mkt_licences (licence_id);
CREATE TABLE mkt_webhook_events (
  account_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  type TEXT NOT NULL,
  outcome TEXT NOT NULL,
  received_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, event_id)
)
