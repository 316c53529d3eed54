-- The genres of catalogue entities (business/analytics/catalog.py, benchmark.py): as a
-- platform's identity reported them (source: the platform) or as a person set them
-- (source: manual, which then stands alone). genre: lower case, single spaces.
CREATE TABLE analytics_genres (
    account_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    genre TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, entity_id, genre, source)
);
