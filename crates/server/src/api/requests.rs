//! `/api/v1/requests`: lists, one request with its diff, and the decisions.

use super::{next_cursor, Page};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, ApiQuery, OptionalJson, Principal};
use crate::time::format;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use countersign_core::diff::{diff, render};
use countersign_core::eligibility::ineligibility;
use countersign_core::permission::read_permission;
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::ResourceType;
use countersign_core::request::{Decision, RequestStatus};
use countersign_core::MILLIS_PER_DAY;
use countersign_store::{RequestFilter, RequestRecord, RequestView};
use serde::Deserialize;
use serde_json::{json, Value};

/// Renders requests for one caller, with what that caller may do (`canApprove`, …).
pub struct RequestRenderer<'a> {
    app: &'a AppState,
    principal: &'a Principal,
    policies: Vec<AccessPolicy>,
}

impl<'a> RequestRenderer<'a> {
    pub async fn new(app: &'a AppState, principal: &'a Principal) -> ApiResult<Self> {
        Ok(RequestRenderer { app, principal, policies: app.store.policies().await? })
    }

    async fn approver_groups(&self, record: &RequestRecord) -> ApiResult<Vec<String>> {
        let live = record.policy_id.as_ref().and_then(|id| self.policies.iter().find(|p| &p.id == id));
        match live {
            Some(policy) => Ok(policy.approver_group_ids.clone()),
            None => Ok(self.app.store.approver_groups_of(record).await?),
        }
    }

    /// Whether the caller may see this request at all.
    pub async fn visible(&self, record: &RequestRecord) -> ApiResult<bool> {
        if record.requested_by == self.principal.account.id || self.principal.has(read_permission(record.resource_type))
        {
            return Ok(true);
        }
        let groups = self.approver_groups(record).await?;
        Ok(self.principal.group_ids.iter().any(|g| groups.contains(g)))
    }

    pub async fn render(&self, record: &RequestRecord) -> ApiResult<Value> {
        let now = self.app.now();
        let state = record.state();
        let status = state.effective_status(now);
        let me = &self.principal.account.id;
        let is_requester = &record.requested_by == me;
        let can_approve = status == RequestStatus::NeedsApproval
            && !is_requester
            && !record.approvals.iter().any(|a| &a.approver_id == me)
            && ineligibility(&self.principal.candidate(), &self.approver_groups(record).await?, record.resource_type)
                .is_empty();
        let entries = diff(&record.before, &record.after);
        Ok(json!({
            "id": record.id,
            "resourceType": record.resource_type,
            "objectId": record.object_id,
            "objectName": record.object_name,
            "operation": record.operation,
            "profileType": record.profile_type,
            "policyId": record.policy_id,
            "status": status,
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
            "diffText": render(&entries),
            "canApprove": can_approve,
            "canCancel": is_requester && status.is_open(),
            "canComplete": is_requester && status == RequestStatus::Approved,
        }))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
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

/// R15: lists show the last 30 days unless `since` says otherwise.
pub const DEFAULT_LIST_WINDOW: i64 = 30 * MILLIS_PER_DAY;

/// `GET /api/v1/requests?view=mine|received|all&status=&type=&since=&until=&cursor=&limit=`
pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page>> {
    let now = app.now();
    // Exact on read (R11): nothing past its time is listed as open.
    app.store.expire_due(now).await?;
    let view = match q.view.as_deref().unwrap_or("mine") {
        "mine" => RequestView::Mine(principal.account.id.clone()),
        "received" => RequestView::Received(principal.group_ids.clone()),
        "all" => RequestView::All,
        other => return Err(ApiError::validation(format!("view must be mine, received or all, not '{other}'"))),
    };
    let resource_types = matches!(view, RequestView::All)
        .then(|| ResourceType::ALL.into_iter().filter(|t| principal.has(read_permission(*t))).collect::<Vec<_>>());
    let status = q.status.as_deref().map(str::parse::<RequestStatus>).transpose().map_err(ApiError::validation)?;
    let resource_type =
        q.resource_type.as_deref().map(str::parse::<ResourceType>).transpose().map_err(ApiError::validation)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit must be between 1 and 200"));
    }
    let filter = RequestFilter {
        view,
        status,
        resource_type,
        object_id: q.object_id.as_deref().map(parse_id).transpose()?,
        resource_types,
        since: q.since.as_deref().map(crate::time::parse).transpose()?.unwrap_or(now - DEFAULT_LIST_WINDOW),
        until: q.until.as_deref().map(crate::time::parse).transpose()?,
        before_id: q.cursor.as_deref().map(parse_id).transpose()?,
        limit,
    };
    let records = app.store.requests(&filter).await?;
    let renderer = RequestRenderer::new(&app, &principal).await?;
    let mut value = Vec::with_capacity(records.len());
    for record in &records {
        value.push(renderer.render(record).await?);
    }
    let cursor = next_cursor(&records, limit, |r| r.id.clone());
    Ok(Json(Page { value, next_cursor: cursor }))
}

async fn visible_request(app: &AppState, principal: &Principal, id: &str) -> ApiResult<RequestRecord> {
    let id = parse_id(id)?;
    let record = app.store.request(&id).await?;
    let renderer = RequestRenderer::new(app, principal).await?;
    if !renderer.visible(&record).await? {
        return Err(ApiError::not_found(format!("request {id} does not exist")));
    }
    Ok(record)
}

async fn respond(app: &AppState, principal: &Principal, record: &RequestRecord) -> ApiResult<Json<Value>> {
    Ok(Json(RequestRenderer::new(app, principal).await?.render(record).await?))
}

/// `GET /api/v1/requests/{id}`
pub async fn get(State(app): State<AppState>, principal: Principal, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let record = visible_request(&app, &principal, &id).await?;
    respond(&app, &principal, &record).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    notes: Option<String>,
}

async fn decide(
    app: AppState,
    principal: Principal,
    id: String,
    decision: Decision,
    body: DecisionBody,
) -> ApiResult<Json<Value>> {
    let record = visible_request(&app, &principal, &id).await?;
    let now = app.now();
    let decided = app.store.decide(&principal.actor(), &record.id, decision, body.notes.as_deref(), now).await?;
    app.metrics.observe_decision((now - record.requested_at) as f64 / 1000.0);
    respond(&app, &principal, &decided).await
}

/// `POST /api/v1/requests/{id}/approve` `{notes?}`
pub async fn approve(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<DecisionBody>,
) -> ApiResult<Json<Value>> {
    decide(app, principal, id, Decision::Approve, body).await
}

/// `POST /api/v1/requests/{id}/reject` `{notes?}`
pub async fn reject(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<DecisionBody>,
) -> ApiResult<Json<Value>> {
    decide(app, principal, id, Decision::Reject, body).await
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
    let record = visible_request(&app, &principal, &id).await?;
    let cancelled = app.store.cancel(&principal.actor(), &record.id, app.now()).await?;
    respond(&app, &principal, &cancelled).await
}

/// `POST /api/v1/requests/{id}/complete`
pub async fn complete(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(_): OptionalJson<EmptyBody>,
) -> ApiResult<Json<Value>> {
    let record = visible_request(&app, &principal, &id).await?;
    let completed = app.store.complete(&principal.actor(), &record.id, app.now()).await?;
    respond(&app, &principal, &completed).await
}
