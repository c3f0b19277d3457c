-- Issue 16: a keyed audit chain with signed checkpoints (R13, revised).
--
-- `entry` holds each new entry's canonical bytes (countersign-core `AuditRecord::canonical_bytes`):
-- verification hashes them as stored and entries are read from them, so the columns beside them
-- are only an index for filters, and `details`, which no filter reads, is left empty. `link` is HMAC-SHA-256 of `hash` under the audit key `key_id`,
-- which lives in a file outside the database. Entries written before this migration keep NULL
-- in all three: the public chain still covers them, and the first keyed entry's link covers the
-- public chain.
ALTER TABLE audit_log ADD COLUMN entry TEXT;
ALTER TABLE audit_log ADD COLUMN link TEXT;
ALTER TABLE audit_log ADD COLUMN key_id TEXT;
ALTER TABLE audit_head ADD COLUMN key_id TEXT;

-- Signed checkpoints (`body` is the checkpoint's JSON, signature included), kept here for the
-- export sinks and the verify report; the ones that count are also written outside the database.
CREATE TABLE audit_checkpoints (
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (seq, kind)
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
