-- Marketplace: payouts, collaborator splits and their transfers, disputes. All in the
-- seller's books (account_id first). A payout is booked before Stripe is asked, so a
-- payout racing a purchase or another payout can never take the balance below zero.
CREATE TABLE mkt_payouts (
  account_id TEXT NOT NULL,
  payout_id TEXT NOT NULL,
  stripe_payout TEXT,
  amount BIGINT NOT NULL,
  fee BIGINT NOT NULL,
  currency TEXT NOT NULL,
  method TEXT NOT NULL,
  status TEXT NOT NULL,
  note TEXT NOT NULL DEFAULT '',
  created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, payout_id)
);
CREATE TABLE mkt_splits (
  account_id TEXT NOT NULL,
  beat_id TEXT NOT NULL,
  collaborator TEXT NOT NULL,
  stripe_account TEXT NOT NULL,
  basis_points INTEGER NOT NULL,
  PRIMARY KEY (account_id, beat_id, collaborator)
);
CREATE TABLE mkt_transfers (
  account_id TEXT NOT NULL,
  transfer_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  collaborator TEXT NOT NULL,
  stripe_account TEXT NOT NULL,
  amount BIGINT NOT NULL,
  reversed BIGINT NOT NULL DEFAULT 0,
  currency TEXT NOT NULL,
  PRIMARY KEY (account_id, transfer_id)
);
CREATE TABLE mkt_disputes (
  account_id TEXT NOT NULL,
  dispute_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  PRIMARY KEY (account_id, dispute_id)
)
