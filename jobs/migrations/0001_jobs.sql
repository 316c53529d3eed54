-- The one durable job queue (jobs.JobQueue). account_id is the distribution column:
-- a project's jobs are kept under the project's account (dawserver.authorization.project_account).
-- state: queued | running | retrying | done | dead (a dead letter) | cancelled.
-- lease_token names the claim a running job is held under; only its holder may finish it.
CREATE TABLE jobs (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at DOUBLE PRECISION NOT NULL,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    lease_token TEXT,
    worker TEXT,
    heartbeat_at DOUBLE PRECISION,
    progress DOUBLE PRECISION NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT '',
    result TEXT,
    last_error TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, queue, idempotency_key)
);
CREATE INDEX jobs_due ON jobs (queue, state, run_at);
