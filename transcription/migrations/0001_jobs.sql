-- Transcription jobs, keyed by (project_id, id): project_id is the distribution column.
-- IF NOT EXISTS adopts the table of a job file written before the shared migration runner
-- (the same columns; its REAL columns are DOUBLE PRECISION to SQLite too).
CREATE TABLE IF NOT EXISTS transcription_jobs (
    project_id TEXT NOT NULL,
    id TEXT NOT NULL,
    clip_id TEXT,
    source TEXT NOT NULL,
    start_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    end_s DOUBLE PRECISION,
    language TEXT,
    status TEXT NOT NULL,
    progress DOUBLE PRECISION NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX IF NOT EXISTS transcription_jobs_status ON transcription_jobs (status);
