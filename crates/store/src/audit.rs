//! R13: appending to and reading the keyed, hash-chained audit log, and its checkpoints.

use crate::rows::{int, opt_text, text};
use crate::{new_id, placeholders, Backend, Bind, Conditions, Result, Row, Store, StoreError, WriteTx};
use countersign_core::audit::{
    chain_entries, AuditKeys, AuditRecord, BreakKind, ChainBreak, ChainEntry, ChainError, ChainHead, ChainHeadEntry,
    ChainVerifier, Checkpoint, Evidence, PublicKey,
};
use countersign_core::Millis;
use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Executor};
use std::sync::{Arc, RwLock};
/// What happened, before it is chained.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub category: &'static str,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: Value,
}

impl NewAudit {
    pub fn new(category: &'static str, action: impl Into<String>) -> Self {
        NewAudit {
            actor_id: None,
            actor_name: "system".into(),
            category,
            action: action.into(),
            target_type: None,
            target_id: None,
            details: Value::Object(Default::default()),
        }
    }

    pub fn by(mut self, actor_id: &str, actor_name: &str) -> Self {
        self.actor_id = Some(actor_id.to_owned());
        self.actor_name = actor_name.to_owned();
        self
    }

    pub fn on(mut self, target_type: &str, target_id: &str) -> Self {
        self.target_type = Some(target_type.to_owned());
        self.target_id = Some(target_id.to_owned());
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The audit keys new entries are linked with, and how to read them again: when another
/// replica has moved the chain on to a key this one has not loaded (a rotation), the key file is
/// read again before the next append.
#[derive(Clone)]
pub struct AuditKeyring {
    current: Arc<RwLock<Arc<AuditKeys>>>,
    reload: Arc<dyn Fn() -> std::result::Result<AuditKeys, String> + Send + Sync>,
}

impl std::fmt::Debug for AuditKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeyring").field("keys", &self.keys().ids().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl AuditKeyring {
    pub fn new(
        keys: AuditKeys,
        reload: impl Fn() -> std::result::Result<AuditKeys, String> + Send + Sync + 'static,
    ) -> AuditKeyring {
        AuditKeyring { current: Arc::new(RwLock::new(Arc::new(keys))), reload: Arc::new(reload) }
    }

    /// Keys that never change (tests, and tools that only read).
    pub fn fixed(keys: AuditKeys) -> AuditKeyring {
        let again = keys.clone();
        AuditKeyring::new(keys, move || Ok(again.clone()))
    }

    pub fn keys(&self) -> Arc<AuditKeys> {
        match self.current.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn reload(&self) -> Result<Arc<AuditKeys>> {
        let keys = Arc::new((self.reload)().map_err(StoreError::Config)?);
        match self.current.write() {
            Ok(mut current) => *current = keys.clone(),
            Err(poisoned) => *poisoned.into_inner() = keys.clone(),
        }
        Ok(keys)
    }
}

/// Chains `records` after `head` under the keyring's current key, reading the key file again
/// once if the head was linked under a key it does not hold yet.
fn chain(head: &mut ChainHead, keyring: Option<&AuditKeyring>, records: &mut [AuditRecord]) -> Result<()> {
    let keys = keyring.map(AuditKeyring::keys);
    match chain_entries(head, keys.as_deref(), records) {
        Err(ChainError::UnknownKey(_)) if keyring.is_some() => {
            let keys = keyring.map(AuditKeyring::reload).transpose()?;
            chain_entries(head, keys.as_deref(), records).map_err(|e| StoreError::Config(e.to_string()))
        }
        other => other.map_err(|e| StoreError::Config(e.to_string())),
    }
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub category: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    /// Entries with a smaller `seq` than this (keyset paging, newest first).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

impl AuditFilter {
    /// Whether `record` (read from its verified bytes) matches: the columns the query filtered
    /// on are an index that someone with write access to the database could change.
    fn matches(&self, record: &AuditRecord) -> bool {
        let same = |wanted: &Option<String>, actual: Option<&str>| wanted.as_deref().is_none_or(|w| Some(w) == actual);
        same(&self.category, Some(&record.category))
            && same(&self.actor_id, record.actor_id.as_deref())
            && same(&self.action, Some(&record.action))
            && same(&self.target_id, record.target_id.as_deref())
            && self.since.is_none_or(|since| record.at >= since)
            && self.until.is_none_or(|until| record.at < until)
    }
}

/// The verdict: `rewritten` whenever anything does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum VerifyResult {
    Intact,
    Rewritten,
    /// What verification needs could not be read (the checkpoint file); nothing was checked.
    Unverifiable,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub valid: bool,
    pub result: VerifyResult,
    pub entries_checked: u64,
    /// Keyed links checked: 0 when verifying without the audit key.
    pub links_checked: u64,
    /// Distinct signed checkpoints held (the file's, the database's and any given).
    pub checkpoints_checked: usize,
    /// The newest checkpoint's entry. Without the audit key, entries after it are covered only
    /// by the public chain, which anyone who can write the database can recompute.
    pub last_checkpoint: Option<i64>,
    pub first_broken: Option<ChainBreak>,
    /// Why nothing could be checked (`result: unverifiable`).
    pub unverifiable: Option<String>,
}

impl VerifyReport {
    /// Nothing checked, because `reason`.
    pub fn unverifiable(reason: String) -> VerifyReport {
        VerifyReport {
            valid: false,
            result: VerifyResult::Unverifiable,
            entries_checked: 0,
            links_checked: 0,
            checkpoints_checked: 0,
            last_checkpoint: None,
            first_broken: None,
            unverifiable: Some(reason),
        }
    }
}

/// What verification is given besides the database.
#[derive(Debug, Default)]
pub struct VerifyInputs<'a> {
    /// The audit keys, to check every link; `None` for an auditor without them.
    pub keys: Option<&'a AuditKeys>,
    /// The key checkpoints must be signed with; without it no checkpoint is used.
    pub public_key: Option<PublicKey>,
    /// Checkpoints from outside the database (the checkpoint file, an export).
    pub checkpoints: Vec<Checkpoint>,
}

const AUDIT_COLUMNS: &str = "seq, id, at, actor_id, actor_name, category, action, target_type, target_id, details, \
                             prev_hash, hash, entry, link, key_id";

/// An entry from its row: from its canonical bytes where it has them (what verification
/// checks), from the columns for entries written before the chain was keyed.
fn record(row: &Row) -> Result<AuditRecord> {
    let (prev_hash, hash) = (text(row, "prev_hash")?, text(row, "hash")?);
    let (link, key_id) = (opt_text(row, "link")?, opt_text(row, "key_id")?);
    if let Some(canonical) = opt_text(row, "entry")? {
        return AuditRecord::from_canonical(canonical.as_bytes(), prev_hash, hash, link, key_id)
            .map_err(|e| StoreError::Corrupt(format!("audit entry {}: {e}", int(row, "seq").unwrap_or_default())));
    }
    Ok(AuditRecord {
        seq: int(row, "seq")?,
        id: text(row, "id")?,
        at: int(row, "at")?,
        actor_id: opt_text(row, "actor_id")?,
        actor_name: text(row, "actor_name")?,
        category: text(row, "category")?,
        action: text(row, "action")?,
        target_type: opt_text(row, "target_type")?,
        target_id: opt_text(row, "target_id")?,
        details: text(row, "details")?,
        prev_hash,
        hash,
        link,
        key_id,
    })
}

/// The readable entries of `rows`; one that does not read (someone wrote bytes that are not an
/// entry) is logged and left out, so that it cannot break the audit log page for everyone.
/// Verification reports it.
fn readable(rows: &[Row], keep: impl Fn(&AuditRecord) -> bool) -> Vec<AuditRecord> {
    rows.iter()
        .filter_map(|row| match record(row) {
            Ok(entry) if keep(&entry) => Some(entry),
            Ok(entry) => {
                tracing::warn!(seq = entry.seq, "an audit entry's index columns disagree with its bytes; left out");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "an audit entry does not read; left out (audit verify reports it)");
                None
            }
        })
        .collect()
}

