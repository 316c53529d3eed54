-- Marketplace: tagged previews. A seller's voice tag (an asset of theirs, its gain and
-- where it goes), each beat's rendered preview MP3 (the version wanted: a digest of the
-- tag's settings and the beat's source file; the version rendered; the job rendering
-- it), and on the beat the digest of the preview it has now (shown in the listing).
CREATE TABLE mkt_voice_tags (
  account_id TEXT NOT NULL,
  asset_id TEXT NOT NULL,
  gain_db DOUBLE PRECISION NOT NULL,
  interval_s DOUBLE PRECISION NOT NULL,
  first_s DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id)
);
CREATE TABLE mkt_previews (
  account_id TEXT NOT NULL,
  beat_id TEXT NOT NULL,
  wanted TEXT NOT NULL,
  job_id TEXT,
  status TEXT NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  version TEXT,
  mp3 BYTEA,
  sha256 TEXT,
  duration_s DOUBLE PRECISION,
  updated_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, beat_id)
);
ALTER TABLE mkt_beats ADD COLUMN preview_sha256 TEXT;
