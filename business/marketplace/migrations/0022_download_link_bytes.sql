-- Marketplace: what each download link has served. A link counts one download when
-- first used and one more for each further file's worth of bytes it serves, so ranges
-- that add up to one file (a player's, a download manager's, a resumed download) count
-- once, and the whole file asked again, in ranges or not, counts again. Links counted
-- before this migration have served an unknown amount: they start from one download
-- counted and nothing served.
ALTER TABLE mkt_download_links ADD COLUMN served BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mkt_download_links ADD COLUMN counted INTEGER NOT NULL DEFAULT 1;
