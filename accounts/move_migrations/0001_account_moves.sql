-- Moving accounts between data regions (accounts.moving); in the main database only.
-- account_id is the distribution column. Times are seconds since the epoch.

-- A move under way: its step (copying, switched) and what is done, so it resumes.
CREATE TABLE account_moves (
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    step TEXT NOT NULL,
    tables TEXT NOT NULL,
    copied TEXT NOT NULL,
    dropped TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id)
);

-- Where a moved account lives now (its id still names the region it was made in).
CREATE TABLE account_regions (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    moved_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id)
);
