//! Test databases on every backend (feature `test-support`): a SQLite file in a temporary
//! directory always, and a freshly created PostgreSQL database when
//! `COUNTERSIGN_TEST_DATABASE_URL` is set. [`backend_tests!`](crate::backend_tests) declares one
//! test per backend. A test that cannot run says so with [`skip`], which fails instead under
//! `COUNTERSIGN_REQUIRE_ALL_TESTS=1`.
#![allow(clippy::panic, clippy::expect_used)]

use crate::{Actor, Result, Store, TokenRecord};
use countersign_core::Millis;
use sqlx::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// Declares one test per backend for `async fn $test(backend: TestBackend)`, written beside it:
/// a module named after the function with a `sqlite` and a `postgres` test, so that a failure
/// names its backend (`lifecycle::r1_…::postgres`). Without `COUNTERSIGN_TEST_DATABASE_URL` the
/// `postgres` test is skipped (see [`postgres_available`]). The runtime is multi-threaded with
/// two workers, or `worker_threads = N`; anything else after the name is passed to
/// `#[tokio::test(…)]` as it is (`flavor = "current_thread"`).
///
/// ```text
/// backend_tests!(r4_one_open_request_per_object, worker_threads = 4);
/// async fn r4_one_open_request_per_object(backend: TestBackend) { … }
/// ```
#[macro_export]
macro_rules! backend_tests {
    ($test:ident) => {
        $crate::backend_tests!($test, worker_threads = 2);
    };
    ($test:ident, worker_threads = $workers:literal) => {
        $crate::backend_tests!($test, flavor = "multi_thread", worker_threads = $workers);
    };
    ($test:ident, $($runtime:tt)+) => {
        mod $test {
            #[::tokio::test($($runtime)+)]
            async fn sqlite() {
                super::$test($crate::testing::TestBackend::Sqlite).await;
            }

            #[::tokio::test($($runtime)+)]
            async fn postgres() {
                if $crate::testing::postgres_available(concat!(module_path!(), "::postgres")) {
                    super::$test($crate::testing::TestBackend::Postgres).await;
                }
            }
        }
    };
}

/// Says that `what` does not run, and `why`: one `skipped:` line written straight to the
/// terminal (past the test harness's capture, so that a run shows every skip). Under
/// `COUNTERSIGN_REQUIRE_ALL_TESTS=1` (CI) a skip is a failure instead.
pub fn skip(what: &str, why: &str) {
    use std::io::Write;
    assert!(
        std::env::var("COUNTERSIGN_REQUIRE_ALL_TESTS").as_deref() != Ok("1"),
        "COUNTERSIGN_REQUIRE_ALL_TESTS=1 but {what} cannot run: {why}"
    );
    let _ = std::io::stderr().write_all(format!("skipped: {what} ({why})\n").as_bytes());
}

/// Whether PostgreSQL runs are configured; when they are not, `what` is skipped (see [`skip`]).
pub fn postgres_available(what: &str) -> bool {
    if postgres_admin_url().is_some() {
        return true;
    }
    skip(what, "COUNTERSIGN_TEST_DATABASE_URL is not set");
    false
}

fn postgres_admin_url() -> Option<String> {
    std::env::var("COUNTERSIGN_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

const POSTGRES_PREFIX: &str = "countersign_test_";
/// A test database older than this belongs to a run that died without dropping it; every live
/// one is younger, so parallel test binaries never drop each other's.
const STALE_AFTER_MILLIS: i64 = 3_600_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A database that exists for one test. A SQLite file goes with its directory when this value
/// is dropped. A PostgreSQL database is dropped by [`TestDatabase::drop_database`], or else when
/// this value is dropped (as it is when the test panics).
pub struct TestDatabase {
    pub backend: TestBackend,
    pub url: String,
    postgres_name: Option<String>,
    admin_url: Option<String>,
    dropped: AtomicBool,
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
                TestDatabase {
                    backend,
                    url,
                    postgres_name: None,
                    admin_url: None,
                    dropped: AtomicBool::new(false),
                    _dir: dir,
                }
            }
            TestBackend::Postgres => {
                let admin_url = admin_url.expect("a PostgreSQL URL");
                let name = format!("{POSTGRES_PREFIX}{}", uuid::Uuid::now_v7().simple());
                let mut conn = connect(admin_url).await.unwrap_or_else(|e| panic!("{e}"));
                drop_stale_databases_once(&mut conn).await;
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
                let url = database_url(admin_url, &name);
                TestDatabase {
                    backend,
                    url,
                    postgres_name: Some(name),
                    admin_url: Some(admin_url.to_owned()),
                    dropped: AtomicBool::new(false),
                    _dir: dir,
                }
            }
        }
    }

    /// Drops a PostgreSQL test database (best effort: one that is left behind is dropped when
    /// this value is, or by a later run's sweep; SQLite needs nothing).
    pub async fn drop_database(&self) {
        if let (Some(name), Some(admin_url)) = (&self.postgres_name, &self.admin_url) {
            if drop_postgres_database(admin_url, name).await.is_ok() {
                self.dropped.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Test set-up only: an API token for any account, issued by `issuer` on the system's behalf, so
/// that it makes the account nobody's (R16), as first start does (the production API mints only
/// for the caller's own account).
pub async fn issue_token(
    store: &Store,
    issuer: &Actor,
    account_id: &str,
    display_name: &str,
    token_hash: &str,
    now: Millis,
) -> Result<TokenRecord> {
    let mut tx = store.begin_write().await?;
    let record =
        crate::auth::insert_token(&mut tx, issuer, account_id, &[], display_name, token_hash, None, now).await?;
    tx.commit().await?;
    Ok(record)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (Some(name), Some(admin_url)) = (self.postgres_name.take(), self.admin_url.take()) else {
            return;
        };
        if self.dropped.load(Ordering::SeqCst) {
            return;
        }
        // This may run inside the test's runtime, which cannot be blocked on: a runtime of its
        // own on a thread of its own. Never panic here: it may be during a test's unwinding.
        let dropped = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(drop_postgres_database(&admin_url, &name)).map_err(|e| format!("{name}: {e}"))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {e}"),
            Err(_) => eprintln!("could not drop a test database: the dropping thread panicked"),
        }
    }
}

async fn connect(admin_url: &str) -> Result<sqlx::PgConnection, String> {
    tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect(admin_url))
        .await
        .map_err(|_| format!("timed out connecting to PostgreSQL at {admin_url}"))?
        .map_err(|e| format!("cannot connect to PostgreSQL at {admin_url}: {e}"))
}

