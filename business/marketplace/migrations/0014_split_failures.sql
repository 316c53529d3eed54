-- Marketplace: a split line whose transfers could not be made, and what became of each
-- reversal of a split line. `transfer_failed` is why the line's transfer job gave up
-- (its last attempt failed: a refusal is retried like any error until the attempts are
-- spent); NULL while it may still pay.
-- `mkt_split_reversals` records every reversal job's end, keyed by its cause (a refund
-- or a dispute) and line: `reversed` when the line's transfers were taken back in
-- proportion, `transfers_failed` when the line's transfers had failed (what had been
-- transferred is taken back; `reversed` says how much), so no reversal ends unseen.
ALTER TABLE mkt_orders ADD COLUMN transfer_failed TEXT;
CREATE TABLE mkt_split_reversals (
    account_id TEXT NOT NULL,
    cause TEXT NOT NULL,
    order_id TEXT NOT NULL,
    taken BIGINT NOT NULL,
    of_amount BIGINT NOT NULL,
    reversed BIGINT NOT NULL,
    state TEXT NOT NULL,
    note TEXT,
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, cause, order_id)
);
