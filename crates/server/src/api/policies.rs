//! `/api/v1/accessPolicies`: every change is held (R9); reads show each approver's
//! eligibility (R2, R14).

use super::answers::{AccessPolicy, AccessPolicyWithApprovers, Approver, Request};
use super::{respond, JustificationBody, Page};
use crate::error::ApiResult;
use crate::extract::{justification, ApiJson, OptionalJson, Principal};
use crate::ops::policies::{self as ops, PolicyInput, VersionedPolicy};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;

/// `GET /api/v1/accessPolicies`
#[utoipa::path(
    get,
    path = "/accessPolicies",
    tag = "policies",
    summary = "List access policies",
    responses(
        (status = 200, description = "every access policy", body = Page<AccessPolicy>)
    )
)]
pub async fn list(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<Page<AccessPolicy>>> {
    let policies = ops::list_versioned(&app, &principal).await?;
    Ok(Json(Page::all(&policies, |p: &VersionedPolicy| AccessPolicy::new(&p.policy, p.version))))
}

/// `GET /api/v1/accessPolicies/{id}`: the policy, and every member of its approver groups with
/// `eligible` and the reasons when not.
#[utoipa::path(
    get,
    path = "/accessPolicies/{id}",
    tag = "policies",
    summary = "One access policy with each approver's eligibility",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the policy and its approvers", body = AccessPolicyWithApprovers)
    )
)]
pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<AccessPolicyWithApprovers>> {
    let found = ops::with_approvers(&app, &principal, &id).await?;
    Ok(Json(AccessPolicyWithApprovers {
        policy: AccessPolicy::new(&found.policy, found.version),
        approvers: found.approvers.iter().map(Approver::from).collect(),
        eligible_approver_count: found.eligible_count(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyBody {
    display_name: String,
    description: Option<String>,
    profile_type: String,
    approver_group_ids: Vec<String>,
    required_approvals: Option<i64>,
    completion: Option<String>,
    request_ttl: Option<String>,
    /// R18: whether a change to the membership of a group that an object of this profile type
    /// is assigned to is held under this policy (default true).
    protect_assigned_groups: Option<bool>,
    /// R21: `passkey` (every approve or reject carries a fresh passkey assertion over the
    /// change digest) or `none`. New policies ask for `passkey` unless told otherwise; a change
    /// that leaves it out keeps the policy's.
    step_up: Option<String>,
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
            protect_assigned_groups: self.protect_assigned_groups,
            step_up: self.step_up,
        };
        (input, justification(self.justification, headers))
    }
}

/// `POST /api/v1/accessPolicies`: always 202 with the request (R9).
#[utoipa::path(
    post,
    path = "/accessPolicies",
    tag = "policies",
    summary = "Propose an access policy (always held, R9)",
    request_body = PolicyBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 201, description = "created: the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn create(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PolicyBody>,
) -> ApiResult<Response> {
    let (input, justification) = body.split(&headers);
    let outcome = ops::create_policy(&app, &principal, &input, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `PUT /api/v1/accessPolicies/{id}`: held (R9).
#[utoipa::path(
    put,
    path = "/accessPolicies/{id}",
    tag = "policies",
    summary = "Propose a change to an access policy (always held, R9)",
    params(("id" = String, Path, description = "the object's id")),
    request_body = PolicyBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn update(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PolicyBody>,
) -> ApiResult<Response> {
    let (input, justification) = body.split(&headers);
    let outcome = ops::update_policy(&app, &principal, &id, &input, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `DELETE /api/v1/accessPolicies/{id}`: held (R9).
#[utoipa::path(
    delete,
    path = "/accessPolicies/{id}",
    tag = "policies",
    summary = "Propose deleting an access policy (always held, R9)",
    params(("id" = String, Path, description = "the object's id")),
    request_body = Option<JustificationBody>,
    responses(
        (status = 204, description = "deleted"),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn delete(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification, &headers);
    let outcome = ops::delete_policy(&app, &principal, &id, justification).await?;
    respond(&app, &principal, outcome).await
}
