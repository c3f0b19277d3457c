//! `/api/v1/accessPolicies`: every change is held (R9); reads show each approver's
//! eligibility (R2, R14).

use super::resources::{ensure_groups, JustificationBody};
use super::{new_id, submit};
use crate::error::{ApiError, ApiResult};
use crate::extract::{justification, parse_id, ApiJson, OptionalJson, Principal};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use countersign_core::policy::{format_duration, parse_duration, AccessPolicy, Completion, DEFAULT_REQUEST_TTL};
use countersign_core::profile::{Operation, ProfileType, ResourceType};
use countersign_core::validate;
use countersign_store::{state_of_policy, Proposal};
use serde::Deserialize;
use serde_json::{json, Value};

fn render(policy: &AccessPolicy, version: i64) -> Value {
    json!({
        "id": policy.id,
        "displayName": policy.display_name,
        "description": policy.description,
        "profileType": policy.profile_type,
        "approverGroupIds": policy.approver_group_ids,
        "requiredApprovals": policy.required_approvals,
        "completion": policy.completion,
        "requestTtl": format_duration(policy.request_ttl_ms),
        "version": version,
    })
}

/// `GET /api/v1/accessPolicies`
pub async fn list(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require("accessPolicies.read")?;
    let policies = app.store.policies().await?;
    let mut value = Vec::with_capacity(policies.len());
    for policy in &policies {
        let version = app.store.policy(&policy.id).await?.map(|(_, v)| v).unwrap_or(0);
        value.push(render(policy, version));
    }
    Ok(Json(json!({ "value": value, "nextCursor": null })))
}

/// `GET /api/v1/accessPolicies/{id}`: the policy, and every member of its approver groups with
/// `eligible` and the reasons when not.
pub async fn get(State(app): State<AppState>, principal: Principal, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    principal.require("accessPolicies.read")?;
    let id = parse_id(&id)?;
    let (policy, version) = app
        .store
        .policy(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("access policy {id} does not exist")))?;
    let approvers =
        app.store.approver_eligibility(&policy.approver_group_ids, policy.profile_type.resource_type()).await?;
    let eligible =
        approvers.iter().filter(|a| a.eligible).map(|a| &a.account_id).collect::<std::collections::HashSet<_>>().len();
    let mut body = render(&policy, version);
    body["approvers"] = json!(approvers);
    body["eligibleApproverCount"] = json!(eligible);
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyBody {
    display_name: String,
    description: Option<String>,
    profile_type: String,
    approver_group_ids: Vec<String>,
    required_approvals: Option<i64>,
    completion: Option<String>,
    request_ttl: Option<String>,
    justification: Option<String>,
}

async fn proposed(app: &AppState, id: &str, body: &PolicyBody) -> ApiResult<AccessPolicy> {
    let policy = AccessPolicy {
        id: id.to_owned(),
        display_name: validate::display_name("displayName", &body.display_name)?,
        description: validate::description(body.description.as_deref())?,
        profile_type: body.profile_type.parse::<ProfileType>().map_err(ApiError::validation)?,
        approver_group_ids: ensure_groups(app, &body.approver_group_ids).await?,
        required_approvals: body.required_approvals.unwrap_or(1),
        completion: body.completion.as_deref().map(Completion::parse).transpose()?.unwrap_or_default(),
        request_ttl_ms: body.request_ttl.as_deref().map(parse_duration).transpose()?.unwrap_or(DEFAULT_REQUEST_TTL),
    };
    policy.validate()?;
    Ok(policy)
}

/// `POST /api/v1/accessPolicies`: always 202 with the request (R9).
pub async fn create(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PolicyBody>,
) -> ApiResult<Response> {
    principal.require("accessPolicies.create")?;
    let policy = proposed(&app, &new_id(), &body).await?;
    let proposal = Proposal::create(ResourceType::AccessPolicy, &policy.display_name, state_of_policy(&policy));
    submit(&app, &principal, proposal, justification(body.justification, &headers)).await
}

async fn existing(app: &AppState, id: &str) -> ApiResult<(AccessPolicy, i64)> {
    let id = parse_id(id)?;
    app.store.policy(&id).await?.ok_or_else(|| ApiError::not_found(format!("access policy {id} does not exist")))
}

/// `PUT /api/v1/accessPolicies/{id}`: held (R9).
pub async fn update(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PolicyBody>,
) -> ApiResult<Response> {
    principal.require("accessPolicies.update")?;
    let (current, version) = existing(&app, &id).await?;
    let policy = proposed(&app, &current.id, &body).await?;
    if policy.profile_type != current.profile_type {
        return Err(ApiError::validation("a policy's profileType cannot change; create a new policy instead"));
    }
    super::resources::propose(
        &app,
        &principal,
        ResourceType::AccessPolicy,
        Operation::Update,
        current.id.clone(),
        state_of_policy(&current),
        version,
        state_of_policy(&policy),
        justification(body.justification, &headers),
    )
    .await
}

/// `DELETE /api/v1/accessPolicies/{id}`: held (R9).
pub async fn delete(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    principal.require("accessPolicies.delete")?;
    let (current, version) = existing(&app, &id).await?;
    super::resources::propose(
        &app,
        &principal,
        ResourceType::AccessPolicy,
        Operation::Delete,
        current.id.clone(),
        state_of_policy(&current),
        version,
        Value::Null,
        justification(body.justification, &headers),
    )
    .await
}
