//! R13: the audit log is a hash chain. Each entry's `hash` is SHA-256 over its predecessor's
//! hash and the entry's canonical bytes, so a changed, removed or reordered entry breaks it.

use crate::Millis;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored audit entry. `details` is the JSON text exactly as stored, so that verification
/// hashes the same bytes that were written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub seq: i64,
    pub id: String,
    pub at: Millis,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub category: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// SHA-256(prev_hash ‖ canonical bytes), hex.
    pub fn compute_hash(&self) -> String {
        hex::encode(self.digest(&mut Vec::new()))
    }

    /// SHA-256(prev_hash ‖ canonical bytes), the canonical bytes written into `scratch` (which a
    /// verifier reuses from entry to entry: it runs this for every entry; countersign-bench,
    /// audit-verify).
    fn digest(&self, scratch: &mut Vec<u8>) -> [u8; 32] {
        use std::io::Write;
        scratch.clear();
        scratch.extend_from_slice(self.prev_hash.as_bytes());
        // Writing into a Vec, and serialising integers and strings, cannot fail.
        let _ = write!(scratch, "[{}", self.seq);
        let tail_at = scratch.len();
        let _ = serde_json::to_writer(&mut *scratch, &self.tail_fields());
        // The array's opening `[` becomes the `,` that follows the sequence number.
        if let Some(open) = scratch.get_mut(tail_at) {
            *open = b',';
        }
        Sha256::digest(&scratch[..]).into()
    }

    /// Whether `hash` is this entry's own (hex, as stored).
    fn hash_matches(&self, scratch: &mut Vec<u8>) -> bool {
        let mut stored = [0u8; 32];
        hex::decode_to_slice(&self.hash, &mut stored).is_ok() && stored == self.digest(scratch)
    }

    #[allow(clippy::type_complexity)]
    fn tail_fields(
        &self,
    ) -> (&String, Millis, &Option<String>, &String, &String, &String, &Option<String>, &Option<String>, &String) {
        (
            &self.id,
            self.at,
            &self.actor_id,
            &self.actor_name,
            &self.category,
            &self.action,
            &self.target_type,
            &self.target_id,
            &self.details,
        )
    }

    /// The entry's fields as a JSON array in a fixed order, so the encoding cannot be
    /// ambiguous: `[seq` followed by [`AuditRecord::canonical_tail`].
    pub fn canonical_bytes(&self) -> Vec<u8> {
        format!("[{}{}", self.seq, self.canonical_tail()).into_bytes()
    }

    /// The canonical bytes after the sequence number: everything of the entry that does not
    /// depend on its place in the chain. A store that assigns `seq` inside the database (with the
    /// chain head locked there) hashes `prev_hash ‖ "[" ‖ seq ‖ tail` itself, and the result is
    /// the same. Serialised straight from the fields (not through a `serde_json::Value`, which
    /// would copy every string first).
    pub fn canonical_tail(&self) -> String {
        // Integers, strings and options of strings always serialise; an error is impossible.
        let array = serde_json::to_string(&self.tail_fields()).unwrap_or_default();
        // `["id",…]` becomes `,"id",…]`, to follow `[seq`.
        format!(",{}", array.strip_prefix('[').unwrap_or(&array))
    }
}

/// The first entry that does not fit the chain, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainBreak {
    pub seq: i64,
    pub id: String,
    pub reason: String,
}

/// Checks entries one at a time, in `seq` order, so a million entries need no memory.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    checked: u64,
    /// Each entry's hashed bytes, in one buffer reused from entry to entry.
    scratch: Vec<u8>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier { expected_seq: 1, prev_hash: GENESIS_HASH.to_owned(), checked: 0, scratch: Vec::new() }
    }
}

impl ChainVerifier {
    /// A verifier for the rest of a chain whose entries up to `seq` ended with `hash`.
    pub fn resume(seq: i64, hash: &str) -> ChainVerifier {
        ChainVerifier { expected_seq: seq + 1, prev_hash: hash.to_owned(), checked: 0, scratch: Vec::new() }
    }

