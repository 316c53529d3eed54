-- Marketplace: each download link's requests are numbered (requests: the last number
-- given). An answer cut short that ends after a later request of its link began (a
-- resume that came before the server noticed the drop) keeps the bytes it sent last
-- (resend_from, resend_to) for that later request, by number (resend_for; 0: for the
-- next request that asks for them, as before): when the later request ends, the bytes
-- it sent again of them are credited, so a download resumed at once still counts once.
ALTER TABLE mkt_download_links ADD COLUMN requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mkt_download_links ADD COLUMN resend_for INTEGER NOT NULL DEFAULT 0;
