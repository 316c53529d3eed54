-- Marketplace: licence contracts. A seller's contract template (Jinja2 text rendered in
-- the sandbox), and each licence's contract PDF, kept under the SELLER's account (the
-- buyer a column, indexed for the buyer's library), with the SHA-256 of every file the
-- licence delivers (JSON) and of the PDF itself.
CREATE TABLE mkt_contract_templates (
  account_id TEXT NOT NULL,
  template TEXT NOT NULL,
  last_error TEXT NOT NULL DEFAULT '',
  updated_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id)
);
CREATE TABLE mkt_contracts (
  account_id TEXT NOT NULL,
  licence_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  buyer_account TEXT NOT NULL,
  pdf BYTEA NOT NULL,
  sha256 TEXT NOT NULL,
  files TEXT NOT NULL,
  template TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, licence_id)
);
CREATE INDEX mkt_contracts_buyer ON mkt_contracts (buyer_account, licence_id);
