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
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(self.canonical_bytes());
        hex::encode(hasher.finalize())
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
        let fields = (
            &self.id,
            self.at,
            &self.actor_id,
            &self.actor_name,
            &self.category,
            &self.action,
            &self.target_type,
            &self.target_id,
            &self.details,
        );
        // Integers, strings and options of strings always serialise; an error is impossible.
        let array = serde_json::to_string(&fields).unwrap_or_default();
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
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier { expected_seq: 1, prev_hash: GENESIS_HASH.to_owned(), checked: 0 }
    }
}

impl ChainVerifier {
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
        if record.compute_hash() != record.hash {
            return Err(broken("the entry's content does not match its hash: it was changed".into()));
        }
        self.expected_seq += 1;
        self.prev_hash = record.hash.clone();
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
