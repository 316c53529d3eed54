-- The collaboration store: projects, each project's update log and snapshot, updates kept
-- aside in quarantine, and revoked users. Every table is keyed by project_id first, its
-- distribution column.
--
-- Databases written before the shared migration runner hold these tables under their old
-- SQLite names (projects, updates, ...). Creating the old names when missing and renaming
-- them gives old and new databases the same tables, with their data.
CREATE TABLE IF NOT EXISTS projects (
    project_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
    project_id TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (project_id, seq));
CREATE TABLE IF NOT EXISTS snapshots (
    project_id TEXT PRIMARY KEY, upto_seq INTEGER NOT NULL, data BLOB NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quarantined_updates (
    project_id TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL, PRIMARY KEY (project_id, seq));
CREATE TABLE IF NOT EXISTS revocations (
    project_id TEXT NOT NULL, user_name TEXT NOT NULL, revoked_at REAL NOT NULL,
    PRIMARY KEY (project_id, user_name));
ALTER TABLE projects RENAME TO collab_projects;
ALTER TABLE updates RENAME TO collab_updates;
ALTER TABLE snapshots RENAME TO collab_snapshots;
ALTER TABLE quarantined_updates RENAME TO collab_quarantined_updates;
ALTER TABLE revocations RENAME TO collab_revocations;
