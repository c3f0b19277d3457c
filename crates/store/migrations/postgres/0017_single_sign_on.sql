-- Issue 17, single sign-on (OIDC). An identity at a provider is its issuer and subject (OpenID
-- Connect Core §2: `sub` is unique only within its issuer); each is linked to at most one
-- account. An account is linked only by first sign-in when the provider creates accounts, by
-- the person from a signed-in session, never by a matching e-mail address. `controllers` is the
-- identity's R16 provenance, as for passwords and tokens: the accounts behind the session that
-- linked it (empty when the account was created by its first sign-in); a session opened with
-- the identity carries them.
CREATE TABLE sso_identities (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    email TEXT,
    controllers TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_sign_in_at BIGINT
);
CREATE UNIQUE INDEX sso_identities_issuer_subject ON sso_identities (issuer, subject);
CREATE INDEX sso_identities_account ON sso_identities (account_id);

-- A sign-in in progress, between the redirect to the provider and its return: kept in the
-- database (any replica may take the return), keyed by the hash of `state`, taken once
-- (deleted as it is read) and refused after `expires_at`. `browser_hash` binds it to the
-- browser that started it (the hash of a cookie only that browser holds). `link_account_id`
-- is set when a signed-in person links an identity to their own account; `link_controllers`
-- then holds the R16 provenance of the session that asked.
CREATE TABLE sso_logins (
    state_hash TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next_path TEXT NOT NULL,
    link_account_id TEXT,
    link_controllers TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sso_logins_expiry ON sso_logins (expires_at);
