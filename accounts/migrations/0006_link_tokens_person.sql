-- Links mailed to a person, found by whom and what for: voiding their older links and
-- counting how many were mailed lately (the mail limit, accounts.service.MAIL_LIMIT).
CREATE INDEX link_tokens_person ON link_tokens (person_id, purpose, created_at);