/// Appends one entry to the chain as part of `tx`: it commits with the change it records, or
/// not at all. Entries are chained when `tx` commits ([`append_here`], [`append_and_commit`]),
/// so that the chain head, which every write on every replica shares, is locked only for that
/// last moment (countersign-bench, lifecycle profile).
pub(crate) fn append(tx: &mut WriteTx, entry: NewAudit, now: Millis) {
    tx.audit.push((entry, now));
}

/// An entry with everything but its place in the chain.
fn unchained((entry, at): (NewAudit, Millis)) -> AuditRecord {
    AuditRecord {
        seq: 0,
        id: new_id(),
        at,
        actor_id: entry.actor_id,
        actor_name: entry.actor_name,
        category: entry.category.to_owned(),
        action: entry.action,
        target_type: entry.target_type,
        target_id: entry.target_id,
        details: entry.details.to_string(),
        prev_hash: String::new(),
        hash: String::new(),
        link: None,
        key_id: None,
    }
}

/// The head, locked for the rest of the transaction on PostgreSQL.
async fn locked_head(conn: &mut AnyConnection, for_update: &str) -> Result<ChainHead> {
    let row = sqlx::query(&format!("SELECT seq, hash, key_id FROM audit_head WHERE id = 1{for_update}"))
        .fetch_one(&mut *conn)
        .await?;
    Ok(ChainHead { seq: int(&row, "seq")?, hash: text(&row, "hash")?, key_id: opt_text(&row, "key_id")? })
}

