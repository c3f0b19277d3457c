//! End-to-end tests over HTTP against a real server and a real database (see `harness`).

mod harness;
#[path = "../oidc/idp.rs"]
mod idp;

mod audit_trail;
mod bad_input;
mod concurrency;
mod exact_change;
mod frozen_context;
mod guards;
mod hostile_input;
mod independence;
mod lifecycle;
mod names;
mod notifications;
mod reach;
mod sign_in;
mod sso;
mod step_up;
mod surfaces;
mod web_forms;
