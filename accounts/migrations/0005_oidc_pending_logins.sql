-- Started OpenID Connect sign-ins (accounts.pending_logins), until their callback.

-- A sign-in may start on one server process and come back to another, so it is kept
-- here, found by the hash of its state (a lookup table: distributed by lookup_key).
-- data holds the login (nonce, PKCE verifier, redirect, provider, where to return) as
-- JSON; rows live at most ten minutes and are taken once.
CREATE TABLE oidc_pending_logins (
    lookup_key TEXT NOT NULL PRIMARY KEY,
    data TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX oidc_pending_logins_created_at ON oidc_pending_logins (created_at);
