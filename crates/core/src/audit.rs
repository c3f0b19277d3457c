//! R13: the audit log is a keyed hash chain with signed checkpoints.
//!
//! Three layers, each closing what the one before leaves open to someone who can write the
//! database:
//! - **The public chain.** Each entry's `hash` is SHA-256 over its predecessor's hash (hex) and
//!   the entry's canonical bytes, so a changed, removed or reordered entry breaks it, unless the
//!   writer recomputes every later hash, which needs no secret.
//! - **The keyed link.** Each entry's `link` is HMAC-SHA-256 of its `hash` under an audit key that
//!   never lives in the database. The hash commits to every entry before it, so one MAC per entry
//!   keys the whole prefix: a recomputed chain has links nobody without the key can make. A key
//!   rotation starts a segment whose first link is made under both keys (the new key over the old
//!   key's MAC), so the old key's holder vouches for the change of key.
//! - **Signed checkpoints.** Ed25519 signatures over `(kind, seq, hash, link, at)` of the chain's
//!   head, written outside the database and to every export sink. With the public key alone an
//!   auditor checks that the chain still passes through every checkpoint (the public chain
//!   reaches each signed hash), which also finds a cut-off tail, and a chain downgraded to
//!   unkeyed entries after keying began.
//!
//! Entries written before keying began (databases older than the keyed chain) have no link; they
//! stay verifiable by the public chain, the first keyed entry's link covers them, and a
//! `keyingStarted` checkpoint marks where keying began.

use crate::Millis;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

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
    /// HMAC-SHA-256 of `hash` under the audit key `key_id` (hex); `None` before keying began.
    pub link: Option<String>,
    pub key_id: Option<String>,
}

impl AuditRecord {
    /// SHA-256(prev_hash ‖ canonical bytes), hex.
    pub fn compute_hash(&self) -> String {
        hex::encode(chain_hash(&self.prev_hash, &self.canonical_bytes()))
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

    /// The entry's fields as a JSON array in a fixed order, so the encoding cannot be ambiguous:
    /// `[seq, id, at, actorId, actorName, category, action, targetType, targetId, details]`.
    /// Serialised straight from the fields (not through a `serde_json::Value`, which would copy
    /// every string first). JSON escapes every control character, so these bytes never hold a
    /// raw newline: a verifier may read entries one per line.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut bytes = format!("[{}", self.seq).into_bytes();
        let tail_at = bytes.len();
        // Integers, strings and options of strings always serialise; an error is impossible.
        let _ = serde_json::to_writer(&mut bytes, &self.tail_fields());
        // The tail's opening `[` becomes the `,` that follows the sequence number.
        if let Some(open) = bytes.get_mut(tail_at) {
            *open = b',';
        }
        bytes
    }

    /// The entry stored as its canonical bytes (which verification checked) and its place in
    /// the chain: the fields are read from the bytes, never from columns beside them, so what is
    /// shown is what was verified.
    pub fn from_canonical(
        canonical: &[u8],
        prev_hash: String,
        hash: String,
        link: Option<String>,
        key_id: Option<String>,
    ) -> Result<AuditRecord, String> {
        type Fields =
            (i64, String, Millis, Option<String>, String, String, String, Option<String>, Option<String>, String);
        let (seq, id, at, actor_id, actor_name, category, action, target_type, target_id, details): Fields =
            serde_json::from_slice(canonical).map_err(|e| format!("the entry's canonical bytes do not parse: {e}"))?;
        Ok(AuditRecord {
            seq,
            id,
            at,
            actor_id,
            actor_name,
            category,
            action,
            target_type,
            target_id,
            details,
            prev_hash,
            hash,
            link,
            key_id,
        })
    }
}

/// SHA-256(prev_hash (hex) ‖ canonical bytes): the public chain.
pub fn chain_hash(prev_hash: impl AsRef<[u8]>, canonical: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_ref());
    hasher.update(canonical);
    hasher.finalize().into()
}

