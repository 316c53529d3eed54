-- Organisations' own OpenID providers (single sign-on, accounts.sso) and session id
-- rotation after a role change (accounts.sessions).

-- A session whose person's roles changed since its id was issued (1): the next request
-- with it gets a new id and the old one ends.
ALTER TABLE sessions ADD COLUMN rotate INTEGER NOT NULL DEFAULT 0;

-- One OpenID provider per organisation. The client secret is kept encrypted (Fernet,
-- with a key derived from the server's secret) and never answered; domains is a JSON
-- list of the email domains the provider covers.
CREATE TABLE sso_providers (
    account_id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    domains TEXT NOT NULL,
    default_role TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id)
);
