-- One runner at a time carries a move (accounts.moving): whoever claims it by a
-- conditional UPDATE holds it until lease_until (renewed at every step).
ALTER TABLE account_moves ADD COLUMN runner TEXT;
ALTER TABLE account_moves ADD COLUMN lease_until DOUBLE PRECISION NOT NULL DEFAULT 0;
