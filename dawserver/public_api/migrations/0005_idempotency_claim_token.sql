-- Review 15 (M6): a claim's token fences keep/release and lease renewal, so a request
-- whose claim was taken over can no longer overwrite the answer of the one that took it.
ALTER TABLE api_idempotency ADD COLUMN claim_token TEXT;
