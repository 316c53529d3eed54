-- Marketplace: the double-entry ledger. Each seller's books are theirs (account_id, the
-- Citus distribution column, first in every key), so one posting never spans shards.
-- Amounts are integers in the currency's minor units; a posting's entries sum to zero
-- per currency. mkt_ledger_balances keeps each ledger account's running balance, updated
-- in the posting's transaction with a conditional UPDATE that refuses to take it below
-- zero. The world outside (external:* accounts) may go negative and keeps no row here.
CREATE TABLE mkt_ledger_postings (
  account_id TEXT NOT NULL,
  posting_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  kind TEXT NOT NULL,
  stripe_txn TEXT,
  memo TEXT NOT NULL DEFAULT '',
  fingerprint TEXT NOT NULL,
  posted_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, posting_id),
  UNIQUE (account_id, idempotency_key)
);
CREATE INDEX mkt_ledger_postings_txn ON mkt_ledger_postings (account_id, stripe_txn);
CREATE TABLE mkt_ledger_entries (
  account_id TEXT NOT NULL,
  posting_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  ledger_account TEXT NOT NULL,
  currency TEXT NOT NULL,
  amount BIGINT NOT NULL,
  PRIMARY KEY (account_id, posting_id, seq)
);
CREATE INDEX mkt_ledger_entries_account ON mkt_ledger_entries (account_id, ledger_account,
  currency);
CREATE TABLE mkt_ledger_balances (
  account_id TEXT NOT NULL,
  ledger_account TEXT NOT NULL,
  currency TEXT NOT NULL,
  balance BIGINT NOT NULL DEFAULT 0,
  version BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (account_id, ledger_account, currency)
)
