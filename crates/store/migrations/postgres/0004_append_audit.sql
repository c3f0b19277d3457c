-- Found by countersign-bench's lifecycle profile. Every write on every replica appends to the
-- audit chain, and holds the chain head's lock from taking it until its COMMIT, so the time the
-- head stays locked bounds how many writes commit a second. This function takes the lock, chains
-- the entries, writes them and moves the head; the store sends it and the COMMIT in one message.
--
-- The entries are the transaction-local setting `countersign.audit_entries` (set with a bound
-- parameter beforehand, so that the message itself carries no data): a JSON array of
-- {id, at, actorId, actorName, category, action, targetType, targetId, details, tail}; `tail` is
-- the entry's canonical bytes after its sequence number
-- (countersign-core `AuditRecord::canonical_tail`). The hash is SHA-256 over
-- prev_hash ‖ "[" ‖ seq ‖ tail: the bytes `AuditRecord::compute_hash` covers, so the chain
-- verifies the same wherever an entry was hashed.
CREATE FUNCTION countersign_append_audit() RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    head_seq BIGINT;
    head_hash TEXT;
    next_hash TEXT;
    entry JSON;
BEGIN
    SELECT seq, hash INTO head_seq, head_hash FROM audit_head WHERE id = 1 FOR UPDATE;
    FOR entry IN SELECT value FROM json_array_elements(current_setting('countersign.audit_entries')::json)
                 WITH ORDINALITY ORDER BY ordinality LOOP
        head_seq := head_seq + 1;
        next_hash := encode(sha256(convert_to(head_hash || '[' || head_seq::text || (entry->>'tail'), 'UTF8')), 'hex');
        INSERT INTO audit_log (seq, id, at, actor_id, actor_name, category, action, target_type, target_id, details,
                               prev_hash, hash)
        VALUES (head_seq, entry->>'id', (entry->>'at')::BIGINT, entry->>'actorId', entry->>'actorName',
                entry->>'category', entry->>'action', entry->>'targetType', entry->>'targetId', entry->>'details',
                head_hash, next_hash);
        head_hash := next_hash;
    END LOOP;
    UPDATE audit_head SET seq = head_seq, hash = head_hash WHERE id = 1;
END;
$$;
