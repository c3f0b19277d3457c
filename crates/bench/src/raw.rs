//! The floor: the writes one request lifecycle makes (the same rows inserted and updated, the
//! same audit appends made the way the store makes them, one transaction per step, the same
//! durability settings and pool) issued straight through sqlx's native drivers, with no HTTP, no
//! authentication, no JSON parsing and none of the gate's reads.

use anyhow::Result;
use countersign_core::audit::{chain_entries, AuditRecord, ChainHead};
use countersign_core::diff;
use countersign_core::Millis;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// A value for one `$n` placeholder.
#[derive(Debug, Clone)]
pub enum Val {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

/// What a raw step needs from a transaction, on either backend.
pub trait RawTx {
    async fn exec(&mut self, sql: &str, values: Vec<Val>) -> Result<()>;
    /// The chain head, locked on PostgreSQL (the writer lock already serialises SQLite's appends).
    async fn head(&mut self) -> Result<ChainHead>;
    /// Parameters per multi-row statement. SQLite looks each parameter up by a linear scan
    /// while binding (`sqlite3_bind_parameter_name`), so a statement's cost grows with the
    /// square of its parameters: a few hundred bind fastest (found profiling the seeding).
    const PARAMETERS_PER_STATEMENT: usize;
}

macro_rules! raw_tx {
    ($db:ty, $head_sql:expr, $parameters:expr) => {
        impl<'c> RawTx for Transaction<'c, $db> {
            const PARAMETERS_PER_STATEMENT: usize = $parameters;

            async fn exec(&mut self, sql: &str, values: Vec<Val>) -> Result<()> {
                let mut query = sqlx::query(sql);
                for value in values {
                    query = match value {
                        Val::Text(v) => query.bind(v),
                        Val::OptText(v) => query.bind(v),
                        Val::Int(v) => query.bind(v),
                        Val::OptInt(v) => query.bind(v),
                    };
                }
                query.execute(&mut **self).await?;
                Ok(())
            }

            async fn head(&mut self) -> Result<ChainHead> {
                let (seq, hash, key_id): (i64, String, Option<String>) =
                    sqlx::query_as($head_sql).fetch_one(&mut **self).await?;
                Ok(ChainHead { seq, hash, key_id })
            }
        }
    };
}

raw_tx!(Sqlite, "SELECT seq, hash, key_id FROM audit_head WHERE id = 1", 240);
raw_tx!(Postgres, "SELECT seq, hash, key_id FROM audit_head WHERE id = 1 FOR UPDATE", 2_000);

/// A native pool with the settings the store uses: as many connections, none pinged before use
/// while busy, and on SQLite, WAL with `synchronous=FULL` and one writer at a time (the store
/// queues writers rather than spin on `SQLITE_BUSY`).
#[derive(Clone)]
pub enum RawPool {
    Sqlite { pool: SqlitePool, writer: Arc<Mutex<()>> },
    Postgres(PgPool),
}

impl RawPool {
    pub async fn connect(url: &str, max_connections: u32) -> Result<RawPool> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            Ok(RawPool::Sqlite { pool, writer: Arc::new(Mutex::new(())) })
        } else {
            let pool =
                PgPoolOptions::new().max_connections(max_connections).test_before_acquire(false).connect(url).await?;
            Ok(RawPool::Postgres(pool))
        }
    }

    /// Runs `step` in one write transaction, appends its audit entries as the store does, and
    /// commits.
    pub async fn write(&self, step: &Step<'_>) -> Result<()> {
        let mut entries = Vec::new();
        match self {
            RawPool::Sqlite { pool, writer } => {
                let _writer = writer.lock().await;
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                step.run(&mut tx, &mut entries).await?;
                if !entries.is_empty() {
                    append_chained(&mut tx, entries).await?;
                }
                tx.commit().await?;
            }
            RawPool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                step.run(&mut tx, &mut entries).await?;
                if !entries.is_empty() {
                    // The store's way (countersign-store `audit::append_and_commit`): lock the
                    // head, chain and link here, then the write and the COMMIT in one message.
                    let mut head = tx.head().await?;
                    chain_entries(&mut head, Some(&crate::audit_keys()), &mut entries)?;
                    let json: Vec<Value> = entries.iter().map(entry_json).collect();
                    let payload = hex::encode(Value::Array(json).to_string());
                    (&mut *tx)
                        .execute(
                            format!(
                                "SELECT countersign_write_audit(convert_from(decode('{payload}', 'hex'), 'UTF8')::json); COMMIT; BEGIN"
                            )
                            .as_str(),
                        )
                        .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// The audit chain head, unlocked (for seeding, which runs alone).
    pub async fn head(&self) -> Result<ChainHead> {
        const SQL: &str = "SELECT seq, hash, key_id FROM audit_head WHERE id = 1";
        let (seq, hash, key_id): (i64, String, Option<String>) = match self {
            RawPool::Sqlite { pool, .. } => sqlx::query_as(SQL).fetch_one(pool).await?,
            RawPool::Postgres(pool) => sqlx::query_as(SQL).fetch_one(pool).await?,
        };
        Ok(ChainHead { seq, hash, key_id })
    }

    pub async fn set_head(&self, head: &ChainHead) -> Result<()> {
        const SQL: &str = "UPDATE audit_head SET seq = $1, hash = $2, key_id = $3 WHERE id = 1";
        match self {
            RawPool::Sqlite { pool, .. } => {
                sqlx::query(SQL).bind(head.seq).bind(&head.hash).bind(&head.key_id).execute(pool).await?;
            }
            RawPool::Postgres(pool) => {
                sqlx::query(SQL).bind(head.seq).bind(&head.hash).bind(&head.key_id).execute(pool).await?;
            }
        }
        Ok(())
    }

    /// After a bulk load, the database as a long-running deployment would have it: on
    /// PostgreSQL the planner statistics autovacuum would have gathered while the history grew;
    /// on SQLite the write-ahead log checkpointed into the database file, as its automatic
    /// checkpoints keep it (SQLite keeps no statistics unless asked, and none are made).
    pub async fn settle(&self) -> Result<()> {
        match self {
            // What autovacuum does to an insert-only table soon after a bulk load: without it the
            // first read of each row after loading also writes its page back (hint bits), which
            // a log written over months never pays.
            RawPool::Postgres(pool) => {
                sqlx::query("VACUUM ANALYZE").execute(pool).await?;
            }
            RawPool::Sqlite { pool, .. } => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await?;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            RawPool::Sqlite { pool, .. } => pool.close().await,
            RawPool::Postgres(pool) => pool.close().await,
        }
    }
}

/// What one lifecycle works on: a requester, an approver and the requester's own app.
pub struct Subject<'a> {
    pub requester: (&'a str, &'a str),
    pub approver: (&'a str, &'a str),
    pub approver_group: &'a str,
    pub policy_id: &'a str,
    pub app_id: &'a str,
    pub app_name: &'a str,
}

/// One step of a lifecycle, with what it writes.
pub enum Step<'a> {
    Submit {
        subject: &'a Subject<'a>,
        request_id: &'a str,
        before: &'a Value,
        after: &'a Value,
        now: Millis,
    },
    Approve {
        subject: &'a Subject<'a>,
        request_id: &'a str,
        now: Millis,
    },
    Complete {
        subject: &'a Subject<'a>,
        request_id: &'a str,
        before: &'a Value,
        after: &'a Value,
        now: Millis,
    },
    /// Seeding: many rows into one table, in multi-row statements of the size that binds
    /// fastest on the backend.
    Insert {
        table: &'a str,
        columns: &'a [&'a str],
        rows: &'a [Vec<Val>],
    },
}

