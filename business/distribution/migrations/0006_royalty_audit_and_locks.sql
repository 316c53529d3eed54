-- Distribution: royalty audit log and per-account royalty lock. Every table is keyed by account_id first.
CREATE TABLE dist_audit (account_id TEXT NOT NULL, seq BIGINT NOT NULL,
  at DOUBLE PRECISION NOT NULL, changed_by TEXT NOT NULL, subject TEXT NOT NULL,
  event TEXT NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (account_id, seq));
CREATE TABLE dist_royalty_locks (account_id TEXT NOT NULL, version BIGINT NOT NULL,
  PRIMARY KEY (account_id));