/// One audit key: a 256-bit HMAC-SHA-256 secret and its id (the first 16 hex digits of the
/// SHA-256 of the secret, so an id names its key and a key file cannot mislabel one).
#[derive(Clone)]
pub struct AuditKey {
    id: String,
    /// Keyed once; each MAC starts from a clone (the key's pads are already hashed).
    mac: HmacSha256,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl AuditKey {
    pub fn new(secret: &[u8; 32]) -> AuditKey {
        let id = hex::encode(&Sha256::digest(secret)[..8]);
        // HMAC takes a key of any length.
        let mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        AuditKey { id, mac }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

/// Every audit key a deployment has used, oldest first; the newest makes new links.
#[derive(Debug, Clone)]
pub struct AuditKeys {
    keys: Vec<AuditKey>,
}

impl AuditKeys {
    /// `None` when `keys` is empty: a keyring always has a current key.
    pub fn new(keys: Vec<AuditKey>) -> Option<AuditKeys> {
        (!keys.is_empty()).then_some(AuditKeys { keys })
    }

    pub fn current(&self) -> &AuditKey {
        // `new` refuses an empty list.
        &self.keys[self.keys.len() - 1]
    }

    pub fn get(&self, id: &str) -> Option<&AuditKey> {
        self.keys.iter().find(|key| key.id == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|key| key.id.as_str())
    }
}

/// An entry's link: HMAC(key, hash); at the first entry under a new key, HMAC(key,
/// HMAC(previous key, hash)), so the segment starts under both keys.
pub fn link(key: &AuditKey, previous_key: Option<&AuditKey>, hash: &[u8; 32]) -> [u8; 32] {
    match previous_key {
        Some(previous) if previous.id != key.id => key.mac(&previous.mac(hash)),
        _ => key.mac(hash),
    }
}

/// Where the chain ends: what the next entry continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
    /// The key of the last entry's link; `None` before keying began.
    pub key_id: Option<String>,
}

impl ChainHead {
    pub fn genesis() -> ChainHead {
        ChainHead { seq: 0, hash: GENESIS_HASH.to_owned(), key_id: None }
    }
}

/// Why an entry cannot be chained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("the audit chain is keyed, but no audit key was given: writing to it needs the audit key file")]
    KeyRequired,
    #[error("the chain's last entry was linked under audit key {0}, which the audit key file does not hold")]
    UnknownKey(String),
}

/// Gives each new entry its place in the chain after `head`: seq, prev_hash, hash and, with
/// keys, link. Once the chain is keyed it stays keyed: without keys nothing is chained after a
/// keyed entry.
pub fn chain_entries(
    head: &mut ChainHead,
    keys: Option<&AuditKeys>,
    records: &mut [AuditRecord],
) -> Result<(), ChainError> {
    let previous_key = match (&head.key_id, keys) {
        (Some(_), None) => return Err(ChainError::KeyRequired),
        (Some(id), Some(keys)) => Some(keys.get(id).ok_or_else(|| ChainError::UnknownKey(id.clone()))?),
        (None, _) => None,
    };
    let mut previous_key = previous_key.cloned();
    for record in records {
        head.seq += 1;
        record.seq = head.seq;
        record.prev_hash = std::mem::take(&mut head.hash);
        let hash = chain_hash(&record.prev_hash, &record.canonical_bytes());
        record.hash = hex::encode(hash);
        if let Some(keys) = keys {
            let key = keys.current();
            record.link = Some(hex::encode(link(key, previous_key.as_ref(), &hash)));
            record.key_id = Some(key.id.clone());
            previous_key = Some(key.clone());
        }
        head.hash.clone_from(&record.hash);
        head.key_id.clone_from(&record.key_id);
    }
    Ok(())
}

/// What a checkpoint marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CheckpointKind {
    /// The chain's head, every N entries or T seconds.
    Periodic,
    /// The last entry before keying began: every later entry must be keyed.
    KeyingStarted,
}

impl CheckpointKind {
    pub const ALL: [CheckpointKind; 2] = [CheckpointKind::Periodic, CheckpointKind::KeyingStarted];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointKind::Periodic => "periodic",
            CheckpointKind::KeyingStarted => "keyingStarted",
        }
    }
}

