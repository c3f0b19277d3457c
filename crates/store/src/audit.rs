//! R13: appending to and reading the hash-chained audit log.

use crate::rows::{int, opt_text, text};
use crate::{new_id, placeholders, Bind, Conditions, Result, Row, Store, WriteTx};
use countersign_core::audit::{AuditRecord, ChainBreak, ChainVerifier};
use countersign_core::Millis;
use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Executor};

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

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub valid: bool,
    pub entries_checked: u64,
    pub first_broken: Option<ChainBreak>,
}

const AUDIT_COLUMNS: &str =
    "seq, id, at, actor_id, actor_name, category, action, target_type, target_id, details, prev_hash, hash";

fn record(row: &Row) -> Result<AuditRecord> {
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
        prev_hash: text(row, "prev_hash")?,
        hash: text(row, "hash")?,
    })
}

/// Appends one entry to the chain as part of `tx`: it commits with the change it records, or
/// not at all. Entries are chained when `tx` commits ([`append_here`], [`append_and_commit`]), so that the chain head,
/// which every write on every replica shares, is locked only for that last moment
/// (countersign-bench, lifecycle profile).
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
    }
}

/// PostgreSQL: chains `entries` after the head and commits.
///
/// Every write on every replica appends to the chain, and the head's lock is held from the
/// append to the end of the COMMIT, so the time it is held bounds how many writes commit a
/// second. The entries are handed over first (a transaction-local setting, as a bound
/// parameter); then `countersign_append_audit` (migration 0004) takes the lock, chains, writes and
/// moves the head, and the COMMIT follows in the same message: the head is held for the server's
/// own work and the disk flush, never for a round trip to this process (countersign-bench,
/// lifecycle profile). A `BEGIN` ends the message so that the caller's transaction handle still
/// has a transaction to end; that one is empty.
pub(crate) async fn append_and_commit(conn: &mut AnyConnection, entries: Vec<(NewAudit, Millis)>) -> Result<()> {
    let entries: Vec<Value> = entries
        .into_iter()
        .map(unchained)
        .map(|r| {
            serde_json::json!({
                "id": r.id, "at": r.at, "actorId": r.actor_id, "actorName": r.actor_name,
                "category": r.category, "action": r.action, "targetType": r.target_type,
                "targetId": r.target_id, "details": r.details,
                "tail": r.canonical_tail(),
            })
        })
        .collect();
    sqlx::query("SELECT set_config('countersign.audit_entries', $1, true)")
        .bind(Value::Array(entries).to_string())
        .execute(&mut *conn)
        .await?;
    conn.execute("SELECT countersign_append_audit(); COMMIT; BEGIN").await?;
    Ok(())
}

/// SQLite, whose writer is this process's alone: read the head, chain `entries` here, write
/// them in as few statements as the parameter limit allows, move the head.
pub(crate) async fn append_here(conn: &mut AnyConnection, entries: Vec<(NewAudit, Millis)>) -> Result<()> {
    let mut records: Vec<AuditRecord> = entries.into_iter().map(unchained).collect();
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut *conn).await?;
    let (mut seq, mut prev_hash) = (int(&head, "seq")?, text(&head, "hash")?);
    for record in &mut records {
        seq += 1;
        record.seq = seq;
        record.prev_hash = std::mem::take(&mut prev_hash);
        record.hash = record.compute_hash();
        prev_hash = record.hash.clone();
    }
    const PER_STATEMENT: usize = 500;
    const COLUMNS: usize = 12;
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
                .bind(&record.details)
                .bind(&record.prev_hash)
                .bind(&record.hash);
        }
        query.execute(&mut *conn).await?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(&prev_hash)
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
        rows.iter().map(record).collect()
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
        rows.iter().map(record).collect()
    }

    /// The newest audit entry's number.
    pub async fn audit_head_seq(&self) -> Result<i64> {
        let row = sqlx::query("SELECT seq FROM audit_head WHERE id = 1").fetch_one(self.pool()).await?;
        int(&row, "seq")
    }

    pub async fn audit_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM audit_log").fetch_one(self.pool()).await?;
        int(&row, "n")
    }

    /// Walks the whole chain in `seq` order, page by page, and checks the head.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        const PAGE: i64 = 5000;
        let mut verifier = ChainVerifier::default();
        let mut after = 0_i64;
        loop {
            let rows =
                sqlx::query(&format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT {PAGE}"))
                    .bind(after)
                    .fetch_all(self.pool())
                    .await?;
            for row in &rows {
                let entry = record(row)?;
                if let Err(broken) = verifier.push(&entry) {
                    return Ok(VerifyReport {
                        valid: false,
                        entries_checked: verifier.checked(),
                        first_broken: Some(broken),
                    });
                }
                after = entry.seq;
            }
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(self.pool()).await?;
        let (head_seq, head_hash) = (int(&head, "seq")?, text(&head, "hash")?);
        if head_seq != after || head_hash != verifier.head() {
            return Ok(VerifyReport {
                valid: false,
                entries_checked: verifier.checked(),
                first_broken: Some(ChainBreak {
                    seq: after + 1,
                    id: String::new(),
                    reason: format!("the chain head says entry {head_seq} is last, but the log ends at entry {after}: entries were removed from the end"),
                }),
            });
        }
        Ok(VerifyReport { valid: true, entries_checked: verifier.checked(), first_broken: None })
    }
}