const TTL_MS: Millis = 30 * countersign_core::MILLIS_PER_DAY;

impl Step<'_> {
    async fn run<T: RawTx>(&self, tx: &mut T, audit: &mut Vec<AuditRecord>) -> Result<()> {
        match *self {
            Step::Submit { subject, request_id, before, after, now } => {
                tx.exec(
                    "INSERT INTO requests (id, resource_type, object_id, object_name, operation, profile_type, policy_id, \
                     status, justification, requested_by, requested_by_name, requested_at, last_modified_at, expires_at, \
                     ttl_ms, required_approvals, completion, completed_at, failure_reason, before_state, before_version, \
                     after_state, secret) VALUES ($1, 'app', $2, $3, 'update', 'app', $4, 'needsApproval', $5, $6, $7, \
                     $8, $8, $9, $10, 1, 'requester', NULL, NULL, $11, $12, $13, NULL)",
                    vec![
                        Val::Text(request_id.to_owned()),
                        Val::Text(subject.app_id.to_owned()),
                        Val::Text(subject.app_name.to_owned()),
                        Val::Text(subject.policy_id.to_owned()),
                        Val::Text("Benchmark rollout".into()),
                        Val::Text(subject.requester.0.to_owned()),
                        Val::Text(subject.requester.1.to_owned()),
                        Val::Int(now),
                        Val::Int(now + TTL_MS),
                        Val::Int(TTL_MS),
                        Val::Text(before.to_string()),
                        Val::Int(before_version(before)),
                        Val::Text(after.to_string()),
                    ],
                )
                .await?;
                tx.exec(
                    "INSERT INTO request_approver_groups (request_id, group_id) VALUES ($1, $2)",
                    vec![Val::Text(request_id.to_owned()), Val::Text(subject.approver_group.to_owned())],
                )
                .await?;
                let details = json!({"resourceType": "app", "objectId": subject.app_id, "objectName": subject.app_name,
                    "operation": "update", "justification": "Benchmark rollout"});
                audit.push(entry(subject.requester, "request", "created", ("request", request_id), details, now));
                Ok(())
            }
            Step::Insert { table, columns, rows } => {
                let per_statement = (T::PARAMETERS_PER_STATEMENT / columns.len()).max(1);
                for chunk in rows.chunks(per_statement) {
                    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
                    let mut values = Vec::with_capacity(chunk.len() * columns.len());
                    for (i, row) in chunk.iter().enumerate() {
                        let first = i * columns.len() + 1;
                        let placeholders: Vec<String> =
                            (first..first + columns.len()).map(|n| format!("${n}")).collect();
                        sql.push_str(if i == 0 { "(" } else { ", (" });
                        sql.push_str(&placeholders.join(", "));
                        sql.push(')');
                        values.extend(row.iter().cloned());
                    }
                    tx.exec(&sql, values).await?;
                }
                Ok(())
            }
            Step::Approve { subject, request_id, now } => {
                tx.exec(
                    "INSERT INTO approvals (request_id, approver_id, approver_name, decision, notes, at) \
                     VALUES ($1, $2, $3, 'approve', NULL, $4)",
                    vec![
                        Val::Text(request_id.to_owned()),
                        Val::Text(subject.approver.0.to_owned()),
                        Val::Text(subject.approver.1.to_owned()),
                        Val::Int(now),
                    ],
                )
                .await?;
                save_status(tx, request_id, "approved", now, None).await?;
                let details =
                    json!({"objectName": subject.app_name, "notes": null, "approvals": 1, "requiredApprovals": 1});
                audit.push(entry(subject.approver, "request", "approved", ("request", request_id), details, now));
                Ok(())
            }
            Step::Complete { subject, request_id, before, after, now } => {
                tx.exec(
                    "UPDATE resources SET name = $1, description = $2, document = $3, assigned_group_ids = $4, \
                     version = version + 1, updated_at = $5 WHERE id = $6",
                    vec![
                        Val::Text(subject.app_name.to_owned()),
                        Val::Text(String::new()),
                        Val::Text(after["document"].to_string()),
                        Val::Text("[]".into()),
                        Val::Int(now),
                        Val::Text(subject.app_id.to_owned()),
                    ],
                )
                .await?;
                save_status(tx, request_id, "completed", now, Some(now)).await?;
                let request_details = json!({"resourceType": "app", "objectId": subject.app_id,
                    "objectName": subject.app_name, "operation": "update"});
                audit.push(entry(
                    subject.requester,
                    "request",
                    "completed",
                    ("request", request_id),
                    request_details,
                    now,
                ));
                let applied = json!({"operation": "update", "objectName": subject.app_name, "requestId": request_id,
                    "diff": diff::render(&diff::diff(before, after), &diff::Names::new())});
                audit.push(entry(subject.requester, "change", "applied", ("app", subject.app_id), applied, now));
                Ok(())
            }
        }
    }
}

