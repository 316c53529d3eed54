-- Distribution: royalty splits, payees, statements, ledger. Every table is keyed by account_id first.
CREATE TABLE dist_payees (account_id TEXT NOT NULL, payee_id TEXT NOT NULL,
  name TEXT NOT NULL, joined INTEGER NOT NULL, joined_at DOUBLE PRECISION,
  PRIMARY KEY (account_id, payee_id));
CREATE TABLE dist_splits (account_id TEXT NOT NULL, isrc TEXT NOT NULL, data TEXT NOT NULL,
  revision INTEGER NOT NULL, recouped_cents BIGINT NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (account_id, isrc));
CREATE TABLE dist_split_history (account_id TEXT NOT NULL, isrc TEXT NOT NULL,
  revision INTEGER NOT NULL, changed_at DOUBLE PRECISION NOT NULL, changed_by TEXT NOT NULL,
  data TEXT NOT NULL, PRIMARY KEY (account_id, isrc, revision));
CREATE TABLE dist_statements (account_id TEXT NOT NULL, statement_id TEXT NOT NULL,
  checksum TEXT NOT NULL, source TEXT NOT NULL, imported_at DOUBLE PRECISION NOT NULL,
  line_count INTEGER NOT NULL, totals TEXT NOT NULL,
  PRIMARY KEY (account_id, statement_id), UNIQUE (account_id, checksum));
CREATE TABLE dist_ledger (account_id TEXT NOT NULL, entry_id TEXT NOT NULL,
  statement_id TEXT NOT NULL, isrc TEXT NOT NULL, payee_id TEXT NOT NULL,
  currency TEXT NOT NULL, amount_cents BIGINT NOT NULL, kind TEXT NOT NULL,
  status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, entry_id));
CREATE INDEX dist_ledger_statement ON dist_ledger (account_id, statement_id);
