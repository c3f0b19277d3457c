//! Countersign's persistence: SQLite (the embedded default) and PostgreSQL through sqlx's `Any`
//! driver, so one SQL text serves both where the dialects agree.
//!
//! The transactions here are what keep R4 (one open request per object, a partial unique
//! index), R8 (exactly-once completion, a row lock) and R13 (the audit entry is written with the
//! change it records, under the chain-head lock) true.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod approvers;
mod audit;
mod audit_export;
mod auth;
mod control;
mod dependencies;
mod directory;
mod error;
mod flash;
mod group_commit;
mod names;
mod notify;
mod objects;
mod passkeys;
mod policies;
mod requests;
mod rows;
mod sso;
mod step_up;
mod tenant;
#[cfg(feature = "test-support")]
pub mod testing;

pub use audit::{AuditFilter, AuditKeyring, NewAudit, VerifyInputs, VerifyReport, VerifyResult};
pub use audit_export::{ExportCursor, PendingCheckpoint, LATE_CHECKPOINTS};
pub use auth::{Budget, ClientInfo, LoginFailure, SessionInfo, SessionRecord, TokenRecord, MAX_CLIENT_TEXT};
pub use dependencies::{DependencyNow, DependencyState};
pub use directory::{
    AccountAccess, AccountRecord, Actor, EligibilityRow, GroupRecord, RoleAssignmentRecord, RoleRecord,
};
pub use error::StoreError;
pub use group_commit::WriterStats;
pub use notify::{Delivery, DeliveryRecord};
pub use objects::{redact_webhook_url, Proposal, ResourceList, ResourceRecord};
pub use passkeys::{Ceremony, NewPasskey, PasskeyRecord, StoredPasskey, MAX_PASSKEYS_PER_ACCOUNT};
pub use requests::{ApprovalRecord, RequestFilter, RequestList, RequestRecord, RequestView, Submitted};
pub use sso::{NewSsoIdentity, SsoIdentity, SsoLogin};
pub use step_up::{StepUpFinding, StepUpInput, StepUpIntent, StepUpReport, StoredStepUp, STEP_UP};
pub use tenant::{PolicyPlan, TenantPlan};

use group_commit::{GroupCommit, GroupWrite};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};
use std::sync::Arc;
use std::time::Duration;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer: writes queue for this one, in order, instead of failing with
    /// `SQLITE_BUSY`, and share their commits (see `group_commit`). PostgreSQL writes run
    /// side by side on the pool, under row locks.
    group_commit: Option<Arc<GroupCommit>>,
    /// The keys new audit entries are linked with (R13); without them entries are chained
    /// unkeyed, which the store refuses once the chain is keyed.
    audit_keys: Option<AuditKeyring>,
}

/// A write transaction, or (from [`Store::reader`]) a connection for reads.
pub(crate) struct WriteTx {
    conn: TxConn,
    lock_rows: bool,
    backend: Backend,
    /// Audit entries to chain and write at commit (`audit::append`).
    audit: Vec<(NewAudit, countersign_core::Millis)>,
    audit_keys: Option<AuditKeyring>,
}

enum TxConn {
    /// A transaction of its own on a pooled connection.
    Pool(Transaction<'static, Any>),
    /// A savepoint in SQLite's shared write transaction.
    Group(GroupWrite),
    /// A pooled connection outside any transaction, for reads whose result the gate checks
    /// again under lock (a proposal's `before`): no BEGIN and ROLLBACK round trips.
    Read(PoolConnection<Any>),
}

impl WriteTx {
    /// `FOR UPDATE` on PostgreSQL; nothing on SQLite, whose writer lock already serialises.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Postgres if self.lock_rows => " FOR UPDATE",
            _ => "",
        }
    }

    /// Takes the audit chain head's lock first, so that first-start steps run one replica at a
    /// time: the second replica then sees what the first created.
    pub(crate) async fn serialise_on_chain_head(&mut self) -> Result<()> {
        let sql = format!("SELECT seq FROM audit_head WHERE id = 1{}", self.for_update());
        sqlx::query(&sql).fetch_one(self.conn()).await?;
        Ok(())
    }

    /// The connection this transaction runs on.
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        match &mut self.conn {
            TxConn::Pool(tx) => tx,
            TxConn::Group(write) => write,
            TxConn::Read(conn) => conn,
        }
    }

    /// Writes the audit entries and makes the transaction durable; returns once it is.
    pub(crate) async fn commit(mut self) -> Result<()> {
        let entries = std::mem::take(&mut self.audit);
        let keys = self.audit_keys.as_ref();
        match self.conn {
            TxConn::Read(_) => {}
            TxConn::Group(mut write) => {
                if !entries.is_empty() {
                    audit::append_here(&mut write, keys, entries).await?;
                }
                write.commit().await?;
            }
            TxConn::Pool(tx) if entries.is_empty() => tx.commit().await?,
            TxConn::Pool(mut tx) => {
                audit::append_and_commit(&mut tx, keys, entries).await?;
                // What is left is the empty transaction that followed the COMMIT. Dropping the
                // handle queues its ROLLBACK, which travels with the check the pool makes of
                // every connection returned to it: no round trip of its own.
                drop(tx);
            }
        }
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self.conn {
            TxConn::Pool(tx) => tx.rollback().await?,
            TxConn::Group(write) => write.rollback().await?,
            TxConn::Read(_) => {}
        }
        Ok(())
    }
}

