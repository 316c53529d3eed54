-- Marketplace: who bought each paid order, as the seller's sales reports and customer
-- CSV need it (the seller's account_id first; the buyer's account is buyer_account).
-- The country is Stripe Checkout's billing country; name and email are kept only when
-- the buyer ticked Stripe Checkout's promotional-emails box (consent = 1).
CREATE TABLE mkt_customers (
  account_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  buyer_account TEXT NOT NULL,
  country TEXT,
  name TEXT,
  email TEXT,
  consent INTEGER NOT NULL DEFAULT 0,
  created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, order_id)
);
CREATE INDEX mkt_customers_buyer ON mkt_customers (buyer_account);
