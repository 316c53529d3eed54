-- The collaboration store: projects, each project's update log and snapshot, updates kept
-- aside in quarantine, and revoked users. Every table is keyed by project_id first, its
-- distribution column.
--
-- Databases written before the shared migration runner already hold these tables under
-- these names: IF NOT EXISTS adopts them, data and all.
CREATE TABLE IF NOT EXISTS collab_projects (
    project_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS collab_updates (
    project_id TEXT NOT NULL, seq BIGINT NOT NULL, data BYTEA NOT NULL,
    PRIMARY KEY (project_id, seq));
CREATE TABLE IF NOT EXISTS collab_snapshots (
    project_id TEXT PRIMARY KEY, upto_seq BIGINT NOT NULL, data BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS collab_quarantined_updates (
    project_id TEXT NOT NULL, seq BIGINT NOT NULL, data BYTEA NOT NULL, reason TEXT NOT NULL,
    quarantined_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (project_id, seq));
CREATE TABLE IF NOT EXISTS collab_revocations (
    project_id TEXT NOT NULL, user_name TEXT NOT NULL, revoked_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, user_name));
