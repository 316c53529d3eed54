-- Accounts (accounts.store.AccountStore). An account is a person or an organisation
-- (kind: person | organisation | team); account_id is the distribution column.
-- Tables found by a secret or an address carry lookup_key instead (database.sharding).
-- Times are seconds since the epoch.
CREATE TABLE accounts (
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT,
    email_verified_at DOUBLE PRECISION,
    password_hash TEXT,
    status TEXT NOT NULL,
    plan TEXT NOT NULL,
    region TEXT NOT NULL,
    totp_secret TEXT,
    totp_last_step BIGINT,
    totp_enabled_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id)
);

-- A person found by a normalised email address (one address, one person).
CREATE TABLE account_emails (
    lookup_key TEXT NOT NULL,
    person_id TEXT NOT NULL,
    PRIMARY KEY (lookup_key)
);

-- A person found by a sign-in provider's subject (issuer + subject).
CREATE TABLE account_identities (
    lookup_key TEXT NOT NULL,
    person_id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (lookup_key)
);

-- People in organisations, with a role: owner | admin | member | viewer | a plug-in's role.
CREATE TABLE memberships (
    account_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, person_id)
);
CREATE INDEX memberships_person ON memberships (person_id);

-- Invitations into an organisation, by email, accepted through a link token.
CREATE TABLE invitations (
    account_id TEXT NOT NULL,
    invitation_id TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    accepted_by TEXT,
    accepted_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, invitation_id)
);

-- Single-use, expiring links (verify, reset, invite, a pending second factor):
-- only the hash of the token is kept.
CREATE TABLE link_tokens (
    lookup_key TEXT NOT NULL,
    purpose TEXT NOT NULL,
    person_id TEXT NOT NULL,
    data TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    used_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (lookup_key)
);

-- Signed-in sessions on the embedded default (Redis holds them when configured):
-- only the hash of the session id is kept.
CREATE TABLE sessions (
    lookup_key TEXT NOT NULL,
    session_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    last_seen_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    user_agent TEXT NOT NULL,
    address TEXT NOT NULL,
    PRIMARY KEY (lookup_key)
);
CREATE INDEX sessions_person ON sessions (person_id);

-- API keys: only the hash is kept; owner_id is the account the key acts for.
CREATE TABLE api_keys (
    lookup_key TEXT NOT NULL,
    key_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    created_by TEXT NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    test INTEGER NOT NULL,
    expires_at DOUBLE PRECISION,
    last_used_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (lookup_key)
);
CREATE INDEX api_keys_owner ON api_keys (owner_id);

-- Second-factor recovery codes (hashes), each usable once.
CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    used_at DOUBLE PRECISION,
    PRIMARY KEY (account_id, code_hash)
);

-- Failed sign-ins per subject (an address, an email, an account) for growing delays.
CREATE TABLE sign_in_failures (
    lookup_key TEXT NOT NULL,
    failures INTEGER NOT NULL,
    last_failure_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (lookup_key)
);

-- Security events, readable by an organisation's admins and by the person.
CREATE TABLE audit_log (
    account_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    address TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (account_id, event_id)
);
CREATE INDEX audit_log_at ON audit_log (account_id, at);

-- Which account owns a project (its project list).
CREATE TABLE account_projects (
    account_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, project_id)
);
CREATE INDEX account_projects_project ON account_projects (project_id);

-- Project roles (owner | editor | viewer) granted to a person or a team.
CREATE TABLE project_grants (
    project_id TEXT NOT NULL,
    grantee_id TEXT NOT NULL,
    role TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, grantee_id)
);
CREATE INDEX project_grants_grantee ON project_grants (grantee_id);
