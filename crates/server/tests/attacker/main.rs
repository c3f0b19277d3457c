//! The model-based attacker test (issue #13). An attacker, `mallory`, starts with one account of
//! a random built-in role, sometimes also in the approver group, in a tenant where every profile
//! type is protected, and plays random sequences of every operation the REST API offers, each as
//! any account it controls (by bearer token or by a signed-in session). Then it harvests: it
//! approves every open request with every account it controls, and completes every approved one
//! its own accounts asked for.
//!
//! The oracle never asks Countersign who controls what or who may approve: its ground truth is
//! which credentials the attacker knows (see `oracle::controlled`), and what the store holds.
//!
//! - **Property 1**, honest approvers approve nothing: nothing a controlled account proposed under
//!   a protected profile type is `completed`, no protected object changed, and no controlled
//!   account other than mallory's own (if it already was one) is an eligible approver.
//! - **Property 2**, bob approves exactly one benign request of mallory's, having read it, before
//!   the sequence: its change, exactly as approved, is the only protected effect.
//!
//! Each case runs on a fresh tenant and database. A failure is shrunk to a short sequence, and
//! printed with what the server answered at each step and the seed that replays the run:
//!
//! ```text
//! COUNTERSIGN_ATTACKER_CASES=200 COUNTERSIGN_ATTACKER_STEPS=60 COUNTERSIGN_ATTACKER_SEED=<seed> \
//!     cargo test -p countersign-server --test attacker
//! ```
//!
//! `COUNTERSIGN_ATTACKER_CASES` is the number of cases per property and backend (default 12 on
//! SQLite, 3 on PostgreSQL), `COUNTERSIGN_ATTACKER_STEPS` the longest sequence (default 32), and
//! `COUNTERSIGN_ATTACKER_SEED` replays a printed seed (with the same cases and steps). Nothing is
//! written to the working tree (proptest's failure files are off).

#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;

mod actions;
mod attacker;
mod http;
mod oracle;
mod tenant;

use actions::{case, Case};
use countersign_store::testing::{postgres_available, TestBackend};
use harness::{Setup, TestApp};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// Which property a test checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Property {
    /// Honest approvers approve nothing.
    NothingApproved,
    /// bob approves one benign request of mallory's.
    OneBenignApproval,
}

/// Plays one case on a fresh tenant: the set-up, the sequence, the harvest, then the oracle.
/// Each case has a runtime of its own, so that its server stops with it.
fn play(property: Property, backend: TestBackend, case: &Case) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| TestCaseError::fail(format!("no runtime: {e}")))?;
    runtime.block_on(async {
        let mut app = TestApp::start(backend, &Setup::protected()).await;
        let database = app.take_database();
        let verdict = attack(&app, property, case).await;
        drop(app);
        if let Some(database) = database {
            database.drop_database().await;
        }
        verdict.map_err(TestCaseError::fail)
    })
}

async fn attack(app: &TestApp, property: Property, case: &Case) -> Result<(), String> {
    let tenant = tenant::prepare(app, case.role, case.approver).await;
    let approved = match property {
        Property::NothingApproved => None,
        Property::OneBenignApproval => Some(tenant.approve_one_benign_request(app, case.benign).await?),
    };
    let before = oracle::World::read(&app.store).await;
    let mut mallory = attacker::Attacker::new(app, &tenant, approved.as_ref()).await;
    for action in &case.actions {
        mallory.perform(action).await;
    }
    mallory.harvest().await;
    let after = oracle::World::read(&app.store).await;
    let controlled = oracle::controlled(&mallory.knowledge(), &after);
    let mut violations = mallory.server_errors();
    violations.extend(oracle::violations(&before, &after, &controlled, &tenant.mallory, approved.as_ref()));
    if violations.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}\n\nwhat the attacker did (mallory is {}{}):\n{}",
        mallory.label(&violations.join("\n")),
        case.role_name(),
        if case.approver { ", in the approver group" } else { "" },
        mallory.trace()
    ))
}

fn env_number(name: &str) -> Option<u64> {
    let raw = std::env::var(name).ok()?;
    Some(raw.trim().parse().unwrap_or_else(|_| panic!("{name} must be a number, not '{raw}'")))
}

/// Runs `property` on `backend` for the configured number of cases, from a seed that is
/// printed with any failure.
fn check(property: Property, backend: TestBackend) {
    let default_cases = match backend {
        TestBackend::Sqlite => 48,
        TestBackend::Postgres => 12,
    };
    let cases = env_number("COUNTERSIGN_ATTACKER_CASES").unwrap_or(default_cases) as u32;
    let steps = env_number("COUNTERSIGN_ATTACKER_STEPS").unwrap_or(32) as usize;
    let seed = env_number("COUNTERSIGN_ATTACKER_SEED").unwrap_or_else(rand::random);

    // The set-up and the oracle must agree that doing nothing breaks nothing, before any case.
    let idle = Case::idle();
    if let Err(error) = play(property, backend, &idle) {
        panic!("{property:?} on {backend:?} fails with no action at all (the set-up or the oracle is wrong): {error}");
    }

    let config = Config {
        cases,
        failure_persistence: None,
        // Each shrinking step replays a whole case on a fresh tenant: bounded, so that a failing
        // run still ends in a few minutes.
        max_shrink_iters: 400,
        max_shrink_time: 90_000,
        ..Config::default()
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    match runner.run(&case(property, steps), |case| play(property, backend, &case)) {
        Ok(()) => {}
        Err(TestError::Fail(reason, minimal)) => panic!(
            "{property:?} broken on {backend:?}.\n\nshrunk counterexample: {minimal:?}\n\n{reason}\n\n\
             replay with COUNTERSIGN_ATTACKER_SEED={seed} COUNTERSIGN_ATTACKER_CASES={cases} \
             COUNTERSIGN_ATTACKER_STEPS={steps}"
        ),
        Err(TestError::Abort(reason)) => panic!("{property:?} on {backend:?} aborted (seed {seed}): {reason}"),
    }
}

/// One test per backend, as `backend_tests!` declares them, but synchronous: every case builds
/// its own runtime.
macro_rules! attacker_tests {
    ($name:ident, $property:expr) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::check($property, super::TestBackend::Sqlite);
            }

            #[test]
            fn postgres() {
                if super::postgres_available(concat!(module_path!(), "::postgres")) {
                    super::check($property, super::TestBackend::Postgres);
                }
            }
        }
    };
}

attacker_tests!(nothing_the_attacker_controls_completes_or_approves, crate::Property::NothingApproved);
attacker_tests!(one_approved_benign_change_is_the_only_effect, crate::Property::OneBenignApproval);
