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
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(ref db) if is_connection_loss(db.code().as_deref()) => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Database(other),
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
