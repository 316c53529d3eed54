-- Distribution: deliveries run on the one job queue (the core's `jobs` table, created
-- before any plug-in migration). A delivery record keeps what is delivered and how it
-- stands; the queue keeps leases, attempts, backoff and dead letters. run_id names the
-- job that runs the record's current arming.
ALTER TABLE dist_jobs ADD COLUMN run_id TEXT NOT NULL DEFAULT '';
-- Every delivery still owed becomes a job of its own id, due when its next attempt was;
-- attempts are carried over, so an attempt after the first probes the store first.
INSERT INTO jobs (account_id, id, queue, payload, state, priority, attempts, max_attempts,
  run_at, idempotency_key, created_at, updated_at)
SELECT account_id, job_id, 'distribution.deliver', '{"delivery_id": "' || job_id || '"}',
  'queued', 0, attempts, CASE WHEN attempts < 8 THEN 8 ELSE attempts + 1 END,
  next_attempt_at, release_id || '/' || store || '/r' || CAST(revision AS TEXT) || '/v'
  || CAST(version AS TEXT), queued_at, updated_at
FROM dist_jobs WHERE state NOT IN ('delivered', 'dead');
UPDATE dist_jobs SET run_id = job_id WHERE state NOT IN ('delivered', 'dead');
DROP INDEX dist_jobs_due;
ALTER TABLE dist_jobs DROP COLUMN next_attempt_at;
ALTER TABLE dist_jobs DROP COLUMN lease_until;
ALTER TABLE dist_jobs DROP COLUMN worker;
