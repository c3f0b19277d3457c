//! Three replicas of the server on one PostgreSQL database: three `AppState`s, each with its own
//! connection pool, served on three ports. What one replica does, the others see, because
//! sessions, sign-in counters, the audit chain and background work live in the database.
//!
//! PostgreSQL only: without `COUNTERSIGN_TEST_DATABASE_URL` each test prints one `skipped:`
//! line and passes (fails under `COUNTERSIGN_REQUIRE_ALL_TESTS=1`).

#[allow(dead_code)] // the end-to-end harness has more than these tests use
#[path = "../e2e/harness.rs"]
mod harness;

mod cluster;

mod expiry;
mod faults;
mod load;
mod races;
mod sessions;
