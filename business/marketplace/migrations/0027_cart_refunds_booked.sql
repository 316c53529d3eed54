-- Marketplace: a cart line's refunds now book what their running total grew by, as a
-- single sale's do (migration 0026). Lines refunded since 0026 were booked under the old
-- key ('refund:<order>') without raising refunded_amount, so it is counted again from the
-- refunds booked, both key shapes, for every cart line.
UPDATE mkt_orders SET refunded_amount = COALESCE((
  SELECT SUM(e.amount) FROM mkt_ledger_postings p JOIN mkt_ledger_entries e
    ON e.account_id = p.account_id AND e.posting_id = p.posting_id
  WHERE p.account_id = mkt_orders.account_id AND p.kind = 'refund'
    AND e.ledger_account = 'external:refunds'
    AND (p.idempotency_key = 'refund:' || mkt_orders.order_id
         OR substr(p.idempotency_key, 1, length(mkt_orders.order_id) + 8)
            = 'refund:' || mkt_orders.order_id || ':')), 0)
WHERE cart_id IS NOT NULL;
