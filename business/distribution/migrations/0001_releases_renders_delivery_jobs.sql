-- Distribution: releases, renders, delivery jobs. Every table is keyed by account_id first.
CREATE TABLE dist_releases (account_id TEXT NOT NULL, release_id TEXT NOT NULL,
  data TEXT NOT NULL, status TEXT NOT NULL, report TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, release_id));
CREATE TABLE dist_renders (account_id TEXT NOT NULL, project_id TEXT NOT NULL,
  path TEXT NOT NULL, metadata TEXT NOT NULL, rendered_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, project_id));
CREATE TABLE dist_jobs (account_id TEXT NOT NULL, job_id TEXT NOT NULL,
  release_id TEXT NOT NULL, store TEXT NOT NULL, action TEXT NOT NULL,
  revision INTEGER NOT NULL, message_id TEXT NOT NULL, state TEXT NOT NULL,
  attempts INTEGER NOT NULL, version INTEGER NOT NULL,
  next_attempt_at DOUBLE PRECISION NOT NULL, lease_until DOUBLE PRECISION NOT NULL,
  worker TEXT NOT NULL, last_error TEXT NOT NULL, queued_at DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL, delivered_at DOUBLE PRECISION,
  PRIMARY KEY (account_id, job_id), UNIQUE (account_id, release_id, store));
CREATE INDEX dist_jobs_due ON dist_jobs (state, next_attempt_at);
CREATE TABLE dist_job_events (account_id TEXT NOT NULL, job_id TEXT NOT NULL,
  seq INTEGER NOT NULL, state TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
  detail TEXT NOT NULL, PRIMARY KEY (account_id, job_id, seq));