async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<(), String> {
    let mut conn = connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())
}

/// Once per process: drops the test databases that runs killed before they could drop their own
/// (a timeout, Ctrl-C), once they are older than [`STALE_AFTER_MILLIS`]. Best effort.
async fn drop_stale_databases_once(conn: &mut sqlx::PgConnection) {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::SeqCst) {
        return;
    }
    let pattern = format!("{}%", POSTGRES_PREFIX.replace('_', "\\_"));
    // Ages by the database server's clock: the one place every test run shares.
    let Ok(found) = sqlx::query_as::<_, (String, i64)>(
        "SELECT datname, (extract(epoch FROM clock_timestamp()) * 1000)::bigint FROM pg_database WHERE datname LIKE $1",
    )
    .bind(pattern)
    .fetch_all(&mut *conn)
    .await
    else {
        return;
    };
    for (name, _) in found.into_iter().filter(|(name, now)| is_stale(name, *now)) {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut *conn).await;
    }
}

/// Whether a test database's name says it was made more than [`STALE_AFTER_MILLIS`] before `now` (in
/// milliseconds since the Unix epoch): names end in a UUIDv7, whose first 48 bits are its
/// creation time. Other names are never stale.
fn is_stale(name: &str, now: i64) -> bool {
    let created = name
        .strip_prefix(POSTGRES_PREFIX)
        .and_then(|id| uuid::Uuid::try_parse(id).ok())
        .and_then(|id| id.get_timestamp())
        .and_then(|timestamp| unix_millis(timestamp.to_unix()));
    created.is_some_and(|created| now.saturating_sub(created) > STALE_AFTER_MILLIS)
}

fn unix_millis((seconds, nanos): (u64, u32)) -> Option<i64> {
    i64::try_from(Duration::new(seconds, nanos).as_millis()).ok()
}

/// `admin_url` naming database `name` instead, keeping its parameters (`?sslmode=disable`).
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, parameters) = match admin_url.split_once('?') {
        Some((base, parameters)) => (base, format!("?{parameters}")),
        None => (admin_url, String::new()),
    };
    match base.rsplit_once('/') {
        Some((server, _)) if server.contains("://") && !server.ends_with('/') => format!("{server}/{name}{parameters}"),
        _ => format!("{base}/{name}{parameters}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_test_databases_older_than_an_hour_are_stale() {
        let id = uuid::Uuid::now_v7();
        let name = format!("{POSTGRES_PREFIX}{}", id.simple());
        let made = unix_millis(id.get_timestamp().expect("a UUIDv7 has a time").to_unix()).expect("a time after 1970");
        let hour = STALE_AFTER_MILLIS;
        assert!(!is_stale(&name, made), "made just now");
        assert!(!is_stale(&name, made + hour - 60_000));
        assert!(is_stale(&name, made + hour + 60_000));
        let v4 =
            format!("{POSTGRES_PREFIX}{}", uuid::Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef).simple());
        assert!(!is_stale(&v4, made + 1000 * hour), "no time in the name");
        assert!(!is_stale("countersign_test_not_an_id", made + 1000 * hour));
        assert!(!is_stale("production", made + 1000 * hour));
    }

    #[test]
    fn a_test_database_url_keeps_the_server_and_its_parameters() {
        let cases = [
            ("postgres://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1:5432/t1"),
            ("postgres://u@h/test?sslmode=disable", "postgres://u@h/t1?sslmode=disable"),
            ("postgres://u@h:5432", "postgres://u@h:5432/t1"),
        ];
        for (admin, expected) in cases {
            assert_eq!(database_url(admin, "t1"), expected, "{admin}");
        }
    }
}
