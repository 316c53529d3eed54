-- Marketplace: memberships' review fixes (issue 14). ``state_version`` counts the writes of
-- Stripe's subscription state, so a webhook applies its snapshot only when nothing was
-- written since it began (an older snapshot never overwrites a newer one); ``refunded``
-- is the part of an invoice's charge already booked as refunded (Stripe's
-- ``amount_refunded`` is a running total). A fan has at most one open (pending) join per
-- store: older duplicates are expired first.
ALTER TABLE mkt_memberships ADD COLUMN state_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mkt_membership_invoices ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0;
UPDATE mkt_memberships SET status = 'expired' WHERE status = 'pending' AND EXISTS (
  SELECT 1 FROM mkt_memberships n WHERE n.account_id = mkt_memberships.account_id AND
  n.member_account = mkt_memberships.member_account AND n.status = 'pending' AND
  (n.created_at > mkt_memberships.created_at OR (n.created_at = mkt_memberships.created_at
   AND n.membership_id > mkt_memberships.membership_id)));
CREATE UNIQUE INDEX mkt_memberships_one_pending ON mkt_memberships (account_id, member_account)
  WHERE status = 'pending';