fn before_version(before: &Value) -> i64 {
    before["version"].as_i64().unwrap_or(1)
}

async fn save_status(
    tx: &mut impl RawTx,
    request_id: &str,
    status: &str,
    now: Millis,
    completed_at: Option<Millis>,
) -> Result<()> {
    tx.exec(
        "UPDATE requests SET status = $1, expires_at = $2, last_modified_at = $3, completed_at = $4, \
         failure_reason = NULL, secret = NULL WHERE id = $5",
        vec![
            Val::Text(status.to_owned()),
            Val::Int(now + TTL_MS),
            Val::Int(now),
            Val::OptInt(completed_at),
            Val::Text(request_id.to_owned()),
        ],
    )
    .await
}

/// One audit entry, not yet chained.
fn entry(
    actor: (&str, &str),
    category: &str,
    action: &str,
    target: (&str, &str),
    details: Value,
    now: Millis,
) -> AuditRecord {
    AuditRecord {
        seq: 0,
        id: uuid::Uuid::now_v7().to_string(),
        at: now,
        actor_id: Some(actor.0.to_owned()),
        actor_name: actor.1.to_owned(),
        category: category.to_owned(),
        action: action.to_owned(),
        target_type: Some(target.0.to_owned()),
        target_id: Some(target.1.to_owned()),
        details: details.to_string(),
        prev_hash: String::new(),
        hash: String::new(),
        link: None,
        key_id: None,
    }
}

