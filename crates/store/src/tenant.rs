//! A typed plan of a tenant's first objects, for [`crate::Store::seed`]: the demo tenant, the
//! test harnesses and the benchmark all describe their organisation with it, so each states
//! what an account, a group or a policy is once, through `core`'s typed states.

use crate::Proposal;
use countersign_core::eligibility::AccountKind;
use countersign_core::policy::{protects_assigned_groups_by_default, AccessPolicy, Completion, DEFAULT_REQUEST_TTL};
use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::state::{
    AccessPolicyState, AccountState, AssignableState, DeviceCategoryState, DeviceLifecycle, DeviceState, GroupMember,
    GroupState, ObjectState, RoleAssignmentState,
};
use countersign_core::step_up::StepUp;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The objects to create, in order; each method returns the new object's id.
#[derive(Debug, Default)]
pub struct TenantPlan {
    proposals: Vec<Proposal>,
    /// Usernames of the accounts planned so far, for naming group members.
    usernames: HashMap<String, String>,
}

/// An access policy to plan; [`PolicyPlan::new`] gives Countersign's defaults.
#[derive(Debug, Clone)]
pub struct PolicyPlan {
    pub display_name: String,
    pub description: String,
    pub profile_type: ProfileType,
    pub approver_group_ids: Vec<String>,
    pub required_approvals: i64,
    pub completion: Completion,
    pub request_ttl_ms: i64,
    /// R18: whether membership changes of the groups this type's objects are assigned to are held.
    pub protect_assigned_groups: bool,
    /// R21: seeded policies (first start, the demo, tests) ask nothing of decisions unless said.
    pub step_up: StepUp,
}

impl PolicyPlan {
    /// One approval, the requester completes, requests live 30 days, assigned groups protected.
    pub fn new(display_name: &str, profile_type: ProfileType, approver_group_ids: &[impl AsRef<str>]) -> PolicyPlan {
        PolicyPlan {
            display_name: display_name.to_owned(),
            description: String::new(),
            profile_type,
            approver_group_ids: approver_group_ids.iter().map(|g| g.as_ref().to_owned()).collect(),
            required_approvals: 1,
            completion: Completion::Requester,
            request_ttl_ms: DEFAULT_REQUEST_TTL,
            protect_assigned_groups: protects_assigned_groups_by_default(),
            step_up: StepUp::None,
        }
    }
}

impl TenantPlan {
    pub fn new() -> TenantPlan {
        TenantPlan::default()
    }

    fn add(&mut self, resource_type: ResourceType, state: ObjectState) -> String {
        let proposal = Proposal::create(resource_type, state);
        let id = proposal.object_id.clone();
        self.proposals.push(proposal);
        id
    }

    /// A person, who signs in with the password whose Argon2 hash is given (or, without one,
    /// only with API tokens).
    pub fn human(
        &mut self,
        username: &str,
        display_name: &str,
        email: Option<&str>,
        password_hash: Option<&str>,
    ) -> String {
        let id = self.account(username, display_name, email, AccountKind::Human);
        if let Some(proposal) = self.proposals.last_mut() {
            proposal.secret = password_hash.map(str::to_owned);
        }
        id
    }

    /// Automation, which signs in with API tokens only.
    pub fn service(&mut self, username: &str, display_name: &str) -> String {
        self.account(username, display_name, None, AccountKind::Service)
    }

    fn account(&mut self, username: &str, display_name: &str, email: Option<&str>, kind: AccountKind) -> String {
        let state = AccountState {
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            email: email.map(str::to_owned),
            kind,
            enabled: true,
            password: None,
            sessions: None,
            passkey: None,
        };
        let id = self.add(ResourceType::Account, ObjectState::Account(state));
        self.usernames.insert(id.clone(), username.to_owned());
        id
    }

    /// A group of accounts planned earlier (ids as returned by [`TenantPlan::human`] or
    /// [`TenantPlan::service`]); an id not planned here is left out.
    pub fn group(&mut self, display_name: &str, description: &str, member_ids: &[impl AsRef<str>]) -> String {
        let members = member_ids
            .iter()
            .filter_map(|id| {
                let id = id.as_ref();
                self.usernames.get(id).map(|username| GroupMember { id: id.to_owned(), username: username.clone() })
            })
            .collect();
        let state = GroupState { display_name: display_name.to_owned(), description: description.to_owned(), members };
        self.add(ResourceType::Group, ObjectState::Group(state))
    }

    /// A role (built-in or planned) granted to the members of `group_ids`.
    pub fn role_assignment(&mut self, display_name: &str, role_id: &str, group_ids: &[impl AsRef<str>]) -> String {
        let state = RoleAssignmentState {
            display_name: display_name.to_owned(),
            role_id: role_id.to_owned(),
            group_ids: group_ids.iter().map(|g| g.as_ref().to_owned()).collect(),
        };
        self.add(ResourceType::RoleAssignment, ObjectState::RoleAssignment(state))
    }

    /// An app, script, policy or device category, assigned to no group.
    pub fn document(
        &mut self,
        resource_type: ResourceType,
        name: &str,
        description: &str,
        document: Map<String, Value>,
    ) -> String {
        let (name, description) = (name.to_owned(), description.to_owned());
        let state = if resource_type.is_assignable() {
            ObjectState::Assignable(AssignableState { name, description, document, assigned_group_ids: vec![] })
        } else {
            ObjectState::DeviceCategory(DeviceCategoryState { name, description, document })
        };
        self.add(resource_type, state)
    }

    /// An active device.
    pub fn device(&mut self, name: &str, os: &str, owner: Option<&str>) -> String {
        let state = DeviceState {
            name: name.to_owned(),
            os: os.to_owned(),
            owner: owner.map(str::to_owned),
            state: DeviceLifecycle::Active,
            keep_enrollment_data: None,
        };
        self.add(ResourceType::Device, ObjectState::Device(state))
    }

    pub fn policy(&mut self, plan: PolicyPlan) -> String {
        let policy = AccessPolicy {
            id: String::new(),
            display_name: plan.display_name,
            description: plan.description,
            profile_type: plan.profile_type,
            approver_group_ids: plan.approver_group_ids,
            required_approvals: plan.required_approvals,
            completion: plan.completion,
            request_ttl_ms: plan.request_ttl_ms,
            protect_assigned_groups: plan.protect_assigned_groups,
            step_up: plan.step_up,
        };
        self.add(ResourceType::AccessPolicy, ObjectState::AccessPolicy(AccessPolicyState::of(&policy)))
    }

    /// The proposals, in the order they were planned.
    pub fn into_proposals(self) -> Vec<Proposal> {
        self.proposals
    }
}