/// A signed statement that the chain's entry `seq` had `hash` (and `link`) at time `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub kind: CheckpointKind,
    pub seq: i64,
    pub hash: String,
    pub link: Option<String>,
    /// When the checkpoint was made.
    pub at: Millis,
    /// The signer's Ed25519 public key (hex), for reference: a verifier checks the signature
    /// against the key it trusts, never against this one.
    pub public_key: String,
    /// Ed25519 over [`Checkpoint::signed_bytes`] (hex).
    pub signature: String,
}

impl Checkpoint {
    /// `countersign-audit-checkpoint/1`, then kind, seq, hash, link (or `-`) and at, one per line.
    pub fn signed_bytes(kind: CheckpointKind, seq: i64, hash: &str, link: Option<&str>, at: Millis) -> Vec<u8> {
        format!("countersign-audit-checkpoint/1\n{}\n{seq}\n{hash}\n{}\n{at}", kind.as_str(), link.unwrap_or("-"))
            .into_bytes()
    }

    pub fn sign(signer: &CheckpointSigner, kind: CheckpointKind, head: &ChainHeadEntry, at: Millis) -> Checkpoint {
        let signature =
            signer.key.sign(&Checkpoint::signed_bytes(kind, head.seq, &head.hash, head.link.as_deref(), at));
        Checkpoint {
            kind,
            seq: head.seq,
            hash: head.hash.clone(),
            link: head.link.clone(),
            at,
            public_key: signer.public_key().to_hex(),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Whether `trusted` signed this checkpoint.
    pub fn signed_by(&self, trusted: &PublicKey) -> bool {
        let mut signature = [0u8; 64];
        if hex::decode_to_slice(&self.signature, &mut signature).is_err() {
            return false;
        }
        let message = Checkpoint::signed_bytes(self.kind, self.seq, &self.hash, self.link.as_deref(), self.at);
        trusted.0.verify(&message, &Signature::from_bytes(&signature)).is_ok()
    }
}

/// The checkpoints in `text`: a JSON array of checkpoints, the API's list of them, or one JSON
/// object per line (the checkpoint file, or an export sink's messages, whose audit entries are
/// passed over). A line may carry a prefix before its object, as a syslog file's lines do.
pub fn parse_checkpoints(text: &str) -> Result<Vec<Checkpoint>, String> {
    let is_checkpoint = |value: &serde_json::Value| value.get("signature").is_some() && value.get("kind").is_some();
    let trimmed = text.trim_start();
    // `GET /api/v1/audit/checkpoints` answers `{"publicKey": …, "value": [checkpoints]}`.
    let listed = match serde_json::from_str::<serde_json::Value>(trimmed) {
        Ok(serde_json::Value::Object(mut page)) => page.remove("value").filter(serde_json::Value::is_array),
        _ => None,
    };
    if trimmed.starts_with('[') || listed.is_some() {
        let values: Vec<serde_json::Value> = match listed {
            Some(values) => serde_json::from_value(values).map_err(|e| e.to_string())?,
            None => serde_json::from_str(trimmed).map_err(|e| format!("not a JSON array of checkpoints: {e}"))?,
        };
        return values
            .into_iter()
            .filter(is_checkpoint)
            .map(|v| serde_json::from_value(v).map_err(|e| format!("not a checkpoint: {e}")))
            .collect();
    }
    let mut checkpoints = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let Some(start) = line.find('{') else { continue };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line[start..]) else { continue };
        if is_checkpoint(&value) {
            checkpoints.push(
                serde_json::from_value(value).map_err(|e| format!("line {}: not a checkpoint: {e}", number + 1))?,
            );
        }
    }
    if checkpoints.is_empty() && !text.trim().is_empty() {
        return Err("no checkpoint found in it".into());
    }
    Ok(checkpoints)
}

/// The entry a checkpoint is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHeadEntry {
    pub seq: i64,
    pub hash: String,
    pub link: Option<String>,
}

/// The Ed25519 key that signs checkpoints; kept like the audit key, outside the database.
pub struct CheckpointSigner {
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner").field("public_key", &self.public_key().to_hex()).finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    pub fn from_seed(seed: &[u8; 32]) -> CheckpointSigner {
        CheckpointSigner { key: SigningKey::from_bytes(seed) }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }
}

