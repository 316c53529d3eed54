-- Usage of each API key per UTC day: requests, errors (4xx and 5xx answers), rate-limit
-- refusals (429, counted in errors too) and the latency histogram (one row per bucket).
-- Flushed from each server process's in-memory tallies with additive upserts, so any
-- number of processes add to the same rows. Distributed by account_id (the Citus rule):
-- it leads both primary keys.
CREATE TABLE api_usage (
    account_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    day TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    latency_ms_sum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, key_id, day)
);
CREATE TABLE api_usage_latency (
    account_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    day TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (account_id, key_id, day, bucket)
);
