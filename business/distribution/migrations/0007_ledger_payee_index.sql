-- Distribution: ledger index for money held per payee and track.
CREATE INDEX dist_ledger_payee ON dist_ledger (account_id, payee_id, isrc);
