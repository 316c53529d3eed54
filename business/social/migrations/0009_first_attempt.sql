-- Dispatch (business/social/dispatch.py): when a target's first publish attempt began. A
-- retry asks the network whether an earlier attempt got through, and only takes a remote
-- post with the same text for it if the network created that post since then.
ALTER TABLE social_post_targets ADD COLUMN first_attempt_at DOUBLE PRECISION;
