//! `/api/v1/requests`: lists, one request with its diff, and the decisions.

use super::answers::{Approval, ApproverStanding, DependencyMember, Party, Request, RequestDependency};
use super::Page;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery, OptionalJson, Principal};
use crate::ops::requests::StepUpSent;
use crate::ops::requests::{self as ops, Action, ListQuery, RequestForCaller};
use crate::time::format;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use countersign_core::dependency::names;
use countersign_core::diff::{diff, render as render_diff};
use countersign_core::profile::ResourceType;
use countersign_core::request::Decision;
use countersign_store::DependencyNow;
use serde::Deserialize;

/// A request as the API answers it, with what the caller may do (`canApprove`, …).
pub fn render(view: &RequestForCaller) -> Request {
    let record = &view.record;
    let entries = diff(&record.before, &record.after);
    let names = names(&record.dependencies);
    Request {
        id: record.id.clone(),
        resource_type: record.resource_type,
        object_id: record.object_id.clone(),
        object_name: record.object_name.clone(),
        operation: record.operation,
        profile_type: record.profile_type,
        policy_id: record.policy_id.clone(),
        status: view.status,
        justification: record.justification.clone(),
        requested_by: Party {
            id: record.requested_by.clone(),
            display_name: record.requested_by_name.clone(),
            username: record.requested_by_username.clone(),
        },
        requested_at: format(record.requested_at),
        last_modified_at: format(record.last_modified_at),
        expires_at: format(record.expires_at),
        required_approvals: record.required_approvals,
        approvals: record
            .approvals
            .iter()
            .map(|a| Approval {
                approver: Party {
                    id: a.approver_id.clone(),
                    display_name: a.approver_name.clone(),
                    username: a.approver_username.clone(),
                },
                decision: a.decision,
                notes: a.notes.clone(),
                at: format(a.at),
                change_digest: a.change_digest.clone(),
                confirmed_with_passkey: a.passkey_id.clone(),
            })
            .collect(),
        completed_at: record.completed_at.map(format),
        failure_reason: record.failure_reason.clone(),
        before: record.before.clone(),
        after: record.after.clone(),
        diff_text: render_diff(&entries, &names),
        diff: entries,
        change_digest: record.change_digest(),
        dependencies: view.dependencies.as_ref().map(|all| all.iter().map(dependency).collect()),
        can_approve: view.can_approve,
        can_cancel: view.can_cancel,
        can_complete: view.can_complete,
        approvers: view.approvers.as_ref().map(|approvers| {
            approvers
                .iter()
                .map(|a| ApproverStanding {
                    id: a.account_id.clone(),
                    username: a.username.clone(),
                    display_name: a.display_name.clone(),
                    eligible: a.eligible,
                    reasons: a.reasons.clone(),
                    independent: a.independent,
                    link: a.link.clone(),
                })
                .collect()
        }),
    }
}

