//! `/api/v1/requests`: lists, one request with its diff, and the decisions.

use super::Page;
use crate::error::ApiResult;
use crate::extract::{ApiQuery, OptionalJson, Principal};
use crate::ops::requests::{self as ops, Action, ListQuery, RequestForCaller};
use crate::time::format;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use countersign_core::diff::{diff, render as render_diff};
use countersign_core::request::Decision;
use serde::Deserialize;
use serde_json::{json, Value};

/// A request as JSON, with what the caller may do (`canApprove`, …).
pub fn render(view: &RequestForCaller) -> Value {
    let record = &view.record;
    let entries = diff(&record.before, &record.after);
    json!({
        "id": record.id,
        "resourceType": record.resource_type,
        "objectId": record.object_id,
        "objectName": record.object_name,
        "operation": record.operation,
        "profileType": record.profile_type,
        "policyId": record.policy_id,
        "status": view.status,
        "justification": record.justification,
        "requestedBy": {"id": record.requested_by, "displayName": record.requested_by_name},
        "requestedAt": format(record.requested_at),
        "lastModifiedAt": format(record.last_modified_at),
        "expiresAt": format(record.expires_at),
        "requiredApprovals": record.required_approvals,
        "approvals": record.approvals.iter().map(|a| json!({
            "approver": {"id": a.approver_id, "displayName": a.approver_name},
            "decision": a.decision,
            "notes": a.notes,
            "at": format(a.at),
        })).collect::<Vec<_>>(),
        "completedAt": record.completed_at.map(format),
        "failureReason": record.failure_reason,
        "before": record.before,
        "after": record.after,
        "diff": entries,
        "diffText": render_diff(&entries),
        "canApprove": view.can_approve,
        "canCancel": view.can_cancel,
        "canComplete": view.can_complete,
    })
}

#[derive(Deserialize, Default)]
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
pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<Page>> {
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
pub async fn get(State(app): State<AppState>, principal: Principal, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(render(&ops::get(&app, &principal, &id).await?)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    notes: Option<String>,
}

async fn act_json(app: AppState, principal: Principal, id: String, action: Action) -> ApiResult<Json<Value>> {
    let record = ops::act(&app, &principal, &id, action).await?;
    Ok(Json(render(&ops::view(&app, &principal, record).await?)))
}

/// `POST /api/v1/requests/{id}/approve` `{notes?}`
pub async fn approve(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<DecisionBody>,
) -> ApiResult<Json<Value>> {
    act_json(app, principal, id, Action::Decide(Decision::Approve, body.notes)).await
}

/// `POST /api/v1/requests/{id}/reject` `{notes?}`
pub async fn reject(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<DecisionBody>,
) -> ApiResult<Json<Value>> {
    act_json(app, principal, id, Action::Decide(Decision::Reject, body.notes)).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// `POST /api/v1/requests/{id}/cancel`
pub async fn cancel(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(_): OptionalJson<EmptyBody>,
) -> ApiResult<Json<Value>> {
    act_json(app, principal, id, Action::Cancel).await
}

/// `POST /api/v1/requests/{id}/complete`
pub async fn complete(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(_): OptionalJson<EmptyBody>,
) -> ApiResult<Json<Value>> {
    act_json(app, principal, id, Action::Complete).await
}
