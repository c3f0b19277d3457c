-- Issue 16: exporting the audit log to SIEM sinks (syslog, webhooks). Not one outbox row per
-- entry, which would add a write to every audited change: each sink has a cursor here, moved
-- only after the sink accepted what came before it, and a lease so that one replica at a time
-- sends to a sink.
CREATE TABLE audit_export_cursors (
    sink TEXT PRIMARY KEY,
    -- The last audit entry the sink accepted.
    entry_seq BIGINT NOT NULL,
    -- The newest `at` of a checkpoint the sink accepted.
    checkpoint_at BIGINT NOT NULL,
    -- Which exporter may send to the sink, and until when (Unix ms).
    lease_holder TEXT,
    lease_until BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The checkpoints each sink accepted lately. Replicas make checkpoints with their own clocks and
-- save them a moment later, so one may arrive with an `at` older than one already sent: a sink
-- is sent every checkpoint of the last hour before its newest that it has not accepted yet.
CREATE TABLE audit_export_checkpoints (
    sink TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (sink, seq, kind)
);

CREATE INDEX audit_checkpoints_at ON audit_checkpoints (at);
