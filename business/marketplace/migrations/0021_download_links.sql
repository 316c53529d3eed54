-- Marketplace: the download links already counted. A signed link (licence, file and
-- its expiry) counts one download against the licence's limit the first time it is
-- used; its other requests (the ranges a player or download manager asks for, a
-- resumed download) count nothing more. Rows of expired links are deleted as new ones
-- come.
CREATE TABLE mkt_download_links (
    account_id TEXT NOT NULL,
    licence_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (account_id, licence_id, file_id, expires)
);
