-- Marketplace: a pending collaborator's money is held for them, not paid to the seller.
-- `mkt_splits.invited_at` is when the part was offered (NULL on parts offered before
-- this migration: the expiry sweep stamps them when it first sees them, so they get a
-- full term); `ended` is 'declined' or 'expired' (NULL: pending or accepted), `ended_at`
-- when. `mkt_split_holds` is one pending part of one sold line: `amount` the part as
-- held, `cut` what refunds and lost disputes took of it while held (one row per cause in
-- `mkt_split_hold_cuts`), `state` held -> releasing (to the collaborator, who accepted)
-- or returning (to the seller: declined, expired or taken out of the split) -> released
-- or returned, with the transfer that paid it. `mkt_transfers.hold_of` names the
-- collaborator whose held part a transfer paid out (NULL: a payee's own transfer).
ALTER TABLE mkt_splits ADD COLUMN invited_at DOUBLE PRECISION;
ALTER TABLE mkt_splits ADD COLUMN ended TEXT;
ALTER TABLE mkt_splits ADD COLUMN ended_at DOUBLE PRECISION;
ALTER TABLE mkt_transfers ADD COLUMN hold_of TEXT;
CREATE TABLE mkt_split_holds (
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    collaborator TEXT NOT NULL,
    beat_id TEXT NOT NULL,
    charge TEXT NOT NULL,
    transfer_group TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount BIGINT NOT NULL,
    cut BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    payee TEXT,
    stripe_account TEXT,
    transfer_id TEXT,
    paid BIGINT,
    held_at DOUBLE PRECISION NOT NULL,
    settled_at DOUBLE PRECISION,
    PRIMARY KEY (account_id, order_id, collaborator)
);
CREATE INDEX mkt_split_holds_invitation ON mkt_split_holds (account_id, beat_id, collaborator);
CREATE TABLE mkt_split_hold_cuts (
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    collaborator TEXT NOT NULL,
    cause TEXT NOT NULL,
    amount BIGINT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, order_id, collaborator, cause)
);