/// PostgreSQL: chains `entries` after the head and commits.
///
/// Every write on every replica appends to the chain, and the head's lock is held from the
/// append to the end of the COMMIT, so the time it is held bounds how many writes commit a
/// second. The key never reaches the database, so the entries are chained here, after one
/// round trip that takes the lock; then `countersign_write_audit` (migration 0013) writes them
/// and moves the head, and the COMMIT follows in the same message (countersign-bench, lifecycle
/// profile). The entries travel as hex, which holds nothing but `[0-9a-f]`, so the message
/// cannot be read as anything but that one literal. A `BEGIN` ends the message so that the
/// caller's transaction handle still has a transaction to end; that one is empty.
pub(crate) async fn append_and_commit(
    conn: &mut AnyConnection,
    keyring: Option<&AuditKeyring>,
    entries: Vec<(NewAudit, Millis)>,
) -> Result<()> {
    let mut records: Vec<AuditRecord> = entries.into_iter().map(unchained).collect();
    let mut head = locked_head(conn, " FOR UPDATE").await?;
    chain(&mut head, keyring, &mut records)?;
    let rows: Vec<Value> = records
        .into_iter()
        .map(|r| {
            let entry = String::from_utf8_lossy(&r.canonical_bytes()).into_owned();
            serde_json::json!({
                "seq": r.seq, "id": r.id, "at": r.at, "actor_id": r.actor_id, "actor_name": r.actor_name,
                "category": r.category, "action": r.action, "target_type": r.target_type,
                "target_id": r.target_id, "details": "", "prev_hash": r.prev_hash, "hash": r.hash,
                "entry": entry, "link": r.link, "key_id": r.key_id,
            })
        })
        .collect();
    let payload = hex::encode(Value::Array(rows).to_string());
    conn.execute(
        format!(
            "SELECT countersign_write_audit(convert_from(decode('{payload}', 'hex'), 'UTF8')::json); COMMIT; BEGIN"
        )
        .as_str(),
    )
    .await?;
    Ok(())
}

