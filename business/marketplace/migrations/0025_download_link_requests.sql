-- Marketplace: each download link's requests are numbered (requests: the last number
-- given), and the bytes the latest one was charged for are kept (last_from up to
-- last_to). An answer cut short that ends after a later request of its link began (a
-- resume that came before the server noticed the drop) knows which of the bytes it sent
-- last that request asked for again, and credits them, so a download resumed at once
-- still counts once.
ALTER TABLE mkt_download_links ADD COLUMN requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mkt_download_links ADD COLUMN last_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mkt_download_links ADD COLUMN last_to BIGINT NOT NULL DEFAULT 0;
