-- Marketplace: each reversal made of one split transfer, keyed by its cause (a refund or
-- a dispute) and the transfer, so a cause takes a transfer back at most once: a reversal
-- job run again (requeued, retried after Stripe's idempotency keys expired) or a dispute
-- sent again skips every transfer its cause has already reversed.
CREATE TABLE mkt_transfer_reversals (
    account_id TEXT NOT NULL,
    cause TEXT NOT NULL,
    transfer_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    reversal_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, cause, transfer_id)
);
