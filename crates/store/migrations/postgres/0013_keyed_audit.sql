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

-- The key never reaches the database, so entries are chained by the server, under the head's
-- lock (taken with SELECT … FOR UPDATE); this writes what it chained and moves the head, in the
-- message that also carries the COMMIT. The old function chained inside the database without a
-- key: dropping it also stops a server of an older version from appending unkeyed entries.
DROP FUNCTION countersign_append_audit();
CREATE FUNCTION countersign_write_audit(entries JSON) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    head_seq BIGINT;
    head_hash TEXT;
    first JSON := entries->0;
    last JSON := entries->(json_array_length(entries) - 1);
BEGIN
    SELECT seq, hash INTO head_seq, head_hash FROM audit_head WHERE id = 1 FOR UPDATE;
    IF (first->>'seq')::BIGINT <> head_seq + 1 OR first->>'prev_hash' <> head_hash THEN
        RAISE EXCEPTION 'audit entries were chained after entry % but the head is entry %', (first->>'seq')::BIGINT - 1, head_seq;
    END IF;
    INSERT INTO audit_log (seq, id, at, actor_id, actor_name, category, action, target_type, target_id, details,
                           prev_hash, hash, entry, link, key_id)
    SELECT seq, id, at, actor_id, actor_name, category, action, target_type, target_id, details,
           prev_hash, hash, entry, link, key_id
    FROM json_to_recordset(entries) AS e(seq BIGINT, id TEXT, at BIGINT, actor_id TEXT, actor_name TEXT,
                                          category TEXT, action TEXT, target_type TEXT, target_id TEXT,
                                          details TEXT, prev_hash TEXT, hash TEXT, entry TEXT, link TEXT,
                                          key_id TEXT);
    UPDATE audit_head SET seq = (last->>'seq')::BIGINT, hash = last->>'hash', key_id = last->>'key_id' WHERE id = 1;
END;
$$;

-- Signed checkpoints (`body` is the checkpoint's JSON, signature included), kept here for the
-- export sinks and the verify report; the ones that count are also written outside the database.
CREATE TABLE audit_checkpoints (
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (seq, kind)
);
CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit checkpoints are append-only';
END;
$$;
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();
