-- Marketplace: an open checkout's expiry and the coupon whose use it holds, so checkouts
-- past their session's life are expired by a sweep (holds released, coupon uses given
-- back) even when Stripe's checkout.session.expired never arrives.
ALTER TABLE mkt_orders ADD COLUMN expires_at DOUBLE PRECISION;
ALTER TABLE mkt_orders ADD COLUMN coupon TEXT;
CREATE INDEX mkt_orders_open ON mkt_orders (status, expires_at);
