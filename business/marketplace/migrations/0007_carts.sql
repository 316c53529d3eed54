-- Marketplace: carts and bulk deals. A buyer's cart in one store (the seller's
-- account_id first; the buyer is `owner`), the seller's bulk deals ("buy 2 get 1
-- free"), and on each order the cart checkout it belongs to (one Stripe Checkout
-- Session, one order per line).
CREATE TABLE mkt_cart_items (
  account_id TEXT NOT NULL,
  owner TEXT NOT NULL,
  beat_id TEXT NOT NULL,
  tier TEXT NOT NULL,
  added_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, owner, beat_id)
);
CREATE TABLE mkt_deals (
  account_id TEXT NOT NULL,
  deal_id TEXT NOT NULL,
  buy INTEGER NOT NULL,
  free INTEGER NOT NULL,
  tiers TEXT NOT NULL DEFAULT '[]',
  active INTEGER NOT NULL DEFAULT 1,
  created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, deal_id)
);
ALTER TABLE mkt_orders ADD COLUMN cart_id TEXT;
CREATE INDEX mkt_orders_cart ON mkt_orders (account_id, cart_id);
