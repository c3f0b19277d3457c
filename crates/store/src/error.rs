use countersign_core::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("{0}")]
    NotFound(String),
    /// R4: the object already has an open request.
    #[error("{object} already has an open approval request ({request_id}); act on it or cancel it first")]
    RequestOpen { request_id: String, object: String },
    /// The object changed between reading it and writing the change; read it again.
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Config(String),
    /// The database cannot be reached or dropped the connection.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A stored request that cannot be read back (a state nested past what the JSON reader
    /// reads, a column that does not decode). Lists and sweeps pass over it; see `requests`.
    /// `reason` goes to the log and the audit log, not to the caller.
    #[error(
        "request {id} is stored in a form this server cannot read (the server's log says why); lists leave it out, and it expires when its time comes"
    )]
    Unreadable { id: String, reason: String },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed | sqlx::Error::Tls(_) => {
                pool_health::connection_lost();
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(ref db) if is_connection_loss(db.code().as_deref()) => {
                pool_health::connection_lost();
                StoreError::Unavailable(e.to_string())
            }
            // Issue 15, finding 10: PostgreSQL's text holds no NUL. Input is checked for it
            // (`core::limits`); a path that missed it still answers the caller's mistake as such.
            sqlx::Error::Database(ref db) if is_nul_refused(db.code().as_deref()) => {
                tracing::warn!(error = %e, "the database refused a NUL character that input checks let through");
                StoreError::Domain(
                    countersign_core::limits::InputLimit::Character { at: "a text value".into(), character: '\0' }
                        .into(),
                )
            }
            other => StoreError::Database(other),
        }
    }
}

/// When a pooled connection is worth checking (a round trip) before it is handed out.
///
/// Checking every one costs a round trip per checkout, which the lifecycle benchmark showed to
/// be a large share of all of them. So a connection is checked when it has been idle a while
/// (the server or a firewall may have dropped it meanwhile), and every connection is checked for
/// a while after any connection was lost (a restart, a failover, `pg_terminate_backend`), so
/// that the others that went with it are weeded out instead of failing requests.
pub(crate) mod pool_health {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// Idle longer than this, a connection is checked before use.
    pub const IDLE_CHECK_AFTER: Duration = Duration::from_secs(1);
    /// After a connection was lost, every connection is checked for this long.
    const WARY_FOR: Duration = Duration::from_secs(30);

    fn epoch() -> Instant {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        *EPOCH.get_or_init(Instant::now)
    }

    /// Milliseconds since `epoch()` at the last loss, plus one (zero: never). Process-wide, as
    /// the error that reports a loss does not know which pool it came from; checking a few
    /// connections more than needed is harmless.
    static LAST_LOSS: AtomicU64 = AtomicU64::new(0);

    pub fn connection_lost() {
        let since_epoch = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        LAST_LOSS.store(since_epoch + 1, Ordering::Relaxed);
    }

    pub fn check_before_use(idle_for: Duration) -> bool {
        let since_loss = match LAST_LOSS.load(Ordering::Relaxed) {
            0 => None,
            lost => Some(Duration::from_millis(
                u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX).saturating_sub(lost - 1),
            )),
        };
        worth_checking(idle_for, since_loss)
    }

    fn worth_checking(idle_for: Duration, since_loss: Option<Duration>) -> bool {
        idle_for >= IDLE_CHECK_AFTER || since_loss.is_some_and(|since| since < WARY_FOR)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn connections_are_checked_when_idle_a_while_or_soon_after_a_loss() {
            let ms = Duration::from_millis;
            assert!(!worth_checking(ms(5), None), "a busy pool, nothing lost: no round trip");
            assert!(worth_checking(ms(1000), None), "idle a second: checked");
            assert!(worth_checking(ms(5), Some(ms(29_000))), "just after a loss: every one checked");
            assert!(!worth_checking(ms(5), Some(ms(31_000))), "long after a loss: back to normal");
            connection_lost();
            assert!(check_before_use(ms(0)), "a loss reported now is seen at once");
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Config(format!("database migration failed: {e}"))
    }
}

/// PostgreSQL's codes for a NUL in text (22021, character_not_in_repertoire) and for `\u0000`
/// in JSON read as text (22P05, untranslatable_character).
fn is_nul_refused(code: Option<&str>) -> bool {
    matches!(code, Some("22021" | "22P05"))
}

/// PostgreSQL class 57 (operator intervention, e.g. `pg_terminate_backend`) and 08 (connection).
fn is_connection_loss(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("57") || c.starts_with("08"))
}

/// A rule the schema keeps with a unique index or key, as a violation of it is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UniqueRule {
    /// R4: one open request per object (`requests_one_open_per_object`, a partial index).
    OneOpenRequestPerObject,
    /// A live account's username is its own (`accounts_username`).
    UsernameTaken,
    /// One access policy per profile type (`access_policies_profile_type`).
    OnePolicyPerProfileType,
    /// R7: each approver decides a request once (`approvals`' primary key).
    OneDecisionPerApprover,
    /// R20: no two live accounts have display names alike (`accounts_display_name_skeleton`).
    DisplayNameTaken,
}

