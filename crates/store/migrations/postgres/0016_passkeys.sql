-- Issue 17: passkeys (WebAuthn) and step-up on decisions (R21).
--
-- A passkey is a credential (R9, R16): who registered it and who controls it are kept, as for a
-- password or a token. A removed passkey keeps its row (`removed_at`): the assertions stored
-- with approvals must still verify offline against the key that made them.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    -- base64url of the WebAuthn credential id, what an assertion names.
    credential_id TEXT NOT NULL,
    -- The webauthn-rs `Passkey`, as JSON (sign-in ceremonies run on it).
    credential TEXT NOT NULL,
    -- The public key in `countersign_core::step_up::CredentialPublicKey` text form.
    public_key TEXT NOT NULL,
    sign_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    -- R16: the accounts (other than the owner) that control it, as a JSON array.
    controllers TEXT NOT NULL DEFAULT '[]',
    last_used_at BIGINT,
    removed_at BIGINT
);
CREATE UNIQUE INDEX passkeys_credential_id ON passkeys (credential_id);
CREATE INDEX passkeys_account ON passkeys (account_id);

-- WebAuthn ceremonies in progress: kept in the database (any replica finishes what another
-- began), used once (deleted when finished) and only until `expires_at`.
-- `kind`: register, signIn, stepUp. `state`: the webauthn-rs state as JSON, or for a step-up
-- the context the challenge was derived from.
CREATE TABLE webauthn_ceremonies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    account_id TEXT,
    session_hash TEXT,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);

-- How a session was opened and when its owner last proved a credential (the fresh check that
-- adding a passkey to one's own account needs).
ALTER TABLE sessions ADD COLUMN verified_at BIGINT;
-- The passkey a session was opened with: removing the passkey ends its sessions.
ALTER TABLE sessions ADD COLUMN passkey_id TEXT;

-- R21: what each policy asks of a decision. Policies from before keep their behaviour (none).
ALTER TABLE access_policies ADD COLUMN step_up TEXT NOT NULL DEFAULT 'none';

-- R21: the assertion a decision was made with, as JSON ({passkeyId, nonce, assertion}), and
-- the passkey that made it.
ALTER TABLE approvals ADD COLUMN step_up TEXT;
ALTER TABLE approvals ADD COLUMN passkey_id TEXT;
