-- Notification channels (webhook, Slack, Teams, e-mail) and the durable outbox: a notification
-- is written in the same transaction as the change that causes it, then delivered with retries.

CREATE TABLE notification_channels (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    display_name TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    -- JSON {url, signingSecret}: shown only redacted.
    secret TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE notification_outbox (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    request_id TEXT,
    channel_id TEXT NOT NULL,
    recipient TEXT,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_outbox_status ON notification_outbox (status, created_at);

-- The expiring-soon reminder is sent once per request.
ALTER TABLE requests ADD COLUMN reminded_at BIGINT;

-- Notification kinds an account chose not to receive by e-mail (JSON array).
ALTER TABLE accounts ADD COLUMN notification_opt_outs TEXT NOT NULL DEFAULT '[]';
