-- Marketplace: sandbox sales. An order made by a test-mode API key's simulated checkout
-- (POST /api/v1/orders) is a sandbox one: no money moved, so the seller's sales reports
-- and customer list leave it out, and refunds refuse it. Its exclusive licence holds no
-- real exclusivity: its exclusive_beat is 'sandbox:<licence id>', never the beat's id,
-- so the beat's one real exclusive licence (UNIQUE (account_id, exclusive_beat)) stays
-- free.
ALTER TABLE mkt_orders ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0;
