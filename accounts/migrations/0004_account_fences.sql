-- Fences of accounts moving out of this region's database (accounts.moving).

-- A row here means this database no longer takes the account's writes: written (under
-- the account's exclusive lock on PostgreSQL) when a move out of this region begins,
-- and read inside every write keyed by the account (under the shared lock), so a write
-- either committed before the move copies the rows or is refused. The row stays after
-- the move, so a late write here is refused rather than lost; it is deleted when the
-- account moves back here, and when the person is erased. target is where it went.
CREATE TABLE account_fences (
    account_id TEXT NOT NULL PRIMARY KEY,
    target TEXT NOT NULL,
    fenced_at DOUBLE PRECISION NOT NULL
);
