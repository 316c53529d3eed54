-- Dispatch (business/social/dispatch.py): which job of the job queue runs each target,
-- how often it was armed (each arming has its own idempotency key), its attempts in this
-- arming, and how long a target may stay 'publishing' before the sweeper looks at it.
ALTER TABLE social_post_targets ADD COLUMN job_id TEXT NOT NULL DEFAULT '';
ALTER TABLE social_post_targets ADD COLUMN arm INTEGER NOT NULL DEFAULT 0;
ALTER TABLE social_post_targets ADD COLUMN arm_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE social_post_targets ADD COLUMN publishing_until DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE social_post_targets ADD COLUMN published_at DOUBLE PRECISION;
CREATE INDEX social_post_targets_state ON social_post_targets (state, account_id, post_id);