/// A chained entry as `countersign_write_audit` takes it.
fn entry_json(r: &AuditRecord) -> Value {
    json!({
        "seq": r.seq, "id": r.id, "at": r.at, "actor_id": r.actor_id, "actor_name": r.actor_name,
        "category": r.category, "action": r.action, "target_type": r.target_type, "target_id": r.target_id,
        "details": "", "prev_hash": r.prev_hash, "hash": r.hash,
        "entry": String::from_utf8_lossy(&r.canonical_bytes()), "link": r.link, "key_id": r.key_id,
    })
}

/// R13's append on SQLite, as the store makes it: read the head, chain and link the entries,
/// write them in one statement, move the head.
async fn append_chained(tx: &mut impl RawTx, mut entries: Vec<AuditRecord>) -> Result<()> {
    let mut head = tx.head().await?;
    chain_entries(&mut head, Some(&crate::audit_keys()), &mut entries)?;
    let mut sql = format!("INSERT INTO audit_log ({}) VALUES ", crate::bulk::AUDIT_COLUMNS.join(", "));
    let mut values = Vec::with_capacity(entries.len() * 15);
    for (i, record) in entries.iter().enumerate() {
        let first = i * 15 + 1;
        let placeholders: Vec<String> = (first..first + 15).map(|n| format!("${n}")).collect();
        sql.push_str(if i == 0 { "(" } else { ", (" });
        sql.push_str(&placeholders.join(", "));
        sql.push(')');
        values.extend(crate::bulk::audit_values(record));
    }
    tx.exec(&sql, values).await?;
    tx.exec(
        "UPDATE audit_head SET seq = $1, hash = $2, key_id = $3 WHERE id = 1",
        vec![Val::Int(head.seq), Val::Text(head.hash), Val::OptText(head.key_id)],
    )
    .await
}