/// An Ed25519 public key, written as 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_hex(text: &str) -> Result<PublicKey, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| "an Ed25519 public key is 64 hex digits".to_owned())?;
        VerifyingKey::from_bytes(&bytes).map(PublicKey).map_err(|_| "not an Ed25519 public key".to_owned())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }
}

/// What kind of break verification found; every kind means the log was rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BreakKind {
    /// An entry's content no longer matches its hash.
    Changed,
    /// An entry is missing, or out of order.
    Removed,
    /// A keyed link does not match: the chain was recomputed without the key.
    Link,
    /// A link was made under a key the verifier does not hold.
    UnknownKey,
    /// An entry has no link where the chain is keyed.
    Unkeyed,
    /// The chain does not pass through a signed checkpoint.
    Checkpoint,
    /// A checkpoint's signature does not verify: it was forged or altered.
    Signature,
    /// The log ends before a checkpoint or its stored head: entries were cut off the end.
    Truncated,
}

impl BreakKind {
    pub const ALL: [BreakKind; 8] = [
        BreakKind::Changed,
        BreakKind::Removed,
        BreakKind::Link,
        BreakKind::UnknownKey,
        BreakKind::Unkeyed,
        BreakKind::Checkpoint,
        BreakKind::Signature,
        BreakKind::Truncated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Changed => "changed",
            BreakKind::Removed => "removed",
            BreakKind::Link => "link",
            BreakKind::UnknownKey => "unknownKey",
            BreakKind::Unkeyed => "unkeyed",
            BreakKind::Checkpoint => "checkpoint",
            BreakKind::Signature => "signature",
            BreakKind::Truncated => "truncated",
        }
    }
}

/// The first entry that does not fit the chain, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainBreak {
    pub seq: i64,
    pub id: String,
    pub kind: BreakKind,
    pub reason: String,
}

/// One stored entry as verification reads it: its canonical bytes and its place in the chain.
/// The hash and the link are the stored bytes: anything but the lower-case hex of the digest
/// they should be does not match it, so they need not be checked as text first (which was
/// 5 % of a verify, countersign-bench).
#[derive(Debug, Clone, Copy)]
pub struct ChainEntry<'a> {
    pub seq: i64,
    pub canonical: &'a [u8],
    pub hash: &'a [u8],
    pub link: Option<&'a [u8]>,
    pub key_id: Option<&'a str>,
}

/// What verification holds besides the entries.
#[derive(Debug, Default)]
pub struct Evidence<'a> {
    /// The audit keys; without them links are not checked (an auditor's offline check).
    pub keys: Option<&'a AuditKeys>,
    /// Checkpoints from the file, the database and any export, in any order.
    pub checkpoints: Vec<Checkpoint>,
    /// The key checkpoints must be signed with; without it checkpoints are not used.
    pub public_key: Option<PublicKey>,
}

/// Checks entries one at a time, in `seq` order, so a million entries need no memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier<'a> {
    expected_seq: i64,
    /// The hash the next entry continues: always the hex of a digest once an entry is checked.
    prev_hash: Vec<u8>,
    prev_key: Option<&'a AuditKey>,
    keyed: bool,
    keys: Option<&'a AuditKeys>,
    /// Signed checkpoints by seq, and the next one the walk reaches.
    checkpoints: Vec<Checkpoint>,
    next_checkpoint: usize,
    /// Entries after this must be keyed (a `keyingStarted` checkpoint).
    keyed_after: Option<i64>,
    checked: u64,
    links_checked: u64,
    /// For a walk begun [`after`](Self::after) an entry: that entry, taken as stored until the
    /// walk before it is [joined](Self::join) to this one.
    boundary: Option<Boundary>,
}

/// The entry a segment's walk begins after, kept to check it when the segments are joined.
#[derive(Debug, Clone)]
struct Boundary {
    seq: i64,
    canonical: Vec<u8>,
    hash: Vec<u8>,
    link: Option<Vec<u8>>,
    key_id: Option<String>,
}