/// SQLite, whose writer is this process's alone: read the head, chain `entries` here, write
/// them in multi-row statements, move the head.
pub(crate) async fn append_here(
    conn: &mut AnyConnection,
    keyring: Option<&AuditKeyring>,
    entries: Vec<(NewAudit, Millis)>,
) -> Result<()> {
    let mut records: Vec<AuditRecord> = entries.into_iter().map(unchained).collect();
    let mut head = locked_head(conn, "").await?;
    chain(&mut head, keyring, &mut records)?;
    // SQLite binds a statement's parameters in time that grows with their number squared
    // (`sqlite3_bind_parameter_name` scans); a few hundred per statement bind fastest.
    const PER_STATEMENT: usize = 20;
    const COLUMNS: usize = 15;
    for chunk in records.chunks(PER_STATEMENT) {
        let rows: Vec<String> =
            (0..chunk.len()).map(|r| format!("({})", placeholders(r * COLUMNS + 1, COLUMNS))).collect();
        let sql = format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES {}", rows.join(", "));
        let mut query = sqlx::query(&sql);
        for record in chunk {
            query = query
                .bind(record.seq)
                .bind(&record.id)
                .bind(record.at)
                .bind(&record.actor_id)
                .bind(&record.actor_name)
                .bind(&record.category)
                .bind(&record.action)
                .bind(&record.target_type)
                .bind(&record.target_id)
                // The details live in the entry's bytes only (see migration 0013).
                .bind("")
                .bind(&record.prev_hash)
                .bind(&record.hash)
                .bind(String::from_utf8_lossy(&record.canonical_bytes()).into_owned())
                .bind(&record.link)
                .bind(&record.key_id);
        }
        query.execute(&mut *conn).await?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, key_id = $3 WHERE id = 1")
        .bind(head.seq)
        .bind(&head.hash)
        .bind(&head.key_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Appends one entry in a transaction of its own (sign-ins, for example).
    pub async fn audit(&self, entry: NewAudit, now: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        append(&mut tx, entry, now);
        tx.commit().await
    }

    /// Newest first.
    pub async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut conditions = Conditions::default();
        for (column, value) in [
            ("category = ?", &filter.category),
            ("actor_id = ?", &filter.actor_id),
            ("action = ?", &filter.action),
            ("target_id = ?", &filter.target_id),
        ] {
            if let Some(value) = value {
                conditions.add(column, Bind::Text(value.clone()));
            }
        }
        for (condition, value) in [("at >= ?", filter.since), ("at < ?", filter.until), ("seq < ?", filter.before_seq)]
        {
            if let Some(value) = value {
                conditions.add(condition, Bind::Int(value));
            }
        }
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log {} ORDER BY seq DESC LIMIT {}",
            conditions.where_clause(),
            filter.limit.clamp(1, 500)
        );
        let query = conditions.bind_to(sqlx::query(&sql));
        let rows = query.fetch_all(self.pool()).await?;
        Ok(readable(&rows, |entry| filter.matches(entry)))
    }

    /// Entries after `seq`, oldest first, at most `limit` (what the export sinks send).
    pub async fn audit_after(&self, seq: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"))
            .bind(seq)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(readable(&rows, |_| true))
    }

    /// Request events after `seq`, oldest first: what live updates stream. The audit log is the
    /// one ordered record every replica shares.
    pub async fn request_events_after(&self, seq: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 AND category = 'request' ORDER BY seq LIMIT $2"
        ))
        .bind(seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(readable(&rows, |entry| entry.category == "request"))
    }

    /// The newest audit entry's number.
    pub async fn audit_head_seq(&self) -> Result<i64> {
        let row = sqlx::query("SELECT seq FROM audit_head WHERE id = 1").fetch_one(self.pool()).await?;
        int(&row, "seq")
    }

    /// The newest entry as a checkpoint signs it.
    pub async fn audit_head(&self) -> Result<ChainHeadEntry> {
        let row = sqlx::query(
            "SELECT h.seq AS seq, h.hash AS hash, l.link AS link FROM audit_head h \
             LEFT JOIN audit_log l ON l.seq = h.seq WHERE h.id = 1",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(ChainHeadEntry { seq: int(&row, "seq")?, hash: text(&row, "hash")?, link: opt_text(&row, "link")? })
    }

    pub async fn audit_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM audit_log").fetch_one(self.pool()).await?;
        int(&row, "n")
    }

    /// Keys the chain from here on, once: if its head is not keyed yet, appends a keyed
    /// `keyingStarted` entry and returns the last entry before it, for the caller to sign as the
    /// `keyingStarted` checkpoint. `None` when the chain was keyed already (or this store has no
    /// keys). Replicas starting together key it once: the head's lock decides.
    pub async fn start_keying(&self, now: Millis) -> Result<Option<ChainHeadEntry>> {
        if self.audit_keys().is_none() {
            return Ok(None);
        }
        let mut tx = self.begin_write().await?;
        let for_update = tx.for_update();
        let head = locked_head(tx.conn(), for_update).await?;
        if head.key_id.is_some() {
            tx.rollback().await?;
            return Ok(None);
        }
        let unkeyed = ChainHeadEntry { seq: head.seq, hash: head.hash, link: None };
        append(
            &mut tx,
            NewAudit::new("audit", "keyingStarted").details(serde_json::json!({ "unkeyedEntries": head.seq })),
            now,
        );
        tx.commit().await?;
        Ok(Some(unkeyed))
    }

    /// Keeps a signed checkpoint; `false` if one of its kind for its entry is kept already.
    pub async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<bool> {
        let body = serde_json::to_string(checkpoint).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let kind = serde_json::to_value(checkpoint.kind).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.begin_write().await?;
        let saved = sqlx::query(
            "INSERT INTO audit_checkpoints (seq, kind, at, body) VALUES ($1, $2, $3, $4) ON CONFLICT (seq, kind) DO NOTHING",
        )
        .bind(checkpoint.seq)
        .bind(kind.as_str().unwrap_or_default().to_owned())
        .bind(checkpoint.at)
        .bind(body)
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(saved == 1)
    }

    /// Checkpoints made after `at` (or any), oldest first, at most `limit`; a row that does not
    /// read as a checkpoint is an `Err` with why.
    pub async fn checkpoints_after(
        &self,
        at: Millis,
        limit: i64,
    ) -> Result<Vec<std::result::Result<Checkpoint, String>>> {
        let rows = sqlx::query("SELECT seq, body FROM audit_checkpoints WHERE at > $1 ORDER BY at, seq LIMIT $2")
            .bind(at)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let (seq, body) = (int(row, "seq")?, text(row, "body")?);
                Ok(serde_json::from_str(&body)
                    .map_err(|e| format!("the stored checkpoint for entry {seq} does not parse: {e}")))
            })
            .collect()
    }

    /// Walks the whole chain, checking every hash, every link (with the keys), every
    /// checkpoint (the database's and `inputs`', with the public key), and the head: in
    /// segments side by side, from one snapshot (see [`scan`]; countersign-bench, audit-verify).
    pub async fn verify_audit(&self, inputs: VerifyInputs<'_>) -> Result<VerifyReport> {
        let mut checkpoints = inputs.checkpoints;
        if inputs.public_key.is_some() {
            for stored in self.checkpoints_after(Millis::MIN, i64::MAX).await? {
                match stored {
                    Ok(checkpoint) => checkpoints.push(checkpoint),
                    Err(reason) => {
                        let broken = ChainBreak { seq: 0, id: String::new(), kind: BreakKind::Signature, reason };
                        return Ok(Walked::refused(broken).report());
                    }
                }
            }
        }
        let evidence = OwnedEvidence { keys: inputs.keys.cloned(), checkpoints, public_key: inputs.public_key };
        let walked = self.walk_chain(&evidence, scan::Order::AsStored).await?;
        // Rows stored out of `seq` order are not by themselves a break: the verdict is the walk
        // in `seq` order.
        let walked = match walked.verdict {
            Ok(()) => walked,
            Err(_) => self.walk_chain(&evidence, scan::Order::BySeq).await?,
        };
        Ok(walked.report())
    }
}

