-- Marketplace: memberships on Stripe Billing. A seller's plans (a recurring price on their
-- connected account, perks: free downloads of one tier per paid period and a discount on
-- everything else), the fans' memberships (the subscription's state as Stripe last said
-- it; perk_period is the start of the newest paid period, perk_used the free downloads
-- taken in it), the free downloads taken, and the invoices paid (the ledger's source).
CREATE TABLE mkt_membership_plans (
  account_id TEXT NOT NULL,
  plan_id TEXT NOT NULL,
  name TEXT NOT NULL,
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  billing_interval TEXT NOT NULL,
  free_downloads INTEGER NOT NULL DEFAULT 0,
  free_tier TEXT,
  discount_bp INTEGER NOT NULL DEFAULT 0,
  stripe_account TEXT NOT NULL,
  stripe_product TEXT NOT NULL,
  stripe_price TEXT NOT NULL,
  active INTEGER NOT NULL DEFAULT 1,
  created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, plan_id)
);
CREATE TABLE mkt_memberships (
  account_id TEXT NOT NULL,
  membership_id TEXT NOT NULL,
  plan_id TEXT NOT NULL,
  member_account TEXT NOT NULL,
  stripe_account TEXT NOT NULL,
  status TEXT NOT NULL,
  session_id TEXT,
  stripe_subscription TEXT,
  stripe_customer TEXT,
  period_start BIGINT,
  period_end BIGINT,
  cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
  perk_period BIGINT,
  perk_used INTEGER NOT NULL DEFAULT 0,
  created_at DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, membership_id)
);
CREATE INDEX mkt_memberships_member ON mkt_memberships (member_account, created_at);
CREATE INDEX mkt_memberships_subscription ON mkt_memberships (stripe_subscription);
CREATE TABLE mkt_membership_downloads (
  account_id TEXT NOT NULL,
  membership_id TEXT NOT NULL,
  perk_period BIGINT NOT NULL,
  beat_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, order_id),
  UNIQUE (account_id, membership_id, perk_period, beat_id)
);
CREATE TABLE mkt_membership_invoices (
  account_id TEXT NOT NULL,
  invoice_id TEXT NOT NULL,
  membership_id TEXT NOT NULL,
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  charge TEXT,
  period_start BIGINT NOT NULL,
  paid_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, invoice_id)
);
