//! Countersign's domain: every rule of DESIGN.md §3 that can be decided without I/O lives here,
//! under its own name, with its unit tests beside it.
//!
//! Nothing in this crate knows about HTTP, SQL or the wall clock: time is passed in as Unix
//! milliseconds by the caller, which gets it from a `Clock`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod accounts;
pub mod audit;
pub mod capabilities;
pub mod control;
pub mod dependency;
pub mod diff;
pub mod eligibility;
pub mod error;
pub mod gate;
pub mod limits;
pub mod list_window;
pub mod lookalike;
pub mod names;
pub mod notify;
pub mod permission;
pub mod policy;
pub mod policy_set;
pub mod profile;
pub mod request;
pub mod state;
pub mod step_up;
pub mod text;
pub mod validate;
pub mod visibility;

pub use error::DomainError;

/// Unix time in milliseconds. Every timestamp in Countersign has this unit.
pub type Millis = i64;

/// Where time comes from. Domain code takes a `Millis`; the server reads it from a `Clock`, so
/// tests can move time forward without sleeping (rule R11).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
}

pub const MILLIS_PER_DAY: Millis = 24 * 60 * 60 * 1000;