/// What verification is given, owned, so that walks can run on threads of their own.
#[derive(Debug, Clone)]
struct OwnedEvidence {
    keys: Option<AuditKeys>,
    checkpoints: Vec<Checkpoint>,
    public_key: Option<PublicKey>,
}

impl OwnedEvidence {
    fn verifier(&self) -> std::result::Result<ChainVerifier<'_>, ChainBreak> {
        ChainVerifier::new(Evidence {
            keys: self.keys.as_ref(),
            checkpoints: self.checkpoints.clone(),
            public_key: self.public_key,
        })
    }
}

/// What one walk over the stored chain found.
#[derive(Debug)]
struct Walked {
    checked: u64,
    links_checked: u64,
    checkpoints: usize,
    last_checkpoint: Option<i64>,
    verdict: std::result::Result<(), ChainBreak>,
}

impl Walked {
    /// Nothing walked: the evidence itself was refused.
    fn refused(broken: ChainBreak) -> Walked {
        Walked { checked: 0, links_checked: 0, checkpoints: 0, last_checkpoint: None, verdict: Err(broken) }
    }

    /// The segments' walks joined in chain order, ended at the snapshot's head: the first thing
    /// found, in chain order, is the verdict ([`ChainVerifier::join`]).
    fn joined(walks: scan::Walks<'_>) -> Walked {
        let mut segments = walks.segments.into_iter();
        let Some(SegmentWalk { walk: Some(mut whole), found, .. }) = segments.next() else {
            let broken = ChainBreak {
                seq: 1,
                id: String::new(),
                kind: BreakKind::Removed,
                reason: "the walk did not start".into(),
            };
            return Walked::refused(broken);
        };
        let verdict = found.and_then(|()| {
            for segment in segments {
                if let Some(walk) = segment.walk {
                    whole.join(walk)?;
                }
                segment.found?;
            }
            whole.finish(Some(walks.head))
        });
        Walked {
            checked: whole.checked(),
            links_checked: whole.links_checked(),
            checkpoints: whole.checkpoints(),
            last_checkpoint: whole.last_checkpoint(),
            verdict,
        }
    }

