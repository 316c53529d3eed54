-- Marketplace: how much of each order's payment the books show refunded (refunded_amount,
-- minor units). Stripe's charge.refunded carries the charge's running total, so a second
-- partial refund of an order books only what the total grew by; the conditional update of
-- this column keeps two refund events of one order from both booking the same growth.
-- Filled from the refunds already booked (a single sale's 'refund:<order>:<total>', a
-- cart line's 'refund:<order>').
ALTER TABLE mkt_orders ADD COLUMN refunded_amount BIGINT NOT NULL DEFAULT 0;
UPDATE mkt_orders SET refunded_amount = COALESCE((
  SELECT SUM(e.amount) FROM mkt_ledger_postings p JOIN mkt_ledger_entries e
    ON e.account_id = p.account_id AND e.posting_id = p.posting_id
  WHERE p.account_id = mkt_orders.account_id AND p.kind = 'refund'
    AND e.ledger_account = 'external:refunds'
    AND (p.idempotency_key = 'refund:' || mkt_orders.order_id
         OR substr(p.idempotency_key, 1, length(mkt_orders.order_id) + 8)
            = 'refund:' || mkt_orders.order_id || ':')), 0);
