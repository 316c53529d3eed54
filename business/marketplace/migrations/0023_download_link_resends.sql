-- Marketplace: the bytes a download link's answer sent last before its connection
-- dropped (at most 16 MiB of them, from resend_from up to resend_to; none when equal).
-- They may have been lost with the connection (socket buffers) rather than reached the
-- buyer, so the resume that asks for them again gets them free, once; what an answer
-- cut short never sent is credited back to served when it ends.
ALTER TABLE mkt_download_links ADD COLUMN resend_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mkt_download_links ADD COLUMN resend_to BIGINT NOT NULL DEFAULT 0;
