//! Home, the request lists (My / Received / All), and the request page with its decisions.

use super::layout::{csrf_field, pretty, status_badge, when, who};
use super::{see_other, web, Page, WebError, WebResult, WebUser};
use crate::error::ApiError;
use crate::ops::audit::recent_request_activity;
use crate::ops::requests::StepUpSent;
use crate::ops::requests::{self, act as act_on_request, Action, ListQuery, RequestForCaller};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum_extra::extract::Form;
use countersign_core::dependency::names;
use countersign_core::diff::{diff, shown_path, shown_value, Names};
use countersign_core::profile::ResourceType;
use countersign_core::request::{Decision, RequestStatus};
use countersign_store::{DependencyNow, RequestRecord};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

fn resource_label(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::App => "App",
        ResourceType::Script => "Script",
        ResourceType::CompliancePolicy => "Compliance policy",
        ResourceType::ConfigurationPolicy => "Configuration policy",
        ResourceType::DeviceCategory => "Device category",
        ResourceType::Device => "Device",
        ResourceType::Role => "Role",
        ResourceType::RoleAssignment => "Role assignment",
        ResourceType::Group => "Group",
        ResourceType::Account => "Account",
        ResourceType::AccessPolicy => "Access policy",
        ResourceType::NotificationChannel => "Notification channel",
    }
}

