-- Transcription jobs are jobs of the one job queue now (queue 'transcription', table `jobs`
-- of jobs/0001, applied first: components migrate in (component, version) order). Every
-- row moves, so queued jobs still run and finished ones keep their results: queued and
-- running ones are queued again (a running one starts over), failed ones are dead letters.
-- account_id is dawserver.authorization.project_account(project_id), the project itself;
-- max_attempts is the queue's (transcription.jobs.queue_settings).
INSERT INTO jobs (account_id, id, queue, payload, state, priority, attempts, max_attempts,
                  run_at, progress, result, last_error, created_at, updated_at, finished_at)
SELECT project_id, id, 'transcription',
       json_object('project_id', project_id, 'source', source, 'clip_id', clip_id,
                   'start_s', start_s, 'end_s', end_s, 'language', language),
       CASE status WHEN 'done' THEN 'done' WHEN 'failed' THEN 'dead'
                   WHEN 'cancelled' THEN 'cancelled' ELSE 'queued' END,
       0,
       CASE WHEN status IN ('done', 'failed') THEN 1 ELSE 0 END,
       3,
       created_at,
       CASE WHEN status IN ('queued', 'running') THEN 0 ELSE progress END,
       CASE WHEN status = 'done' THEN result END,
       CASE status WHEN 'failed' THEN COALESCE(error, '') WHEN 'cancelled' THEN 'cancelled'
                   ELSE '' END,
       created_at, updated_at,
       CASE WHEN status IN ('done', 'failed', 'cancelled') THEN updated_at END
FROM transcription_jobs;
DROP TABLE transcription_jobs;
