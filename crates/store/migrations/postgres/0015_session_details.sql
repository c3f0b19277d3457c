-- Issue 17: each person lists their sessions and tokens and ends any. A session is keyed by the
-- hash of its cookie secret, which must never reach a page, so each gets a public id of its own
-- (random, unrelated to the secret) to be named and ended by. Sessions from before this
-- migration have none and end here: their owners sign in once more.
ALTER TABLE sessions ADD COLUMN public_id TEXT NOT NULL DEFAULT '';
DELETE FROM sessions WHERE public_id = '';
CREATE UNIQUE INDEX sessions_public_id ON sessions (public_id);
-- Where and with what a session was opened, and when it was last used (updated at most once a
-- minute, so a request is not also a write). Address and user agent are capped when written.
ALTER TABLE sessions ADD COLUMN last_used_at BIGINT;
ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
-- Where and with what an API token was last used, updated with its last_used_at.
ALTER TABLE api_tokens ADD COLUMN last_used_address TEXT;
ALTER TABLE api_tokens ADD COLUMN last_used_user_agent TEXT;
