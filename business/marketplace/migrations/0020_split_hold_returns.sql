-- Marketplace: a held part an ended invitation gave back to the seller. A new
-- invitation of the same collaborator replacing the ended one sets `returns_to_seller`
-- on the parts the ended one held: they go back to the seller whatever the new
-- invitation's answer, even after their payout failed for good and they went back to
-- `held` (the flag outlives every decision).
ALTER TABLE mkt_split_holds ADD COLUMN returns_to_seller INTEGER NOT NULL DEFAULT 0;