impl Boundary {
    fn entry(&self) -> ChainEntry<'_> {
        ChainEntry {
            seq: self.seq,
            canonical: &self.canonical,
            hash: &self.hash,
            link: self.link.as_deref(),
            key_id: self.key_id.as_deref(),
        }
    }
}

fn broken(seq: i64, canonical: &[u8], kind: BreakKind, reason: String) -> ChainBreak {
    // The id is the canonical array's second member; read only when something is wrong.
    let id = serde_json::from_slice::<Vec<serde_json::Value>>(canonical)
        .ok()
        .and_then(|fields| fields.get(1).and_then(|id| id.as_str()).map(str::to_owned))
        .unwrap_or_default();
    ChainBreak { seq, id, kind, reason }
}

/// The sequence number the canonical bytes start with (`[seq,`).
fn canonical_seq(canonical: &[u8]) -> Option<i64> {
    let digits = canonical.strip_prefix(b"[")?;
    let end = digits.iter().position(|&b| b == b',')?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// A nibble's lower-case hex digit, by arithmetic rather than a table, so that encoding a
/// digest compiles to vector instructions: `9 - n` wraps to a number with its top bit set
/// exactly when `n` is a letter.
const fn hex_digit(nibble: u8) -> u8 {
    nibble + b'0' + (b'a' - b'0' - 10) * (9u8.wrapping_sub(nibble) >> 7)
}

/// A digest's lower-case hex, as it is stored, without allocating.
fn hex(digest: &[u8; 32]) -> [u8; 64] {
    let mut hex = [0u8; 64];
    for (pair, &byte) in hex.chunks_exact_mut(2).zip(digest) {
        pair[0] = hex_digit(byte >> 4);
        pair[1] = hex_digit(byte & 0x0f);
    }
    hex
}

/// Whether stored bytes are `expected` (a digest's [`hex`]). Encoding the digest is cheaper
/// than decoding what is stored, and every byte is compared whatever differs first: a link is
/// a MAC. (Two of these per entry were a fifth of the chain check with a table lookup per
/// byte, countersign-bench.)
fn hex_eq(stored: &[u8], expected: &[u8; 64]) -> bool {
    stored.len() == expected.len() && stored.iter().zip(expected).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

impl<'a> ChainVerifier<'a> {
    /// A verifier from the chain's start. Checkpoints not signed by the trusted key are
    /// refused here, so that a forged one cannot vouch for a rewritten chain.
    pub fn new(evidence: Evidence<'a>) -> Result<ChainVerifier<'a>, ChainBreak> {
        let mut checkpoints = Vec::new();
        if let Some(trusted) = &evidence.public_key {
            for checkpoint in evidence.checkpoints {
                if !checkpoint.signed_by(trusted) {
                    return Err(ChainBreak {
                        seq: checkpoint.seq,
                        id: String::new(),
                        kind: BreakKind::Signature,
                        reason: format!(
                            "the checkpoint for entry {} made at {} is not signed by the audit signing key",
                            checkpoint.seq, checkpoint.at
                        ),
                    });
                }
                checkpoints.push(checkpoint);
            }
        }
        checkpoints.sort_by_key(|c| (c.seq, c.at));
        checkpoints.dedup_by(|a, b| a.seq == b.seq && a.hash == b.hash && a.link == b.link && a.kind == b.kind);
        let keyed_after = checkpoints.iter().filter(|c| c.kind == CheckpointKind::KeyingStarted).map(|c| c.seq).min();
        let mut verifier = ChainVerifier {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.as_bytes().to_vec(),
            prev_key: None,
            keyed: false,
            keys: evidence.keys,
            checkpoints,
            next_checkpoint: 0,
            keyed_after,
            checked: 0,
            links_checked: 0,
            boundary: None,
        };
        verifier.pass_checkpoints(0, GENESIS_HASH.as_bytes(), None, b"")?;
        Ok(verifier)
    }

    /// A verifier for the rest of a chain whose entries up to `head` are taken as verified (the
    /// benchmark times the check of entries it holds in memory).
    pub fn resume(evidence: Evidence<'a>, head: &ChainHead) -> Result<ChainVerifier<'a>, ChainBreak> {
        let mut verifier = ChainVerifier::new(evidence)?;
        verifier.expected_seq = head.seq + 1;
        verifier.prev_hash = head.hash.as_bytes().to_vec();
        verifier.prev_key = head.key_id.as_deref().and_then(|id| verifier.keys.and_then(|keys| keys.get(id)));
        verifier.keyed = head.key_id.is_some();
        Ok(verifier)
    }

    /// A walk of the entries after `boundary`, with this walk's keys and checkpoints, taking
    /// the boundary entry as stored. Nothing it finds counts until the walk that reaches the
    /// boundary is [joined](Self::join) to it: then the pair has checked exactly what one walk
    /// over both would have, so a long chain can be read and checked in segments, side by side.
    pub fn after(&self, boundary: ChainEntry<'_>) -> ChainVerifier<'a> {
        let seq = boundary.seq;
        ChainVerifier {
            expected_seq: seq.saturating_add(1),
            prev_hash: boundary.hash.to_vec(),
            prev_key: boundary.key_id.and_then(|id| self.keys?.get(id)),
            keyed: boundary.link.is_some() && boundary.key_id.is_some(),
            keys: self.keys,
            checkpoints: self.checkpoints.clone(),
            next_checkpoint: self.checkpoints.partition_point(|c| c.seq <= seq),
            keyed_after: self.keyed_after,
            checked: 0,
            links_checked: 0,
            boundary: Some(Boundary {
                seq,
                canonical: boundary.canonical.to_vec(),
                hash: boundary.hash.to_vec(),
                link: boundary.link.map(<[u8]>::to_vec),
                key_id: boundary.key_id.map(str::to_owned),
            }),
        }
    }

    /// Continues this walk with `rest`, a walk begun [`after`](Self::after) the entry that
    /// should come next: checks that entry here, as the next one, then takes over where `rest`
    /// stands. After `rest`'s walk found nothing, the pair verdict is one walk's.
    pub fn join(&mut self, rest: ChainVerifier<'a>) -> Result<(), ChainBreak> {
        let Some(boundary) = &rest.boundary else {
            return Err(ChainBreak {
                seq: rest.expected_seq,
                id: String::new(),
                kind: BreakKind::Removed,
                reason: "a walk that did not begin after an entry cannot continue another".into(),
            });
        };
        let boundary = boundary.clone();
        self.push(boundary.entry())?;
        // Where the boundary leaves this walk must be where `rest` began: it is, by
        // construction, and a walk that did not would not be continued.
        if self.position() != self.after(boundary.entry()).position() {
            return Err(broken(
                boundary.seq,
                &boundary.canonical,
                BreakKind::Removed,
                format!("the walk does not continue after entry {}", boundary.seq),
            ));
        }
        let (checked, links_checked, boundary) = (self.checked, self.links_checked, self.boundary.take());
        *self = ChainVerifier {
            checked: checked + rest.checked,
            links_checked: links_checked + rest.links_checked,
            boundary,
            ..rest
        };
        Ok(())
    }

    /// All that the checks of the entries after this point depend on.
    fn position(&self) -> (i64, &[u8], Option<&str>, bool, usize) {
        (self.expected_seq, &self.prev_hash, self.prev_key.map(AuditKey::id), self.keyed, self.next_checkpoint)
    }

    /// Checks every checkpoint at `seq` against the entry there.
    fn pass_checkpoints(
        &mut self,
        seq: i64,
        hash: &[u8],
        link: Option<&[u8]>,
        canonical: &[u8],
    ) -> Result<(), ChainBreak> {
        while let Some(checkpoint) = self.checkpoints.get(self.next_checkpoint) {
            if checkpoint.seq > seq {
                break;
            }
            if checkpoint.seq < seq {
                // Only a skipped sequence number passes a checkpoint unseen, and that is
                // refused before this is reached.
                self.next_checkpoint += 1;
                continue;
            }
            let signed_link = checkpoint.link.as_deref().map(str::as_bytes);
            if checkpoint.hash.as_bytes() != hash || (signed_link.is_some() && signed_link != link) {
                return Err(broken(
                    seq,
                    canonical,
                    BreakKind::Checkpoint,
                    format!(
                        "entry {seq} is not the entry the checkpoint signed at {} says it was: the log was rewritten up to here",
                        checkpoint.at
                    ),
                ));
            }
            self.next_checkpoint += 1;
        }
        Ok(())
    }

    pub fn push(&mut self, entry: ChainEntry<'_>) -> Result<(), ChainBreak> {
        let ChainEntry { seq, canonical, hash, link, key_id } = entry;
        let fail = |kind, reason: String| broken(seq, canonical, kind, reason);
        if seq != self.expected_seq || canonical_seq(canonical) != Some(seq) {
            return Err(fail(
                BreakKind::Removed,
                format!(
                    "expected entry {} here but found entry {seq}: an entry was removed or reordered",
                    self.expected_seq
                ),
            ));
        }
        let digest = chain_hash(&self.prev_hash, canonical);
        let digest_hex = hex(&digest);
        if !hex_eq(hash, &digest_hex) {
            return Err(fail(
                BreakKind::Changed,
                "the entry's content, or its predecessor's hash, does not match its hash: it was changed".into(),
            ));
        }
        match (link, key_id) {
            (Some(link), Some(key_id)) => {
                self.keyed = true;
                if let Some(keys) = self.keys {
                    let Some(key) = keys.get(key_id) else {
                        return Err(fail(
                            BreakKind::UnknownKey,
                            format!(
                                "the entry is linked under audit key {key_id}, which the audit key file does not hold"
                            ),
                        ));
                    };
                    if !hex_eq(link, &hex(&self::link(key, self.prev_key, &digest))) {
                        return Err(fail(
                            BreakKind::Link,
                            "the entry's keyed link does not match: the chain was recomputed without the audit key"
                                .into(),
                        ));
                    }
                    self.prev_key = Some(key);
                    self.links_checked += 1;
                }
            }
            (None, None) if !self.keyed && self.keyed_after.is_none_or(|after| seq <= after) => {}
            _ => {
                return Err(fail(
                    BreakKind::Unkeyed,
                    "the entry has no keyed link although the chain was keyed before it".into(),
                ))
            }
        }
        self.pass_checkpoints(seq, hash, link, canonical)?;
        self.expected_seq += 1;
        self.prev_hash.clear();
        self.prev_hash.extend_from_slice(&digest_hex);
        self.checked += 1;
        Ok(())
    }

    /// After the last entry: the log must reach every checkpoint, and the stored head.
    pub fn finish(&self, stored_head: Option<i64>) -> Result<(), ChainBreak> {
        let last = self.expected_seq - 1;
        let cut = |seq: i64, reason: String| ChainBreak {
            seq: last + 1,
            id: String::new(),
            kind: BreakKind::Truncated,
            reason: format!("{reason} (entry {seq})"),
        };
        if let Some(checkpoint) = self.checkpoints.iter().rev().find(|c| c.seq > last) {
            return Err(cut(
                checkpoint.seq,
                format!(
                    "a checkpoint signed at {} names entries up to {}, but the log ends at entry {last}: entries were removed from the end",
                    checkpoint.at, checkpoint.seq
                ),
            ));
        }
        if let Some(head) = stored_head.filter(|&head| head != last) {
            return Err(cut(
                head,
                format!("the chain head says entry {head} is last, but the log ends at entry {last}: entries were removed from the end"),
            ));
        }
        Ok(())
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }

    pub fn links_checked(&self) -> u64 {
        self.links_checked
    }

    /// How many distinct checkpoints the walk holds (each checked by signature, and against the
    /// chain once the walk passes it).
    pub fn checkpoints(&self) -> usize {
        self.checkpoints.len()
    }

    /// The newest checkpoint's entry: with no audit key, entries after it are covered only by
    /// the public chain, which anyone can recompute.
    pub fn last_checkpoint(&self) -> Option<i64> {
        self.checkpoints.last().map(|c| c.seq)
    }
}

#[cfg(test)]
mod tests;
