-- Marketplace: when a held part's payout was claimed. `claimed_at` is when the run
-- holding `claim` took it (NULL: no claim, or one taken before this migration, which
-- counts as expired): a run claims a part only when no live run holds it, and takes
-- over only a claim older than the claim's lifetime (a run that died without letting go).
ALTER TABLE mkt_split_holds ADD COLUMN claimed_at DOUBLE PRECISION;
