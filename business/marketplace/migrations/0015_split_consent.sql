-- Marketplace: a collaborator agrees to their part of a split before they are paid.
-- `accepted_at` is when they accepted (NULL: pending; a pending collaborator's part is
-- paid to the seller, and their `stripe_account` is '' until they accept with their
-- own). Splits set before consent existed named only collaborators who had connected
-- Stripe: they are kept as agreed (0), so no payee of an existing split stops being paid.
ALTER TABLE mkt_splits ADD COLUMN accepted_at DOUBLE PRECISION;
UPDATE mkt_splits SET accepted_at = 0;
