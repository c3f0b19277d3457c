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

/// PostgreSQL class 57 (operator intervention, e.g. `pg_terminate_backend`) and 08 (connection).
fn is_connection_loss(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("57") || c.starts_with("08"))
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