/// Each rule's constraint as PostgreSQL names it, and its columns as SQLite names them (SQLite
/// reports no constraint name, only `UNIQUE constraint failed: table.column, …`). The names are
/// those of the migrations.
const UNIQUE_RULES: [(UniqueRule, &str, &str); 5] = [
    (UniqueRule::OneOpenRequestPerObject, "requests_one_open_per_object", "requests.resource_type, requests.object_id"),
    (UniqueRule::UsernameTaken, "accounts_username", "accounts.username"),
    (UniqueRule::OnePolicyPerProfileType, "access_policies_profile_type", "access_policies.profile_type"),
    (UniqueRule::OneDecisionPerApprover, "approvals_pkey", "approvals.request_id, approvals.approver_id"),
    (UniqueRule::DisplayNameTaken, "accounts_display_name_skeleton", "accounts.display_name_skeleton"),
];

/// The rule a failed statement broke, if it failed on one of the unique constraints above;
/// `None` for any other error, including a unique violation no rule owns.
pub(crate) fn broken_unique_rule(e: &sqlx::Error) -> Option<UniqueRule> {
    let sqlx::Error::Database(db) = e else { return None };
    if !db.is_unique_violation() {
        return None;
    }
    let found = match db.constraint() {
        Some(name) => UNIQUE_RULES.iter().find(|(_, postgres, _)| *postgres == name),
        None => {
            let columns = db.message().strip_prefix("UNIQUE constraint failed: ")?;
            UNIQUE_RULES.iter().find(|(_, _, sqlite)| *sqlite == columns)
        }
    };
    found.map(|(rule, _, _)| *rule)
}

#[cfg(test)]
mod unique_rule_tests {
    use super::{broken_unique_rule, UniqueRule};
    use crate::testing::{TestBackend, TestDatabase};
    use crate::{Store, StoreOptions};

    const ACCOUNT: &str =
        "INSERT INTO accounts (id, username, display_name, kind, enabled, version, created_at, updated_at) \
         VALUES ($1, $2, 'x', 'human', 1, 1, 0, 0)";
    const NAMED: &str =
        "INSERT INTO accounts (id, username, display_name, display_name_skeleton, kind, enabled, version, created_at, updated_at) \
         VALUES ($1, $2, 'x', $3, 'human', 1, 1, 0, 0)";
    const POLICY: &str =
        "INSERT INTO access_policies (id, display_name, description, profile_type, approver_group_ids, \
         required_approvals, completion, request_ttl_ms, version, created_at, updated_at) \
         VALUES ($1, 'x', '', 'app', '[]', 1, 'requester', 1, 1, 0, 0)";
    const REQUEST: &str = "INSERT INTO requests (id, resource_type, object_id, object_name, operation, profile_type, status, \
         justification, requested_by, requested_by_name, requested_at, last_modified_at, expires_at, ttl_ms, \
         required_approvals, completion, before_state, before_version, after_state) \
         VALUES ($1, 'app', 'object-1', 'x', 'update', 'app', $2, 'j', 'a', 'a', 0, 0, 1, 1, 1, 'requester', '{}', 1, '{}')";
    const APPROVAL: &str = "INSERT INTO approvals (request_id, approver_id, approver_name, decision, at) \
         VALUES ('request-1', 'approver-1', 'x', 'approve', 0)";

    async fn refused(store: &Store, sql: &str, binds: &[&str]) -> Option<UniqueRule> {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        let error = query.execute(store.pool()).await.expect_err("the statement breaks a unique constraint");
        assert!(error.as_database_error().is_some_and(|e| e.is_unique_violation()), "{error}");
        broken_unique_rule(&error)
    }

    async fn insert(store: &Store, sql: &str, binds: &[&str]) {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        query.execute(store.pool()).await.expect("the first row is accepted");
    }

    crate::backend_tests!(each_rules_constraint_is_recognised_by_name_on_every_backend);
    async fn each_rules_constraint_is_recognised_by_name_on_every_backend(backend: TestBackend) {
        let database = TestDatabase::create(backend).await;
        let store = Store::connect(&database.url, StoreOptions::default()).await.expect("store");

        insert(&store, ACCOUNT, &["account-1", "alice"]).await;
        let taken = refused(&store, ACCOUNT, &["account-2", "alice"]).await;
        assert_eq!(taken, Some(UniqueRule::UsernameTaken), "{backend:?}");
        let same_id = refused(&store, ACCOUNT, &["account-1", "bob"]).await;
        insert(&store, NAMED, &["account-3", "carol", "carol"]).await;
        let alike = refused(&store, NAMED, &["account-4", "c4rol", "carol"]).await;
        assert_eq!(alike, Some(UniqueRule::DisplayNameTaken), "{backend:?}");
        assert_eq!(same_id, None, "{backend:?}: a primary key no rule owns is not classified");

        insert(&store, POLICY, &["policy-1"]).await;
        let second_policy = refused(&store, POLICY, &["policy-2"]).await;
        assert_eq!(second_policy, Some(UniqueRule::OnePolicyPerProfileType), "{backend:?}");

        insert(&store, REQUEST, &["request-1", "needsApproval"]).await;
        let second_open = refused(&store, REQUEST, &["request-2", "approved"]).await;
        assert_eq!(second_open, Some(UniqueRule::OneOpenRequestPerObject), "{backend:?}");

        insert(&store, APPROVAL, &[]).await;
        let twice = refused(&store, APPROVAL, &[]).await;
        assert_eq!(twice, Some(UniqueRule::OneDecisionPerApprover), "{backend:?}");

        store.close().await;
        database.drop_database().await;
    }
}
