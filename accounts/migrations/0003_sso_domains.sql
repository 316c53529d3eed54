-- Proof that an organisation's single sign-on domains are its own (accounts.sso_domains).

-- One row per email domain an organisation's provider covers. The organisation proves
-- the domain by publishing token in a TXT record (_maxbooster-challenge.DOMAIN); the token
-- is public once published, so it is kept as it is. verified_at is the time of the last
-- successful check (NULL: pending, and ignored at sign-in); checked_at and last_error are
-- those of the last check, successful or not.
CREATE TABLE sso_domains (
    account_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    token TEXT NOT NULL,
    added_at DOUBLE PRECISION NOT NULL,
    verified_at DOUBLE PRECISION,
    checked_at DOUBLE PRECISION,
    last_error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, domain)
);
