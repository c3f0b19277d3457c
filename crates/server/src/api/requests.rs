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
    /// Read on first need, once per page: most renderings (the requester's own request, a
    /// decided one) never need a policy (countersign-bench, lifecycle profile).
    policies: tokio::sync::OnceCell<Vec<AccessPolicy>>,
}

impl<'a> RequestRenderer<'a> {
    pub async fn new(app: &'a AppState, principal: &'a Principal) -> ApiResult<Self> {
        Ok(RequestRenderer { app, principal, policies: tokio::sync::OnceCell::new() })
    }

    async fn approver_groups(&self, record: &RequestRecord) -> ApiResult<Vec<String>> {
        let policies = self.policies.get_or_try_init(|| self.app.store.policies()).await?;
        let live = record.policy_id.as_ref().and_then(|id| policies.iter().find(|p| &p.id == id));
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

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub view: Option<String>,
    pub status: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: Option<String>,
    #[serde(rename = "objectId")]
    pub object_id: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// R15: lists show the last 30 days unless `since` says otherwise.
pub const DEFAULT_LIST_WINDOW: i64 = 30 * MILLIS_PER_DAY;

/// One page of requests for the caller, newest first, and the cursor of the next page.
pub async fn list_records(
    app: &AppState,
    principal: &Principal,
    q: &ListQuery,
) -> ApiResult<(Vec<RequestRecord>, Option<String>)> {
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
    // An empty form field means "any".
    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let status = given(&q.status).map(|s| s.parse::<RequestStatus>()).transpose().map_err(ApiError::validation)?;
    let resource_type =
        given(&q.resource_type).map(|s| s.parse::<ResourceType>()).transpose().map_err(ApiError::validation)?;
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
        before_id: given(&q.cursor).as_deref().map(parse_id).transpose()?,
        limit,
    };
    let records = app.store.requests(&filter).await?;
    let cursor = next_cursor(&records, limit, |r| r.id.clone());
    Ok((records, cursor))
}

/// `GET /api/v1/requests?view=mine|received|all&status=&type=&since=&until=&cursor=&limit=`
pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page>> {
    let (records, next_cursor) = list_records(&app, &principal, &q).await?;
    let renderer = RequestRenderer::new(&app, &principal).await?;
    let mut value = Vec::with_capacity(records.len());
    for record in &records {
        value.push(renderer.render(record).await?);
    }
    Ok(Json(Page { value, next_cursor }))
}

/// A request the caller may see, or 404 (its existence is not revealed).
pub async fn visible_request(app: &AppState, principal: &Principal, id: &str) -> ApiResult<RequestRecord> {
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

/// What the caller does to a request.
pub enum Action {
    Decide(Decision, Option<String>),
    Cancel,
    Complete,
}

/// Approve, reject, cancel or complete a request the caller can see (the rules are the store's).
pub async fn act(app: &AppState, principal: &Principal, id: &str, action: Action) -> ApiResult<RequestRecord> {
    let record = visible_request(app, principal, id).await?;
    let now = app.now();
    let actor = principal.actor();
    let done = match action {
        Action::Decide(decision, notes) => {
            let decided = app.store.decide(&actor, &record.id, decision, notes.as_deref(), now).await?;
            app.metrics.observe_decision((now - record.requested_at) as f64 / 1000.0);
            decided
        }
        Action::Cancel => app.store.cancel(&actor, &record.id, now).await?,
        Action::Complete => app.store.complete(&actor, &record.id, now).await?,
    };
    Ok(done)
}

async fn act_json(app: AppState, principal: Principal, id: String, action: Action) -> ApiResult<Json<Value>> {
    let record = act(&app, &principal, &id, action).await?;
    respond(&app, &principal, &record).await
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