fn dependency(d: &DependencyNow) -> RequestDependency {
    let current = d.current.as_ref();
    RequestDependency {
        resource_type: d.frozen.resource_type,
        id: d.frozen.id.clone(),
        name: d.frozen.name.clone(),
        version_at_submission: d.frozen.version,
        current_version: current.map(|c| c.version),
        changed: d.changed(),
        members: (d.frozen.resource_type == ResourceType::Group).then(|| {
            current
                .into_iter()
                .flat_map(|c| &c.members)
                .map(|m| DependencyMember { id: m.id.clone(), username: m.username.clone() })
                .collect()
        }),
        permissions: (d.frozen.resource_type == ResourceType::Role)
            .then(|| current.map(|c| c.permissions.clone()).unwrap_or_default()),
    }
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    view: Option<String>,
    status: Option<String>,
    #[serde(rename = "type")]
    resource_type: Option<String>,
    #[serde(rename = "objectId")]
    object_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/requests?view=mine|received|all&status=&type=&since=&until=&cursor=&limit=`
#[utoipa::path(
    get,
    path = "/requests",
    tag = "requests",
    summary = "List approval requests",
    params(ListParams),
    responses(
        (status = 200, description = "a page of requests", body = Page<Request>)
    )
)]
pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<Request>>> {
    let query = ListQuery {
        view: q.view,
        status: q.status,
        resource_type: q.resource_type,
        object_id: q.object_id,
        since: q.since,
        until: q.until,
        cursor: q.cursor,
        limit: q.limit,
    };
    Ok(Json(Page::of(ops::list_viewed(&app, &principal, &query).await?, render)))
}

/// `GET /api/v1/requests/{id}`
#[utoipa::path(
    get,
    path = "/requests/{id}",
    tag = "requests",
    summary = "One request with before, after, diff and approvals",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the request", body = Request)
    )
)]
pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Request>> {
    Ok(Json(render(&ops::get(&app, &principal, &id).await?)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DecisionBody {
    notes: Option<String>,
    /// R12: the `changeDigest` you reviewed. When given, the decision is refused with 409
    /// `change_digest_mismatch` unless the request still holds exactly that change.
    change_digest: Option<String>,
    /// R21: the passkey confirmation, for a policy with `stepUp: passkey` (begin it with
    /// `POST /requests/{id}/stepUp`).
    step_up: Option<StepUpBody>,
}

/// R21: a decision's confirmation: the nonce from `POST /requests/{id}/stepUp` and the
/// browser's assertion (`credentialId`, `authenticatorData`, `clientDataJSON`, `signature`, each
/// base64url).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StepUpBody {
    nonce: String,
    #[schema(value_type = Object)]
    assertion: countersign_core::step_up::StepUpAssertion,
}

impl DecisionBody {
    fn step_up(&mut self) -> Option<StepUpSent> {
        self.step_up.take().map(|s| StepUpSent { nonce: s.nonce, assertion: s.assertion })
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StepUpStartBody {
    /// `approve` or `reject`: the assertion signs the decision too.
    decision: String,
}

/// The nonce and the options for `navigator.credentials.get`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct StepUpStarted {
    nonce: String,
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

/// `POST /api/v1/requests/{id}/stepUp` `{decision}`: begins confirming a decision (R21).
#[utoipa::path(
    post,
    path = "/requests/{id}/stepUp",
    tag = "requests",
    summary = "Begin a passkey confirmation of a decision (R21): a nonce and a challenge over the change digest",
    params(("id" = String, Path, description = "the request's id")),
    request_body = StepUpStartBody,
    responses(
        (status = 200, description = "the nonce and the WebAuthn request options", body = StepUpStarted)
    )
)]
pub async fn step_up(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StepUpStartBody>,
) -> ApiResult<Json<StepUpStarted>> {
    let decision = match body.decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        other => {
            return Err(crate::error::ApiError::validation(format!(
                "decision must be approve or reject, not '{other}'"
            )))
        }
    };
    let begun = ops::begin_step_up(&app, &principal, &id, decision).await?;
    Ok(Json(StepUpStarted { nonce: begun.nonce, options: begun.options }))
}

async fn act_json(app: AppState, principal: Principal, id: String, action: Action) -> ApiResult<Json<Request>> {
    let record = ops::act(&app, &principal, &id, action).await?;
    Ok(Json(render(&ops::view(&app, &principal, record).await?)))
}

/// `POST /api/v1/requests/{id}/approve` `{notes?}`
#[utoipa::path(
    post,
    path = "/requests/{id}/approve",
    tag = "requests",
    summary = "Approve, with optional approver notes",
    params(("id" = String, Path, description = "the object's id")),
    request_body = Option<DecisionBody>,
    responses(
        (status = 200, description = "the request", body = Request)
    )
)]
pub async fn approve(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(mut body): OptionalJson<DecisionBody>,
) -> ApiResult<Json<Request>> {
    let step_up = body.step_up();
    act_json(
        app,
        principal,
        id,
        Action::Decide { decision: Decision::Approve, notes: body.notes, seen_digest: body.change_digest, step_up },
    )
    .await
}

/// `POST /api/v1/requests/{id}/reject` `{notes?}`
#[utoipa::path(
    post,
    path = "/requests/{id}/reject",
    tag = "requests",
    summary = "Reject, with optional approver notes",
    params(("id" = String, Path, description = "the object's id")),
    request_body = Option<DecisionBody>,
    responses(
        (status = 200, description = "the request", body = Request)
    )
)]
pub async fn reject(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(mut body): OptionalJson<DecisionBody>,
) -> ApiResult<Json<Request>> {
    let step_up = body.step_up();
    act_json(
        app,
        principal,
        id,
        Action::Decide { decision: Decision::Reject, notes: body.notes, seen_digest: body.change_digest, step_up },
    )
    .await
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// `POST /api/v1/requests/{id}/cancel`
#[utoipa::path(
    post,
    path = "/requests/{id}/cancel",
    tag = "requests",
    summary = "Cancel my request",
    params(("id" = String, Path, description = "the object's id")),
    request_body = Option<EmptyBody>,
    responses(
        (status = 200, description = "the request", body = Request)
    )
)]
pub async fn cancel(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(_no_fields): OptionalJson<EmptyBody>,
) -> ApiResult<Json<Request>> {
    act_json(app, principal, id, Action::Cancel).await
}

/// `POST /api/v1/requests/{id}/complete`
#[utoipa::path(
    post,
    path = "/requests/{id}/complete",
    tag = "requests",
    summary = "Complete my approved request: the change is applied",
    params(("id" = String, Path, description = "the object's id")),
    request_body = Option<EmptyBody>,
    responses(
        (status = 200, description = "the request", body = Request)
    )
)]
pub async fn complete(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(_no_fields): OptionalJson<EmptyBody>,
) -> ApiResult<Json<Request>> {
    act_json(app, principal, id, Action::Complete).await
}