/// Pool settings; the defaults suit one machine.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    /// The audit keys (from the key file, never the database); see [`AuditKeyring`].
    pub audit_keys: Option<AuditKeyring>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_connections: 10, connect_timeout: Duration::from_secs(10), audit_keys: None }
    }
}

impl Store {
    /// Connects, applies migrations and seeds the built-in roles. The URL picks the backend:
    /// `sqlite://path?mode=rwc` or `postgres://…`.
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Config(format!(
                "database URL must start with sqlite:// or postgres://, got '{}'",
                redact_url(url)
            )));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            // Checked only when it is worth a round trip (see `pool_health`).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if error::pool_health::check_before_use(meta.idle_for) {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL with synchronous=FULL: an acknowledged commit survives power loss.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", redact_url(url))))?;
        let group_commit = match backend {
            Backend::Sqlite => Some(GroupCommit::start(&pool).await?),
            Backend::Postgres => None,
        };
        let store = Store { pool, backend, group_commit, audit_keys: options.audit_keys };
        store.migrate().await?;
        store.backfill_name_skeletons().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The keys this store links audit entries with.
    pub fn audit_keys(&self) -> Option<&AuditKeyring> {
        self.audit_keys.as_ref()
    }

    /// How SQLite's writes are being grouped into commits; `None` on PostgreSQL.
    pub fn writer_stats(&self) -> Option<WriterStats> {
        self.group_commit.as_ref().map(|g| g.stats())
    }

    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&self.pool).await?,
        }
        Ok(())
    }

    pub(crate) async fn begin_write(&self) -> Result<WriteTx> {
        let conn = match &self.group_commit {
            Some(group_commit) => TxConn::Group(group_commit.begin().await?),
            None => TxConn::Pool(self.pool.begin().await?),
        };
        Ok(WriteTx {
            conn,
            lock_rows: true,
            backend: self.backend,
            audit: Vec::new(),
            audit_keys: self.audit_keys.clone(),
        })
    }

    /// A connection for reads, in no transaction and taking no row locks.
    pub(crate) async fn reader(&self) -> Result<WriteTx> {
        let conn = TxConn::Read(self.pool.acquire().await?);
        Ok(WriteTx { conn, lock_rows: false, backend: self.backend, audit: Vec::new(), audit_keys: None })
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Readiness: the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(group_commit) = &self.group_commit {
            group_commit.close().await;
        }
        self.pool.close().await;
    }
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `$first, $first+1, …` for `count` values, for `IN (…)` lists.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

pub(crate) type Row = AnyRow;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(placeholders(3, 2), "$3, $4");
    }
}

/// A value for a `$n` placeholder in a query built at run time.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// `WHERE` conditions with numbered placeholders, for list queries with optional filters.
#[derive(Default)]
pub(crate) struct Conditions {
    parts: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    /// Adds a condition whose one `?` becomes the next placeholder.
    pub(crate) fn add(&mut self, condition: &str, bind: Bind) {
        self.binds.push(bind);
        self.parts.push(condition.replacen('?', &format!("${}", self.binds.len()), 1));
    }

    /// Adds a condition whose `{}` becomes a list of placeholders, one per value.
    pub(crate) fn add_list(&mut self, template: &str, values: &[String]) {
        let list = placeholders(self.binds.len() + 1, values.len());
        self.binds.extend(values.iter().cloned().map(Bind::Text));
        self.parts.push(template.replacen("{}", &list, 1));
    }

    pub(crate) fn where_clause(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.parts.join(" AND "))
        }
    }

    pub(crate) fn bind_to<'q>(
        self,
        mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
        for bind in self.binds {
            query = match bind {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        query
    }
}
