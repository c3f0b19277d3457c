//! R13: appending to and reading the hash-chained audit log.

use crate::rows::{int, opt_text, text};
use crate::{new_id, placeholders, Backend, Bind, Conditions, Result, Row, Store, WriteTx};
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
/// them in multi-row statements, move the head.
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
    // SQLite binds a statement's parameters in time that grows with their number squared
    // (`sqlite3_bind_parameter_name` scans); a few hundred per statement bind fastest.
    const PER_STATEMENT: usize = 20;
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

/// Entries per page when verifying.
const VERIFY_PAGE: usize = 10_000;

impl Store {
    /// The entries after `after`, in `seq` order. On SQLite as one JSON array in one row: each
    /// row crosses from SQLite's thread to this one by itself, and one row a page is faster
    /// (countersign-bench, audit-verify). PostgreSQL sends rows in bulk anyway, and builds the
    /// JSON more slowly than it sends them.
    async fn audit_page(&self, after: i64) -> Result<Vec<AuditRecord>> {
        let entries = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT {VERIFY_PAGE}");
        if self.backend() == Backend::Postgres {
            let rows = sqlx::query(&entries).bind(after).fetch_all(self.pool()).await?;
            return rows.iter().map(record).collect();
        }
        let sql =
            format!("SELECT COALESCE(json_group_array(json_array({AUDIT_COLUMNS}) ORDER BY seq), '[]') AS page FROM ({entries})");
        let row = sqlx::query(&sql).bind(after).fetch_one(self.pool()).await?;
        // Each entry is a JSON array of `AUDIT_COLUMNS`, which are `AuditRecord`'s fields in order.
        serde_json::from_str(&text(&row, "page")?)
            .map_err(|e| crate::StoreError::Corrupt(format!("audit page after entry {after}: {e}")))
    }

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

    /// Walks the whole chain in `seq` order, page by page, and checks the head. A task of its
    /// own reads the next pages while this one checks (countersign-bench, audit-verify).
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        let (pages, mut next_page) = tokio::sync::mpsc::channel::<Result<Vec<AuditRecord>>>(2);
        let reader = self.clone();
        let reading = tokio::spawn(async move {
            let mut after = 0;
            loop {
                let page = reader.audit_page(after).await;
                let last = match &page {
                    Ok(entries) if entries.len() == VERIFY_PAGE => entries.last().map(|e| e.seq),
                    _ => None,
                };
                // The checker stops listening at the first broken entry.
                if pages.send(page).await.is_err() {
                    return;
                }
                match last {
                    Some(seq) => after = seq,
                    None => return,
                }
            }
        });
        let mut verifier = ChainVerifier::default();
        let mut after = 0_i64;
        while let Some(page) = next_page.recv().await {
            for entry in &page? {
                if let Err(broken) = verifier.push(entry) {
                    reading.abort();
                    return Ok(VerifyReport {
                        valid: false,
                        entries_checked: verifier.checked(),
                        first_broken: Some(broken),
                    });
                }
                after = entry.seq;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestBackend, TestDatabase};
    use crate::StoreOptions;

    /// A chain longer than two verification pages, written in one transaction the way each
    /// backend appends.
    async fn long_chain(store: &Store, entries: usize) {
        let mut tx = store.begin_write().await.unwrap();
        for i in 0..entries {
            append(&mut tx, NewAudit::new("auth", "signIn").by("someone", &format!("user {i}")), 1_000 + i as i64);
        }
        tx.commit().await.unwrap();
    }

    crate::backend_tests!(r13_verification_reads_page_after_page_and_finds_a_change_on_a_later_page);
    async fn r13_verification_reads_page_after_page_and_finds_a_change_on_a_later_page(backend: TestBackend) {
        let entries = 2 * VERIFY_PAGE + 5;
        let database = TestDatabase::create(backend).await;
        let store = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
        long_chain(&store, entries).await;
        let report = store.verify_audit().await.unwrap();
        assert!(report.valid, "{backend:?}: {report:?}");
        assert_eq!(report.entries_checked, entries as u64, "{backend:?}: every page was read");

        // Someone with write access to the database edits an entry on the third page.
        let tampered = (2 * VERIFY_PAGE + 2) as i64;
        let lift = match backend {
            TestBackend::Sqlite => "DROP TRIGGER audit_log_no_update",
            TestBackend::Postgres => "DROP TRIGGER audit_log_append_only ON audit_log",
        };
        sqlx::query(lift).execute(store.pool()).await.unwrap();
        sqlx::query("UPDATE audit_log SET actor_name = 'nobody' WHERE seq = $1")
            .bind(tampered)
            .execute(store.pool())
            .await
            .unwrap();
        let report = store.verify_audit().await.unwrap();
        assert!(!report.valid, "{backend:?}");
        assert_eq!(report.first_broken.map(|b| b.seq), Some(tampered), "{backend:?}");
        assert_eq!(report.entries_checked, tampered as u64 - 1, "{backend:?}: checked up to the change");
        database.drop_database().await;
    }
}
