-- The sample library: one row per indexed file of an account, keyed (account_id, id);
-- account_id is the distribution column. content_hash lets re-indexing skip unchanged files.
CREATE TABLE IF NOT EXISTS samples (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    folder TEXT NOT NULL,
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    words TEXT NOT NULL,
    duration DOUBLE PRECISION NOT NULL,
    loudness_lufs DOUBLE PRECISION,
    peak_db DOUBLE PRECISION NOT NULL,
    bpm DOUBLE PRECISION,
    bpm_confidence DOUBLE PRECISION NOT NULL,
    key_tonic INTEGER,
    key_mode TEXT,
    key_confidence DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    instrument TEXT NOT NULL,
    instrument_confidence DOUBLE PRECISION NOT NULL,
    analysis TEXT NOT NULL,
    indexed_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, path)
);
CREATE INDEX IF NOT EXISTS samples_folder ON samples (account_id, folder);
