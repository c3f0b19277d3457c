//! Test databases on every backend (feature `test-support`): a SQLite file in a temporary
//! directory always, and a freshly created PostgreSQL database when
//! `COUNTERSIGN_TEST_DATABASE_URL` is set. With `COUNTERSIGN_REQUIRE_ALL_TESTS=1` a missing
//! PostgreSQL is a failure instead of a skip.
#![allow(clippy::panic, clippy::expect_used)]

use crate::{Actor, Result, Store, TokenRecord};
use countersign_core::Millis;
use sqlx::Connection;
use std::sync::Once;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// The backends this run tests; prints one `skipped:` line when PostgreSQL is not configured.
pub fn backends() -> Vec<TestBackend> {
    let mut out = vec![TestBackend::Sqlite];
    if postgres_configured() {
        out.push(TestBackend::Postgres);
    } else {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| eprintln!("skipped: PostgreSQL runs (COUNTERSIGN_TEST_DATABASE_URL is not set)"));
    }
    out
}

/// Whether PostgreSQL runs are configured; panics when they are not but
/// `COUNTERSIGN_REQUIRE_ALL_TESTS=1`. For tests that need PostgreSQL alone (and print their own
/// `skipped:` line).
pub fn postgres_configured() -> bool {
    if postgres_admin_url().is_some() {
        return true;
    }
    assert!(
        std::env::var("COUNTERSIGN_REQUIRE_ALL_TESTS").as_deref() != Ok("1"),
        "COUNTERSIGN_REQUIRE_ALL_TESTS=1 but COUNTERSIGN_TEST_DATABASE_URL is not set"
    );
    false
}

fn postgres_admin_url() -> Option<String> {
    std::env::var("COUNTERSIGN_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// A database that exists for one test. Call [`TestDatabase::drop_database`] at the end; a
/// SQLite file goes with its directory when this value is dropped.
pub struct TestDatabase {
    pub backend: TestBackend,
    pub url: String,
    postgres_name: Option<String>,
    admin_url: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDatabase {
    pub async fn create(backend: TestBackend) -> TestDatabase {
        let admin_url = match backend {
            TestBackend::Sqlite => None,
            TestBackend::Postgres => Some(postgres_admin_url().expect("COUNTERSIGN_TEST_DATABASE_URL")),
        };
        Self::create_on(backend, admin_url.as_deref()).await
    }

    /// Like [`TestDatabase::create`], on the PostgreSQL server `admin_url` names (the benchmark
    /// tool takes it as a flag).
    pub async fn create_on(backend: TestBackend, admin_url: Option<&str>) -> TestDatabase {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend {
            TestBackend::Sqlite => {
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("countersign.db").display());
                TestDatabase { backend, url, postgres_name: None, admin_url: None, _dir: dir }
            }
            TestBackend::Postgres => {
                let admin_url = admin_url.expect("a PostgreSQL URL");
                let name = format!("countersign_test_{}", uuid::Uuid::now_v7().simple());
                let mut conn =
                    tokio::time::timeout(std::time::Duration::from_secs(10), sqlx::PgConnection::connect(admin_url))
                        .await
                        .unwrap_or_else(|_| panic!("timed out connecting to PostgreSQL at {admin_url}"))
                        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {admin_url}: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
                let url = match admin_url.rsplit_once('/') {
                    Some((server, _)) if server.contains("://") && !server.ends_with('/') => format!("{server}/{name}"),
                    _ => format!("{admin_url}/{name}"),
                };
                TestDatabase {
                    backend,
                    url,
                    postgres_name: Some(name),
                    admin_url: Some(admin_url.to_owned()),
                    _dir: dir,
                }
            }
        }
    }

    /// Drops a PostgreSQL test database (best effort; SQLite needs nothing).
    pub async fn drop_database(&self) {
        if let (Some(name), Some(admin_url)) = (&self.postgres_name, &self.admin_url) {
            if let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
            }
        }
    }
}

/// Test set-up only: an API token for any account, issued by `issuer` (the production API mints
/// only for the caller's own account).
pub async fn issue_token(
    store: &Store,
    issuer: &Actor,
    account_id: &str,
    display_name: &str,
    token_hash: &str,
    now: Millis,
) -> Result<TokenRecord> {
    let mut tx = store.begin_write().await?;
    let record = crate::auth::insert_token(&mut tx, issuer, account_id, display_name, token_hash, None, now).await?;
    tx.commit().await?;
    Ok(record)
}
