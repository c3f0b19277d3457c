//! The audit log (R13): filters, paging, *Verify chain*, and the key that checks checkpoints.

use super::layout::when;
use super::{given, web, Page, WebResult, WebUser};
use crate::ops::audit::{self, AuditQuery};
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use maud::html;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct AuditParams {
    category: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<i64>,
    verify: Option<String>,
}

/// A date (`2026-11-22`) or an RFC 3339 time from a filter field.
fn time_filter(value: &Option<String>, end_of_day: bool) -> WebResult<Option<i64>> {
    let Some(value) = given(value) else { return Ok(None) };
    let full = if value.len() == 10 {
        format!("{value}T{}Z", if end_of_day { "23:59:59.999" } else { "00:00:00" })
    } else {
        value
    };
    web(crate::time::parse(&full)).map(Some)
}

/// `GET /audit?category=&actor=&action=&since=&until=&cursor=&verify=1`
pub async fn page(State(app): State<AppState>, user: WebUser, Query(q): Query<AuditParams>) -> WebResult {
    let query = AuditQuery {
        category: given(&q.category),
        actor: given(&q.actor),
        action: given(&q.action),
        target: None,
        since: time_filter(&q.since, false)?,
        until: time_filter(&q.until, true)?,
        cursor: q.cursor,
        limit: Some(50),
    };
    let entries = web(audit::entries(&app, &user.principal, query).await)?.items;
    let report = if q.verify.is_some() { Some(web(audit::verify(&app, &user.principal).await)?) } else { None };
    let public_key = app.config.audit.as_ref().map(|audit| audit.signer.public_key().to_hex());
    let next = (entries.len() == 50).then(|| entries.last().map(|e| e.entry.seq)).flatten();
    let keep =
        |name: &str, value: &Option<String>| format!("{name}={}", super::urlencode(value.as_deref().unwrap_or("")));
    let filters = [
        keep("category", &q.category),
        keep("actor", &q.actor),
        keep("action", &q.action),
        keep("since", &q.since),
        keep("until", &q.until),
    ]
    .join("&");
    Ok(Page::new("Audit log", &user)
        .section("/audit")
        .content(html! {
            @if let Some(report) = &report {
                @if report.valid {
                    p class="alert alert-success" role="status" id="verify-result" {
                        "The log is intact: " (report.entries_checked) " entries, " (report.links_checked)
                        " keyed links and " (report.checkpoints_checked) " signed checkpoints verified."
                    }
                } @else if let Some(broken) = &report.first_broken {
                    p class="alert alert-error" role="alert" id="verify-result" {
                        "The log was rewritten: entry " (broken.seq) " no longer fits. " (broken.reason)
                    }
                } @else if let Some(reason) = &report.unverifiable {
                    p class="alert alert-error" role="alert" id="verify-result" { "The log could not be verified: " (reason) }
                }
            }
            @if let Some(public_key) = &public_key {
                p class="hint" id="checkpoint-key" {
                    "Checkpoints are signed with Ed25519 public key " code { (public_key) }
                    ". Give it to your auditors with the "
                    a href="/api/v1/audit/checkpoints" { "checkpoints" }
                    ": " code { "countersign audit verify --public-key … --checkpoints …" } " checks the log without the audit key."
                }
            }
            form class="filters" method="get" action="/audit" {
                div { label for="category" { "Category" }
                    select id="category" name="category" {
                        option value="" { "Any" }
                        @for c in ["request", "change", "policy", "directory", "rbac", "auth", "audit"] { option value=(c) selected[q.category.as_deref() == Some(c)] { (c) } }
                    } }
                div { label for="actor" { "Actor (username)" } input type="text" id="actor" name="actor" value=(q.actor.as_deref().unwrap_or("")); }
                div { label for="action" { "Action" } input type="text" id="action" name="action" value=(q.action.as_deref().unwrap_or("")); }
                div { label for="since" { "From" } input type="text" id="since" name="since" placeholder="2026-11-01" value=(q.since.as_deref().unwrap_or("")); }
                div { label for="until" { "To" } input type="text" id="until" name="until" placeholder="2026-11-30" value=(q.until.as_deref().unwrap_or("")); }
                button type="submit" class="secondary" { "Filter" }
                button type="submit" name="verify" value="1" id="verify" { "Verify chain" }
            }
            div class="table-wrap" { table id="audit" {
                thead { tr { th { "#" } th { "When" } th { "Actor" } th { "Category" } th { "Action" } th { "Target" } th { "Details" } } }
                tbody { @for item in &entries { @let e = &item.entry; tr {
                    td { (e.seq) } td { (when(e.at)) } td class="actor" { (item.actor()) } td { (e.category) } td { (e.action) }
                    td { @if let Some(t) = &e.target_type { (t) " " } @if let (Some("request"), Some(id)) = (e.target_type.as_deref(), &e.target_id) { a href={ "/requests/" (id) } { "open" } } }
                    td { code { (e.details) } }
                } } }
            } }
            @if let Some(seq) = next { p { a class="button secondary" href={ "/audit?" (filters) "&cursor=" (seq) } { "Older entries" } } }
        })
        .into_response())
}