    pub fn push(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        let broken = |reason: String| ChainBreak { seq: record.seq, id: record.id.clone(), reason };
        if record.seq != self.expected_seq {
            return Err(broken(format!(
                "expected entry {} here but found entry {}: an entry was removed or reordered",
                self.expected_seq, record.seq
            )));
        }
        if record.prev_hash != self.prev_hash {
            return Err(broken("prev_hash does not match the previous entry's hash".into()));
        }
        if !record.hash_matches(&mut self.scratch) {
            return Err(broken("the entry's content does not match its hash: it was changed".into()));
        }
        self.expected_seq += 1;
        self.prev_hash.clone_from(&record.hash);
        self.checked += 1;
        Ok(())
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The last hash seen; compared against the stored chain head to detect a cut-off tail.
    pub fn head(&self) -> &str {
        &self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    seq,
                    id: format!("e{seq}"),
                    at: seq * 1000,
                    actor_id: Some("alice".into()),
                    actor_name: "alice".into(),
                    category: "request".into(),
                    action: "created".into(),
                    target_type: Some("app".into()),
                    target_id: Some("a1".into()),
                    details: "{}".into(),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = r.compute_hash();
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    fn verify(records: &[AuditRecord]) -> Result<u64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for r in records {
            v.push(r)?;
        }
        Ok(v.checked())
    }

    #[test]
    fn canonical_bytes_are_the_json_array_of_the_fields() {
        let mut r = chain(1).remove(0);
        r.actor_id = None;
        r.details = "{\"quote\":\"\\\"\",\"é\":\"\\u0001\"}".into();
        r.actor_name = "Zoë \"the admin\"\n".into();
        let expected = serde_json::json!([
            r.seq,
            r.id,
            r.at,
            r.actor_id,
            r.actor_name,
            r.category,
            r.action,
            r.target_type,
            r.target_id,
            r.details,
        ])
        .to_string();
        assert_eq!(String::from_utf8(r.canonical_bytes()).unwrap(), expected);
        // What a database that assigns `seq` itself hashes after "[seq".
        assert_eq!(format!("[{}{}", r.seq, r.canonical_tail()), expected);
        assert_eq!(
            r.compute_hash(),
            hex::encode(Sha256::digest(format!("{}{expected}", r.prev_hash))),
            "the hash covers prev_hash then the canonical bytes"
        );
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn a_chain_can_be_verified_from_the_middle() {
        let c = chain(5);
        let mut v = ChainVerifier::resume(c[1].seq, &c[1].hash);
        for r in &c[2..] {
            v.push(r).unwrap();
        }
        assert_eq!(v.checked(), 3);
        let mut wrong_start = ChainVerifier::resume(c[1].seq, &c[0].hash);
        assert!(wrong_start.push(&c[2]).is_err(), "the segment must continue the hash it was given");
    }

    #[test]
    fn a_changed_entry_is_named() {
        let mut c = chain(5);
        c[2].details = r#"{"evil":true}"#.into();
        let err = verify(&c).unwrap_err();
        assert_eq!((err.seq, err.id.as_str()), (3, "e3"));
        assert!(err.reason.contains("changed"));
    }

    #[test]
    fn a_rehashed_entry_breaks_its_successor() {
        let mut c = chain(5);
        c[2].actor_name = "mallory".into();
        c[2].hash = c[2].compute_hash();
        assert_eq!(verify(&c).unwrap_err().seq, 4);
    }

    #[test]
    fn removed_and_reordered_entries_are_found() {
        let mut removed = chain(5);
        removed.remove(1);
        assert_eq!(verify(&removed).unwrap_err().seq, 3);
        let mut reordered = chain(5);
        reordered.swap(1, 2);
        assert_eq!(verify(&reordered).unwrap_err().seq, 3);
    }
}
