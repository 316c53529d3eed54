-- GET /api/v1/orders seeks a seller's orders in (created_at, order_id) order a page at a
-- time; this index serves that seek instead of a scan and sort of every order.
CREATE INDEX mkt_orders_seller_made ON mkt_orders (account_id, created_at, order_id);