    fn report(self) -> VerifyReport {
        let Walked { checked, links_checked, checkpoints, last_checkpoint, verdict } = self;
        let valid = verdict.is_ok();
        VerifyReport {
            valid,
            result: if valid { VerifyResult::Intact } else { VerifyResult::Rewritten },
            entries_checked: checked,
            links_checked,
            checkpoints_checked: checkpoints,
            last_checkpoint,
            first_broken: verdict.err(),
            unverifiable: None,
        }
    }
}

/// One segment's walk: the first from the chain's start, each later one after its own first
/// row, until it finds something.
struct SegmentWalk<'k> {
    walk: Option<ChainVerifier<'k>>,
    /// A later segment's verifier before its first row, to begin after that row.
    template: Option<ChainVerifier<'k>>,
    found: std::result::Result<(), ChainBreak>,
}

impl<'k> SegmentWalk<'k> {
    fn first(verifier: ChainVerifier<'k>) -> SegmentWalk<'k> {
        SegmentWalk { walk: Some(verifier), template: None, found: Ok(()) }
    }

    fn later(template: ChainVerifier<'k>) -> SegmentWalk<'k> {
        SegmentWalk { walk: None, template: Some(template), found: Ok(()) }
    }

    /// Takes the next row; `false` once the walk found something, as nothing after it in this
    /// segment can change the verdict.
    fn push(&mut self, entry: std::result::Result<ChainEntry<'_>, ChainBreak>) -> bool {
        let found = match (&mut self.walk, entry) {
            (_, Err(broken)) => Err(broken),
            (Some(walk), Ok(entry)) => walk.push(entry),
            (None, Ok(entry)) => {
                self.walk = self.template.take().map(|template| template.after(entry));
                Ok(())
            }
        };
        self.found = found;
        self.found.is_ok()
    }
}

/// The canonical bytes of entries written before the chain was keyed, which have none stored,
/// built from their columns a range at a time as the walks meet them.
struct Legacy<'f> {
    fetch: &'f FetchLegacy,
}

/// Fetches the canonical bytes of the entries without stored bytes from `first` to `last`.
type FetchLegacy = dyn Fn(i64, i64) -> Result<Vec<(i64, Vec<u8>)>> + Sync;

/// Entries without stored bytes ahead of one walk.
struct LegacyHeld<'f> {
    fetch: &'f FetchLegacy,
    held: Vec<(i64, Vec<u8>)>,
}

/// Entries without stored bytes fetched at once.
const LEGACY_BATCH: i64 = 4096;

impl<'f> Legacy<'f> {
    fn holder(&self) -> LegacyHeld<'f> {
        LegacyHeld { fetch: self.fetch, held: Vec::new() }
    }
}

impl LegacyHeld<'_> {
    fn bytes(&mut self, seq: i64) -> Result<Option<&[u8]>> {
        if self.held.binary_search_by_key(&seq, |(held, _)| *held).is_err() {
            self.held = (self.fetch)(seq, seq.saturating_add(LEGACY_BATCH - 1))?;
        }
        Ok(self.held.binary_search_by_key(&seq, |(held, _)| *held).ok().map(|at| self.held[at].1.as_slice()))
    }
}

