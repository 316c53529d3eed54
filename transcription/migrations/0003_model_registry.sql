-- The model registry: every transcription model (a name, a version per distinct model.bin),
-- the per-language error table measured for each version, and one row per inference.
-- Models and their scores are small and global: reference tables (copied to every node).
-- reference table: transcription_models
CREATE TABLE transcription_models (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    languages TEXT NOT NULL,
    path TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    registered_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX transcription_models_sha256 ON transcription_models (sha256);
-- reference table: transcription_model_scores
CREATE TABLE transcription_model_scores (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    language TEXT NOT NULL,
    detected TEXT NOT NULL,
    probability DOUBLE PRECISION NOT NULL,
    wer DOUBLE PRECISION NOT NULL,
    cer DOUBLE PRECISION NOT NULL,
    measured_by TEXT NOT NULL,
    measured_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (name, version, language)
);
-- One row per decode, kept under the account whose audio it was (distribution column).
CREATE TABLE transcription_inferences (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version BIGINT NOT NULL,
    language TEXT NOT NULL,
    duration_s DOUBLE PRECISION NOT NULL,
    confidence DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, id)
);
