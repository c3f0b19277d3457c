-- R16: who controls each live credential. Each column holds a JSON array of the ids of the
-- accounts (other than the owner) that control the credential: the account that set a password
-- or made a token, and whoever controlled the credential that account acted through. '[]' means
-- the owner alone (or the system, at first start). Credentials older than this migration
-- have no recorded provenance and count as the owner's own.
ALTER TABLE accounts ADD COLUMN password_controllers TEXT NOT NULL DEFAULT '[]';
-- A password another account set is temporary: replaced at first sign-in, no approving before.
ALTER TABLE accounts ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN controllers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_tokens ADD COLUMN controllers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_tokens ADD COLUMN created_by TEXT;
-- Who will control the password a held request sets, once it is completed.
ALTER TABLE requests ADD COLUMN secret_controllers TEXT;
-- Control recorded when a request was submitted and when each approval was given, so that
-- shedding a credential afterwards (revoking a token) does not shed the control it gave.
ALTER TABLE requests ADD COLUMN requester_controllers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE approvals ADD COLUMN controllers TEXT NOT NULL DEFAULT '[]';
