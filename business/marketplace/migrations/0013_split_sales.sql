-- Marketplace: split beats sold through a cart's checkout. A cart holding a beat with
-- collaborator splits is paid by a separate charge on the platform's Stripe account;
-- its orders carry the charge's `transfer_group` (the cart id; NULL: a direct charge on
-- the seller's connected account), the discovery fee taken on the line
-- (`platform_fee`), and when the line's transfers to its payees were all made
-- (`transferred_at`: a refund's reversals wait for it).
ALTER TABLE mkt_orders ADD COLUMN transfer_group TEXT;
ALTER TABLE mkt_orders ADD COLUMN platform_fee BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mkt_orders ADD COLUMN transferred_at DOUBLE PRECISION;
