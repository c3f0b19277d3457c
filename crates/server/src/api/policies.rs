//! `/api/v1/accessPolicies`: every change is held (R9); reads show each approver's
//! eligibility (R2, R14).

use super::resources::{ensure_groups, propose_outcome, JustificationBody};
use super::{gate, Outcome};
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
use countersign_store::{state_of_policy, EligibilityRow, Proposal};
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
    let (policy, version, approvers) = with_approvers(&app, &principal, &id).await?;
    let eligible =
        approvers.iter().filter(|a| a.eligible).map(|a| &a.account_id).collect::<std::collections::HashSet<_>>().len();
    let mut body = render(&policy, version);
    body["approvers"] = json!(approvers);
    body["eligibleApproverCount"] = json!(eligible);
    Ok(Json(body))
}

/// A policy, its version, and every member of its approver groups with their eligibility.
pub async fn with_approvers(
    app: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<(AccessPolicy, i64, Vec<EligibilityRow>)> {
    principal.require("accessPolicies.read")?;
    let (policy, version) = existing(app, id).await?;
    let approvers =
        app.store.approver_eligibility(&policy.approver_group_ids, policy.profile_type.resource_type()).await?;
    Ok((policy, version, approvers))
}

/// What an administrator fills in for a policy (the wizard's fields).
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    pub display_name: String,
    pub description: Option<String>,
    pub profile_type: String,
    pub approver_group_ids: Vec<String>,
    pub required_approvals: Option<i64>,
    pub completion: Option<String>,
    pub request_ttl: Option<String>,
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

impl PolicyBody {
    fn split(self, headers: &HeaderMap) -> (PolicyInput, Option<String>) {
        let input = PolicyInput {
            display_name: self.display_name,
            description: self.description,
            profile_type: self.profile_type,
            approver_group_ids: self.approver_group_ids,
            required_approvals: self.required_approvals,
            completion: self.completion,
            request_ttl: self.request_ttl,
        };
        (input, justification(self.justification, headers))
    }
}

/// Validates `input` into a policy with id `id`.
pub async fn proposed(app: &AppState, id: &str, input: &PolicyInput) -> ApiResult<AccessPolicy> {
    let policy = AccessPolicy {
        id: id.to_owned(),
        display_name: validate::display_name("displayName", &input.display_name)?,
        description: validate::description(input.description.as_deref())?,
        profile_type: input.profile_type.parse::<ProfileType>().map_err(ApiError::validation)?,
        approver_group_ids: ensure_groups(app, &input.approver_group_ids).await?,
        required_approvals: input.required_approvals.unwrap_or(1),
        completion: input.completion.as_deref().map(Completion::parse).transpose()?.unwrap_or_default(),
        request_ttl_ms: input.request_ttl.as_deref().map(parse_duration).transpose()?.unwrap_or(DEFAULT_REQUEST_TTL),
    };
    policy.validate()?;
    Ok(policy)
}

/// Proposes a new policy: always held (R9).
pub async fn create_policy(
    app: &AppState,
    principal: &Principal,
    input: &PolicyInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require("accessPolicies.create")?;
    let policy = proposed(app, "", input).await?;
    let proposal = Proposal::create(ResourceType::AccessPolicy, &policy.display_name, state_of_policy(&policy));
    gate(app, principal, proposal, justification).await
}

/// An existing policy and its version, or 404.
pub async fn existing(app: &AppState, id: &str) -> ApiResult<(AccessPolicy, i64)> {
    let id = parse_id(id)?;
    app.store.policy(&id).await?.ok_or_else(|| ApiError::not_found(format!("access policy {id} does not exist")))
}

/// Proposes a change to a policy: held (R9).
pub async fn update_policy(
    app: &AppState,
    principal: &Principal,
    id: &str,
    input: &PolicyInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require("accessPolicies.update")?;
    let (current, version) = existing(app, id).await?;
    let policy = proposed(app, &current.id, input).await?;
    if policy.profile_type != current.profile_type {
        return Err(ApiError::validation("a policy's profileType cannot change; create a new policy instead"));
    }
    let (before, after) = (state_of_policy(&current), state_of_policy(&policy));
    propose_outcome(
        app,
        principal,
        ResourceType::AccessPolicy,
        Operation::Update,
        current.id,
        before,
        version,
        after,
        justification,
    )
    .await
}

/// Proposes deleting a policy: held (R9).
pub async fn delete_policy(
    app: &AppState,
    principal: &Principal,
    id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require("accessPolicies.delete")?;
    let (current, version) = existing(app, id).await?;
    let before = state_of_policy(&current);
    propose_outcome(
        app,
        principal,
        ResourceType::AccessPolicy,
        Operation::Delete,
        current.id,
        before,
        version,
        Value::Null,
        justification,
    )
    .await
}

/// `POST /api/v1/accessPolicies`: always 202 with the request (R9).
pub async fn create(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PolicyBody>,
) -> ApiResult<Response> {
    let (input, justification) = body.split(&headers);
    create_policy(&app, &principal, &input, justification).await?.respond(&app, &principal).await
}

/// `PUT /api/v1/accessPolicies/{id}`: held (R9).
pub async fn update(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PolicyBody>,
) -> ApiResult<Response> {
    let (input, justification) = body.split(&headers);
    update_policy(&app, &principal, &id, &input, justification).await?.respond(&app, &principal).await
}

/// `DELETE /api/v1/accessPolicies/{id}`: held (R9).
pub async fn delete(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification, &headers);
    delete_policy(&app, &principal, &id, justification).await?.respond(&app, &principal).await
}
