-- Sign-in attempt budgets (issue 15): one counter per bucket (an account's untrusted clients, a
-- client address, one trusted device), reserved by a single upsert before a password is checked,
-- so concurrent guesses on any number of replicas cannot overrun the limit. They replace the
-- list of failures, which was counted and then checked in two steps.
CREATE TABLE sign_in_budgets (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    used BIGINT NOT NULL
);
CREATE INDEX sign_in_budgets_window ON sign_in_budgets (window_start);
DROP TABLE login_failures;

-- Keys the server makes for itself and every replica shares: the sign-in key signs device
-- cookies and sign-in form tokens. They grant an attempt budget, never access (see auth.rs).
CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
