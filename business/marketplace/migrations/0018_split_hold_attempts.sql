-- Marketplace: a held part's payout attempts. `attempt` counts the times the part went
-- back to `held` after its payout failed for good (it is part of the transfer's
-- idempotency key, so a new decision never reuses an old key); `claim` is the token of
-- the run paying the part out right now (NULL: none), so giving up never puts back a
-- part another run is paying.
ALTER TABLE mkt_split_holds ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mkt_split_holds ADD COLUMN claim TEXT;
