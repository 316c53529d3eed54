-- Distribution: gate snapshots of queued releases. Every table is keyed by account_id first.
CREATE TABLE dist_snapshots (account_id TEXT NOT NULL, snapshot_id TEXT NOT NULL,
  release_id TEXT NOT NULL, data TEXT NOT NULL, files TEXT NOT NULL,
  checked_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (account_id, snapshot_id));
ALTER TABLE dist_jobs ADD COLUMN snapshot_id TEXT NOT NULL DEFAULT '';
