-- A kept answer over 64 KiB, or not UTF-8 text, is stored compressed (zlib, then
-- base64 in the text column): a social bulk upload's report of 50,000 rows is kept for
-- replay within the 4 MiB bound instead of being run again. NULL: the body as is.
ALTER TABLE api_idempotency ADD COLUMN body_encoding TEXT;
