//! Access policies: every change is held (R9); reads show each approver's eligibility (R2, R14).

use super::{ensure_groups, gate, propose, Current, Outcome};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Principal};
use crate::AppState;
use countersign_core::eligibility::ineligibility;
use countersign_core::gate::{Gate, Subject};
use countersign_core::permission::Permission;
use countersign_core::policy::{
    parse_duration, protects_assigned_groups_by_default, AccessPolicy, Completion, DEFAULT_REQUEST_TTL,
};
use countersign_core::policy_set::ensure_same_profile_type;
use countersign_core::profile::{profile_type_for, Operation, ProfileType, ResourceType};
use countersign_core::state::{AccessPolicyState, ObjectState};
use countersign_core::step_up::StepUp;
use countersign_core::validate;
use countersign_store::{EligibilityRow, Proposal};

/// A policy and its version.
pub struct VersionedPolicy {
    pub policy: AccessPolicy,
    pub version: i64,
}

/// Every access policy.
pub async fn list(app: &AppState, principal: &Principal) -> ApiResult<Vec<AccessPolicy>> {
    principal.require(Permission::AccessPoliciesRead)?;
    Ok(app.store.policies().await?)
}

/// Every access policy with its version.
pub async fn list_versioned(app: &AppState, principal: &Principal) -> ApiResult<Vec<VersionedPolicy>> {
    let policies = list(app, principal).await?;
    let mut versioned = Vec::with_capacity(policies.len());
    for policy in policies {
        let version = app.store.policy(&policy.id).await?.map(|(_, v)| v).unwrap_or(0);
        versioned.push(VersionedPolicy { policy, version });
    }
    Ok(versioned)
}

/// One policy the caller may read.
pub async fn get(app: &AppState, principal: &Principal, id: &str) -> ApiResult<VersionedPolicy> {
    principal.require(Permission::AccessPoliciesRead)?;
    existing(app, id).await
}

/// A policy and every member of its approver groups with their eligibility.
pub struct PolicyWithApprovers {
    pub policy: AccessPolicy,
    pub version: i64,
    pub approvers: Vec<EligibilityRow>,
}

impl PolicyWithApprovers {
    /// How many distinct accounts may approve under this policy now (R14).
    pub fn eligible_count(&self) -> usize {
        self.approvers
            .iter()
            .filter(|a| a.eligible)
            .map(|a| &a.account_id)
            .collect::<std::collections::HashSet<_>>()
            .len()
    }
}

pub async fn with_approvers(app: &AppState, principal: &Principal, id: &str) -> ApiResult<PolicyWithApprovers> {
    let VersionedPolicy { policy, version } = get(app, principal, id).await?;
    let approvers =
        app.store.approver_eligibility(&policy.approver_group_ids, policy.profile_type.resource_type()).await?;
    Ok(PolicyWithApprovers { policy, version, approvers })
}

/// Whether the gate would hold `operation` on a `resource_type` now (shown before saving).
pub async fn protects(app: &AppState, resource_type: ResourceType, operation: Operation) -> ApiResult<bool> {
    let subject = Subject::Protectable(profile_type_for(resource_type, operation));
    Ok(matches!(countersign_core::gate::gate(subject, &app.store.policies().await?), Gate::Hold(_)))
}

/// The names of the policies whose approvers include this group.
pub async fn approved_by_group(app: &AppState, group_id: &str) -> ApiResult<Vec<String>> {
    let policies = app.store.policies().await?;
    Ok(policies
        .into_iter()
        .filter(|p| p.approver_group_ids.iter().any(|g| g == group_id))
        .map(|p| p.display_name)
        .collect())
}

/// The profile types the caller could approve a request of: those with a policy whose approver
/// groups the caller is eligible in, each once, in policy order.
pub async fn approvable_profile_types(app: &AppState, principal: &Principal) -> ApiResult<Vec<ProfileType>> {
    let candidate = principal.candidate();
    let mut types = Vec::new();
    for policy in app.store.policies().await? {
        let eligible =
            ineligibility(&candidate, &policy.approver_group_ids, policy.profile_type.resource_type()).is_empty();
        if eligible && !types.contains(&policy.profile_type) {
            types.push(policy.profile_type);
        }
    }
    Ok(types)
}

/// The profile types whose changes need approval now, each once: those with a policy, and
/// access policies themselves (R9).
pub async fn protected_profile_types(app: &AppState) -> ApiResult<Vec<ProfileType>> {
    let mut types = Vec::new();
    for policy in app.store.policies().await? {
        if !types.contains(&policy.profile_type) {
            types.push(policy.profile_type);
        }
    }
    if !types.contains(&ProfileType::OperationApprovalPolicy) {
        types.push(ProfileType::OperationApprovalPolicy);
    }
    Ok(types)
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
    /// R18; protected unless said otherwise.
    pub protect_assigned_groups: Option<bool>,
    /// R21: `passkey` or `none`; a new policy asks for a passkey unless said otherwise, a
    /// changed one keeps what it had.
    pub step_up: Option<String>,
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
        protect_assigned_groups: input.protect_assigned_groups.unwrap_or(protects_assigned_groups_by_default()),
        step_up: match input.step_up.as_deref() {
            Some(text) => text.parse::<StepUp>().map_err(ApiError::validation)?,
            None => StepUp::FOR_NEW_POLICIES,
        },
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
    principal.require(Permission::AccessPoliciesCreate)?;
    let policy = proposed(app, "", input).await?;
    let proposal = Proposal::create(ResourceType::AccessPolicy, policy_state(&policy));
    gate(app, principal, proposal, justification).await
}

/// An existing policy and its version, or 404.
pub async fn existing(app: &AppState, id: &str) -> ApiResult<VersionedPolicy> {
    let id = parse_id(id)?;
    let (policy, version) = app
        .store
        .policy(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("access policy {id} does not exist")))?;
    Ok(VersionedPolicy { policy, version })
}

fn policy_state(policy: &AccessPolicy) -> ObjectState {
    ObjectState::AccessPolicy(AccessPolicyState::of(policy))
}

fn as_current(existing: &VersionedPolicy) -> Current {
    Current { id: existing.policy.id.clone(), state: policy_state(&existing.policy), version: existing.version }
}

/// Proposes a change to a policy: held (R9).
pub async fn update_policy(
    app: &AppState,
    principal: &Principal,
    id: &str,
    input: &PolicyInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::AccessPoliciesUpdate)?;
    let before = existing(app, id).await?;
    let mut input = input.clone();
    if input.step_up.is_none() {
        input.step_up = Some(before.policy.step_up.as_str().to_owned());
    }
    let policy = proposed(app, &before.policy.id, &input).await?;
    ensure_same_profile_type(&before.policy, &policy)?;
    let after = Some(policy_state(&policy));
    propose(app, principal, ResourceType::AccessPolicy, Operation::Update, as_current(&before), after, justification)
        .await
}

/// Proposes deleting a policy: held (R9).
pub async fn delete_policy(
    app: &AppState,
    principal: &Principal,
    id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::AccessPoliciesDelete)?;
    let before = existing(app, id).await?;
    propose(app, principal, ResourceType::AccessPolicy, Operation::Delete, as_current(&before), None, justification)
        .await
}