/// The request table of DESIGN's admin center: newest first, justification links to the request.
pub fn request_table(app: &AppState, records: &[RequestRecord], empty: &str) -> Markup {
    let now = app.now();
    html! {
        @if records.is_empty() {
            p class="muted card" { (empty) }
        } @else {
            div class="table-wrap" {
                table class="requests" {
                    thead { tr {
                        th scope="col" { "Requested on" } th scope="col" { "Name" } th scope="col" { "Resource type" }
                        th scope="col" { "Operation" } th scope="col" { "Business justification" }
                        th scope="col" { "Requested by" } th scope="col" { "Status" }
                    } }
                    tbody {
                        @for r in records {
                            tr data-request=(r.id) {
                                td { (when(r.requested_at)) }
                                td { (r.object_name) }
                                td { (resource_label(r.resource_type)) }
                                td { (r.operation) }
                                td { a href={ "/requests/" (r.id) } { (r.justification) } }
                                td { (who(&r.requested_by_name, &r.requested_by_username)) }
                                td { (status_badge(r.state().effective_status(now))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /`: my open requests, requests waiting for my decision, recent activity.
pub async fn home(State(app): State<AppState>, user: WebUser) -> WebResult {
    let p = &user.principal;
    let open = |view: &str| ListQuery { view: Some(view.into()), limit: Some(20), ..ListQuery::default() };
    let mine = web(requests::list(&app, p, &open("mine")).await)?.items;
    let mine: Vec<_> = mine.into_iter().filter(|r| r.state().effective_status(app.now()).is_open()).collect();
    let received = web(requests::list_viewed(&app, p, &open("received")).await)?.items;
    let waiting: Vec<_> = received.into_iter().filter(|v| v.can_approve).map(|v| v.record).collect();
    let activity = web(recent_request_activity(&app, p).await)?;
    Ok(Page::new("Home", &user)
        .section("/")
        .content(html! {
            h2 { "Waiting for my decision" }
            (request_table(&app, &waiting, "Nothing is waiting for your approval."))
            h2 { "My open requests" }
            (request_table(&app, &mine, "You have no open requests."))
            @if !activity.is_empty() {
                h2 { "Recent activity" }
                ul class="card activity" {
                    @for item in &activity {
                        @let e = &item.entry;
                        li {
                            span class="muted" { (when(e.at)) } " · " (item.actor()) " · request " (e.action)
                            @if let Some(target) = &e.target_id { " · " a href={ "/requests/" (target) } { "open" } }
                        }
                    }
                }
            }
        })
        .into_response())
}

#[derive(Deserialize, Default)]
pub struct ListParams {
    tab: Option<String>,
    status: Option<String>,
    #[serde(rename = "type")]
    resource_type: Option<String>,
    cursor: Option<String>,
}

/// `GET /requests?tab=mine|received|all&status=&type=&cursor=`
pub async fn list(State(app): State<AppState>, user: WebUser, Query(q): Query<ListParams>) -> WebResult {
    let tab = q.tab.clone().unwrap_or_else(|| "mine".into());
    let query = ListQuery {
        view: Some(tab.clone()),
        status: q.status.clone(),
        resource_type: q.resource_type.clone(),
        cursor: q.cursor.clone(),
        limit: Some(25),
        ..ListQuery::default()
    };
    let page = web(requests::list(&app, &user.principal, &query).await)?;
    let (records, next) = (page.items, page.next_cursor);
    let filter =
        |name: &str, value: &Option<String>| format!("{name}={}", super::urlencode(value.as_deref().unwrap_or("")));
    let next_link = next.map(|cursor| {
        format!(
            "/requests?tab={tab}&{}&{}&cursor={cursor}",
            filter("status", &q.status),
            filter("type", &q.resource_type)
        )
    });
    let tabs = [("mine", "My requests"), ("received", "Received requests"), ("all", "All requests")];
    Ok(Page::new("Requests", &user)
        .section("/requests")
        .content(html! {
            nav class="tabs" aria-label="Request views" {
                @for (key, label) in tabs {
                    a href={ "/requests?tab=" (key) } id={ "tab-" (key) } aria-current=[(key == tab).then_some("page")] { (label) }
                }
            }
            form class="filters" method="get" action="/requests" {
                input type="hidden" name="tab" value=(tab);
                div {
                    label for="status" { "Status" }
                    select id="status" name="status" {
                        option value="" { "Any" }
                        @for s in RequestStatus::ALL {
                            option value=(s.as_str()) selected[q.status.as_deref() == Some(s.as_str())] { (super::layout::status_label(s)) }
                        }
                    }
                }
                div {
                    label for="type" { "Resource type" }
                    select id="type" name="type" {
                        option value="" { "Any" }
                        @for t in ResourceType::ALL {
                            option value=(t.as_str()) selected[q.resource_type.as_deref() == Some(t.as_str())] { (resource_label(t)) }
                        }
                    }
                }
                button type="submit" class="secondary" { "Filter" }
            }
            (request_table(&app, &records, "No requests match."))
            @if let Some(link) = next_link { p { a class="button secondary" href=(link) { "Next page" } } }
        })
        .into_response())
}

fn cell(value: &Option<Value>, names: &Names) -> String {
    value.as_ref().map(|v| shown_value(v, names)).unwrap_or_default()
}

/// R12: the change, side by side: one row per difference (its JSON Pointer, and each value
/// quoted with every hidden character escaped, ids with their names), the digest the decision
/// will record, then both whole states.
fn diff_view(record: &RequestRecord) -> Markup {
    let entries = diff(&record.before, &record.after);
    let names = names(&record.dependencies);
    html! {
        p class="digest" { "Change digest " code id="change-digest" { (record.change_digest()) } }
        table class="diff" aria-label="Changes" {
            thead { tr { th scope="col" { "Setting" } th scope="col" { "Before" } th scope="col" { "After" } } }
            tbody {
                @if entries.is_empty() { tr { td colspan="3" class="muted" { "No difference." } } }
                @for e in &entries {
                    tr class={ "change-" (e.kind) } {
                        td class="path" { code { (shown_path(&e.path)) } }
                        td class=(if e.before.is_some() { "before" } else { "empty" }) { (cell(&e.before, &names)) }
                        td class=(if e.after.is_some() { "after" } else { "empty" }) { (cell(&e.after, &names)) }
                    }
                }
            }
        }
        details {
            summary { "Whole object, before and after" }
            div class="side-by-side" {
                div { h3 { "Before" } pre id="before" { (if record.before.is_null() { "(does not exist yet)".to_owned() } else { pretty(&record.before) }) } }
                div { h3 { "After" } pre id="after" { (if record.after.is_null() { "(deleted)".to_owned() } else { pretty(&record.after) }) } }
            }
        }
    }
}

/// R17: what the change depends on besides its object, as it is now (groups with their current
/// members, roles with their current permissions), and a warning for any that changed since
/// submission: completing the request would then apply nothing.
fn dependencies_view(dependencies: &[DependencyNow]) -> Markup {
    let changed: Vec<&str> = dependencies.iter().filter(|d| d.changed()).map(|d| d.frozen.name.as_str()).collect();
    html! {
        h2 { "Depends on" }
        p class="hint" {
            "Approving approves these as they are now. If any of them changes before the request is completed, nothing is applied."
        }
        @if !changed.is_empty() {
            p class="alert alert-error" role="alert" id="dependencies-changed" {
                "Changed since the request was submitted: " (changed.join(", "))
                ". Completing it will apply nothing; the requester must submit the change again."
            }
        }
        div class="table-wrap" {
            table class="dependencies" aria-label="Depends on" {
                thead { tr {
                    th scope="col" { "Type" } th scope="col" { "Name" } th scope="col" { "Now" }
                    th scope="col" { "Since submission" }
                } }
                tbody {
                    @for d in dependencies {
                        tr data-dependency=(d.frozen.id) {
                            td { (resource_label(d.frozen.resource_type)) }
                            td { (d.frozen.name) }
                            td {
                                @match &d.current {
                                    None => span class="muted" { "(deleted)" },
                                    Some(now) if d.frozen.resource_type == ResourceType::Group => {
                                        @if now.members.is_empty() {
                                            span class="muted" { "No members" }
                                        } @else {
                                            "Members: " (now.members.iter().map(|m| m.username.as_str()).collect::<Vec<_>>().join(", "))
                                        }
                                    },
                                    Some(now) if d.frozen.resource_type == ResourceType::Role => {
                                        "Permissions: " (now.permissions.join(", "))
                                    },
                                    Some(_) => {},
                                }
                            }
                            td {
                                @match (&d.current, d.changed()) {
                                    (None, _) => span class="badge status-failed" { "Deleted" },
                                    (Some(now), true) => span class="badge status-failed" {
                                        "Changed (version " (d.frozen.version) ", now " (now.version) ")"
                                    },
                                    (Some(_), false) => span class="muted" { "Unchanged" },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /requests/{id}`: what changes, who asked, why, the diff, approvals, and the actions this
/// viewer may take (only those).
pub async fn show(State(app): State<AppState>, user: WebUser, Path(id): Path<String>) -> WebResult {
    let view = web(requests::get(&app, &user.principal, &id).await)?;
    render(&user, &view, None)
}

fn render(user: &WebUser, view: &RequestForCaller, error: Option<String>) -> WebResult {
    let record = &view.record;
    let status = view.status;
    let approvals = record.approvals.iter().filter(|a| a.decision == Decision::Approve).count();
    let operation = record.operation.as_str();
    let operation = operation[..1].to_uppercase() + &operation[1..];
    let title = format!("{operation} {} “{}”", resource_label(record.resource_type).to_lowercase(), record.object_name);
    Ok(Page::new(&title, user)
        .section("/requests")
        .content(html! {
            div class="card" data-live-request=(record.id) data-modified=(crate::time::format(record.last_modified_at)) data-status=(status.as_str()) {
                dl class="facts" {
                    dt { "Status" } dd id="status" { (status_badge(status)) }
                    dt { "Object" } dd { (record.object_name) " " span class="muted" { "(" (resource_label(record.resource_type)) ")" } }
                    dt { "Operation" } dd { (record.operation) }
                    dt { "Requested by" } dd id="requested-by" { (who(&record.requested_by_name, &record.requested_by_username)) }
                    dt { "Requested on" } dd { (when(record.requested_at)) }
                    dt { "Business justification" } dd id="justification" { (record.justification) }
                    @if status.is_open() { dt { "Expires" } dd { (when(record.expires_at)) } }
                    dt { "Approvals" } dd id="quorum" { (approvals) " of " (record.required_approvals) " required" }
                    @if let Some(done) = record.completed_at { dt { "Completed" } dd { (when(done)) } }
                    @if let Some(reason) = &record.failure_reason { dt { "Why it failed" } dd class="field-error" { (reason) } }
                }
            }
            @if let Some(error) = error { p class="alert alert-error" role="alert" id="error" { (error) } }
            h2 { "What changes" }
            (diff_view(record))
            @if let Some(dependencies) = view.dependencies.as_deref().filter(|d| !d.is_empty()) {
                (dependencies_view(dependencies))
            }
            h2 { "Decisions" }
            @if record.approvals.is_empty() {
                p class="muted" { "No decision yet." }
            } @else {
                ul class="card decisions" {
                    @for a in &record.approvals {
                        li {
                            strong { (who(&a.approver_name, &a.approver_username)) } " "
                            (if a.decision == Decision::Approve { "approved" } else { "rejected" })
                            " on " (when(a.at))
                            @if a.passkey_id.is_some() { " " span class="badge status-completed" title="R21: the approver's passkey signed this change's digest" { "confirmed with a passkey" } }
                            @if let Some(notes) = &a.notes { blockquote class="notes" { "Approver notes: " (notes) } }
                        }
                    }
                }
            }
            @if let Some(approvers) = &view.approvers {
                h2 { "Approvers" }
                p class="hint" { "An approval counts only from an eligible approver whom nobody else controls: Countersign records who set each password, made each token and registered each passkey, and an account whose credentials the requester (or someone controlling them) set is theirs." }
                @if approvers.is_empty() { p class="muted" { "The approver groups have no members." } } @else {
                    table id="approvers" { thead { tr { th { "Approver" } th { "May approve" } th { "Independent of the requester" } } } tbody {
                        @for a in approvers { tr data-approver=(a.username) {
                            td { strong { (a.display_name) } " " span class="muted" { "(" (a.username) ")" } }
                            td { @if a.eligible { "Yes" } @else { span class="muted" { "No: " (a.reasons.join("; ")) } } }
                            td class="independence" { @if a.independent { "Yes" } @else { span class="field-error" { "No: " (a.link.as_deref().unwrap_or_default()) } } }
                        } }
                    } }
                }
            }
            @if view.can_approve {
                @let step_up = view.step_up.is_some_and(|s| s == countersign_core::step_up::StepUp::Passkey);
                @if step_up {
                    p class="alert alert-info" id="step-up-needed" { "This request's policy asks you to confirm your decision with your passkey: your device signs the change digest above." }
                }
                p class="alert alert-error" role="alert" id="step-up-error" hidden {}
                form class="card" method="post" action={ "/requests/" (record.id) "/decide" } id="decide-form" data-request=(record.id) data-step-up=[step_up.then_some("passkey")] {
                    (csrf_field(&user.csrf))
                    input type="hidden" name="change_digest" value=(record.change_digest());
                    input type="hidden" name="step_up_nonce" value="";
                    input type="hidden" name="step_up_assertion" value="";
                    div class="field" {
                        label for="notes" { "Approver notes" }
                        textarea id="notes" name="notes" maxlength="1024" {}
                        p class="hint" { "Optional; the requester sees them." }
                    }
                    div class="actions" {
                        button type="submit" name="decision" value="approve" id="approve" { "Approve" }
                        button type="submit" name="decision" value="reject" id="reject" class="danger" { "Reject" }
                    }
                }
            } @else if record.requested_by == user.principal.account.id && status == RequestStatus::NeedsApproval {
                p class="muted" { "This is your request: another administrator must approve it." }
            }
            div class="actions" {
                @if view.can_complete {
                    form method="post" action={ "/requests/" (record.id) "/complete" } {
                        (csrf_field(&user.csrf))
                        button type="submit" id="complete" { "Complete" }
                    }
                }
                @if view.can_cancel {
                    form method="post" action={ "/requests/" (record.id) "/cancel" } {
                        (csrf_field(&user.csrf))
                        button type="submit" id="cancel" class="secondary" { "Cancel request" }
                    }
                }
            }
        })
        .into_response())
}

#[derive(Deserialize, Default)]
pub struct ActionForm {
    decision: Option<String>,
    notes: Option<String>,
    /// R12: the digest of the change the page showed.
    change_digest: Option<String>,
    /// R21: the passkey confirmation the page's script made (empty without one).
    step_up_nonce: Option<String>,
    step_up_assertion: Option<String>,
}

/// `POST /requests/{id}/decide|cancel|complete`
pub async fn act(
    State(app): State<AppState>,
    user: WebUser,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> WebResult {
    let (action, done) = match (action.as_str(), form.decision.as_deref()) {
        ("decide", Some(choice @ ("approve" | "reject"))) => {
            let decision = if choice == "approve" { Decision::Approve } else { Decision::Reject };
            let done =
                if decision == Decision::Approve { "You approved the request." } else { "You rejected the request." };
            let step_up = match (super::given(&form.step_up_nonce), super::given(&form.step_up_assertion)) {
                (Some(nonce), Some(assertion)) => Some(StepUpSent {
                    nonce,
                    assertion: serde_json::from_str(&assertion).map_err(|e| {
                        WebError(ApiError::validation(format!("the passkey confirmation is malformed: {e}")))
                    })?,
                }),
                _ => None,
            };
            (Action::Decide { decision, notes: form.notes, seen_digest: form.change_digest, step_up }, done)
        }
        ("cancel", _) => (Action::Cancel, "You cancelled the request."),
        ("complete", _) => (Action::Complete, "Completed."),
        _ => return Err(WebError(ApiError::not_found("no such action"))),
    };
    match act_on_request(&app, &user.principal, &id, action).await {
        Ok(record) => {
            let message = match record.status {
                RequestStatus::Failed => "The change could not be applied; see why below.",
                RequestStatus::Completed if done == "You approved the request." => "Approved and applied.",
                _ => done,
            };
            Ok(see_other(&format!("/requests/{}", record.id), message))
        }
        // A rule said no: show the request again with the reason.
        Err(e) if e.status().is_client_error() && e.status().as_u16() != 404 => {
            let status = e.status();
            let view = web(requests::get(&app, &user.principal, &id).await)?;
            let mut page = render(&user, &view, Some(e.detail))?;
            *page.status_mut() = status;
            Ok(page)
        }
        Err(e) => Err(WebError(e)),
    }
}