/// What a scan's rows fail with when they are not in the form the server writes.
fn malformed(seq: i64, reason: &str) -> ChainBreak {
    ChainBreak {
        seq: seq.max(0),
        id: String::new(),
        kind: BreakKind::Changed,
        reason: format!("the stored entry is not in the form the server writes: {reason}"),
    }
}

/// Text fields of a stored entry, which the server writes as ASCII hex or ids.
fn stored_text<'a>(seq: i64, field: &str, bytes: &'a [u8]) -> std::result::Result<&'a str, ChainBreak> {
    std::str::from_utf8(bytes).map_err(|_| malformed(seq, &format!("its {field} is not text")))
}

impl Store {
    /// Walks the chain, from one snapshot, in segments read in `order` (see [`scan`]).
    async fn walk_chain(&self, evidence: &OwnedEvidence, order: scan::Order) -> Result<Walked> {
        let evidence = evidence.clone();
        let url = self.pool().connect_options().database_url.clone();
        // Entries written before keying have no stored bytes: built from their columns, which
        // never change (the walk checks them all the same).
        let store = self.clone();
        let runtime = tokio::runtime::Handle::current();
        let fetch = move |first: i64, last: i64| runtime.block_on(store.legacy_entries(first, last));
        // Where the chain is read from; each backend's scan blocks, so it runs off the runtime.
        enum Source {
            Sqlite(std::path::PathBuf),
            Postgres(Box<sqlx::postgres::PgConnectOptions>),
        }
        let source = match self.backend() {
            Backend::Sqlite => {
                let options: sqlx::sqlite::SqliteConnectOptions = url.as_str().parse()?;
                Source::Sqlite(options.get_filename().to_path_buf())
            }
            Backend::Postgres => Source::Postgres(Box::new(url.as_str().parse()?)),
        };
        let walked = tokio::task::spawn_blocking(move || {
            let base = match evidence.verifier() {
                Ok(base) => base,
                Err(broken) => return Ok(Walked::refused(broken)),
            };
            let legacy = Legacy { fetch: &fetch };
            let walks = match &source {
                Source::Sqlite(path) => scan::walk_sqlite(path, order, &base, &legacy),
                Source::Postgres(options) => scan::walk_postgres(options, order, &base, &legacy),
            };
            walks.map(Walked::joined)
        })
        .await;
        walked.map_err(|e| StoreError::Unavailable(format!("verifying the audit log stopped: {e}")))?
    }

    /// The canonical bytes of the entries from `first` to `last` written before the chain was
    /// keyed, which have none stored: from their columns.
    async fn legacy_entries(&self, first: i64, last: i64) -> Result<Vec<(i64, Vec<u8>)>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq >= $1 AND seq <= $2 AND entry IS NULL ORDER BY seq"
        );
        let rows = sqlx::query(&sql).bind(first).bind(last).fetch_all(self.pool()).await?;
        rows.iter().map(|row| record(row).map(|record| (record.seq, record.canonical_bytes()))).collect()
    }
}

/// A scanned row as the verifier takes it, or why it is not in the form the server writes.
fn chain_entry<'a>(
    row: &scan::ScanRow<'a>,
    legacy: &'a mut LegacyHeld<'_>,
) -> Result<std::result::Result<ChainEntry<'a>, ChainBreak>> {
    let seq = row.seq;
    let read = || -> std::result::Result<_, ChainBreak> {
        let hash = row.hash.ok_or_else(|| malformed(seq, "it has no hash"))?;
        let key_id = row.key_id.map(|id| stored_text(seq, "key id", id)).transpose()?;
        Ok((hash, key_id, row.link))
    };
    let (hash, key_id, link) = match read() {
        Ok(fields) => fields,
        Err(broken) => return Ok(Err(broken)),
    };
    let canonical = match row.entry {
        Some(canonical) => canonical,
        None => match legacy.bytes(seq)? {
            Some(bytes) => bytes,
            None => return Ok(Err(malformed(seq, "it has neither stored bytes nor columns"))),
        },
    };
    Ok(Ok(ChainEntry { seq, canonical, hash, link, key_id }))
}

mod scan;
#[cfg(test)]
mod tests;
