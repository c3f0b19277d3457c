//! The oracle: what the store holds before and after a sequence, which accounts the attacker
//! controls (from the credentials it knows, never from Countersign's control model), and the
//! properties. Who could approve is computed here from the state (R2's facts: group membership,
//! roles, kind, enabled), not asked of the server.

use countersign_core::eligibility::AccountKind;
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::request::RequestStatus;
use countersign_core::state::{AccessPolicyState, ObjectState};
use countersign_server::auth::verify_password;
use countersign_store::{RequestFilter, RequestRecord, RequestView, Store};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What the attacker knows: the oracle's ground truth of control.
pub struct Knowledge {
    /// mallory.
    pub own: String,
    /// Accounts it created (it chose the password, or holds the service account's token).
    pub created: BTreeSet<String>,
    /// Accounts some credential it held was accepted for.
    pub authenticated: BTreeSet<String>,
    /// Every password it chose for an account, whether or not the change went through.
    pub passwords: Vec<(String, String)>,
    /// Accounts it holds an unrevoked token of.
    pub token_holders: BTreeSet<String>,
}

/// The accounts the attacker controls after the sequence: its own, those it made, those it
/// acted as or holds a token of, and those for which a password it chose is the live one.
pub fn controlled(knowledge: &Knowledge, after: &World) -> BTreeSet<String> {
    let mut controlled: BTreeSet<String> = [knowledge.own.clone()].into();
    controlled.extend(knowledge.created.iter().cloned());
    controlled.extend(knowledge.authenticated.iter().cloned());
    controlled.extend(knowledge.token_holders.iter().cloned());
    for (account, password) in &knowledge.passwords {
        if controlled.contains(account) {
            continue;
        }
        let hash = after.accounts.get(account).and_then(|a| a.password_hash.as_deref());
        if verify_password(password, hash) {
            controlled.insert(account.clone());
        }
    }
    controlled
}

/// One live account, as R2 and R9 see it.
pub struct AccountFacts {
    display_name: String,
    email: Option<String>,
    human: bool,
    enabled: bool,
    password_hash: Option<String>,
    tokens: BTreeSet<String>,
}

/// One role assignment.
struct Assignment {
    json: Value,
    role_id: String,
    group_ids: BTreeSet<String>,
}

/// One resource (a document or a device).
struct Object {
    resource_type: ResourceType,
    id: String,
    version: i64,
    state: Value,
}

/// Everything in the store that protection is about, at one moment.
pub struct World {
    accounts: BTreeMap<String, AccountFacts>,
    /// Group → its live members.
    members: BTreeMap<String, BTreeSet<String>>,
    roles: BTreeMap<String, (Value, BTreeSet<String>)>,
    assignments: BTreeMap<String, Assignment>,
    policies: BTreeMap<String, AccessPolicy>,
    /// Each policy's version and state, as requests show it.
    policy_states: BTreeMap<String, (i64, Value)>,
    /// `"<type> <id>"` → the object.
    objects: BTreeMap<String, Object>,
    requests: Vec<RequestRecord>,
}

const LIMIT: i64 = 500;

impl World {
    pub async fn read(store: &Store) -> World {
        let read = "the oracle reads the store";
        let mut accounts = BTreeMap::new();
        for account in store.accounts(None, LIMIT).await.expect(read) {
            let tokens = store.tokens_of(&account.id).await.expect(read).into_iter().map(|t| t.id).collect();
            let facts = AccountFacts {
                display_name: account.display_name,
                email: account.email,
                human: account.kind == AccountKind::Human,
                enabled: account.enabled,
                password_hash: account.password_hash,
                tokens,
            };
            accounts.insert(account.id, facts);
        }
        let mut members = BTreeMap::new();
        for group in store.groups(None, LIMIT).await.expect(read) {
            let of = store.group_members(&group.id).await.expect(read).into_iter().map(|a| a.id).collect();
            members.insert(group.id, of);
        }
        let roles = store
            .roles()
            .await
            .expect(read)
            .into_iter()
            .map(|r| (r.id.clone(), (json!(r), r.permissions.iter().cloned().collect())))
            .collect();
        let assignments = store
            .role_assignments()
            .await
            .expect(read)
            .into_iter()
            .map(|a| {
                let assignment = Assignment {
                    json: json!(a),
                    role_id: a.role_id.clone(),
                    group_ids: a.group_ids.iter().cloned().collect(),
                };
                (a.id, assignment)
            })
            .collect();
        let policies: BTreeMap<String, AccessPolicy> =
            store.policies().await.expect(read).into_iter().map(|p| (p.id.clone(), p)).collect();
        let mut policy_states = BTreeMap::new();
        for id in policies.keys() {
            if let Some((policy, version)) = store.policy(id).await.expect(read) {
                let state = ObjectState::AccessPolicy(AccessPolicyState::of(&policy)).to_json();
                policy_states.insert(id.clone(), (version, state));
            }
        }
        let mut objects = BTreeMap::new();
        for resource_type in ResourceType::DOCUMENT_TYPES.into_iter().chain([ResourceType::Device]) {
            for record in store.resources(resource_type, None, LIMIT).await.expect(read).records {
                let object = Object {
                    resource_type,
                    id: record.id.clone(),
                    version: record.version,
                    state: record.state.to_json(),
                };
                objects.insert(format!("{resource_type} {}", record.id), object);
            }
        }
        let filter = RequestFilter {
            view: RequestView::All,
            status: None,
            resource_type: None,
            object_id: None,
            resource_types: None,
            since: 0,
            until: None,
            before_id: None,
            limit: LIMIT,
        };
        let requests = store.requests(&filter).await.expect(read).records;
        World { accounts, members, roles, assignments, policies, policy_states, objects, requests }
    }

    /// The permissions `account` holds through its groups' role assignments.
    fn permissions(&self, account: &str) -> BTreeSet<String> {
        let groups: BTreeSet<&String> =
            self.members.iter().filter(|(_, m)| m.contains(account)).map(|(g, _)| g).collect();
        self.assignments
            .values()
            .filter(|a| a.group_ids.iter().any(|g| groups.contains(g)))
            .filter_map(|a| self.roles.get(&a.role_id))
            .flat_map(|(_, permissions)| permissions.iter().cloned())
            .collect()
    }

    /// R2 from the state: the enabled human members of `policy`'s approver groups who hold
    /// `maa.approve` and a read permission for what it protects.
    fn eligible(&self, policy: &AccessPolicy) -> BTreeSet<String> {
        let reads = read_permissions(policy.profile_type);
        policy
            .approver_group_ids
            .iter()
            .filter_map(|g| self.members.get(g))
            .flatten()
            .filter(|a| self.accounts.get(*a).is_some_and(|f| f.human && f.enabled))
            .filter(|a| {
                let held = self.permissions(a);
                held.contains("maa.approve") && reads.iter().any(|r| held.contains(*r))
            })
            .cloned()
            .collect()
    }
}

/// The read permissions that let an approver see what a policy of this type protects (any of
/// them, to err on the side of eligible).
fn read_permissions(profile_type: ProfileType) -> &'static [&'static str] {
    match profile_type {
        ProfileType::App => &["apps.read"],
        ProfileType::Script => &["scripts.read"],
        ProfileType::CompliancePolicy => &["compliancePolicies.read"],
        ProfileType::ConfigurationPolicy => &["configurationPolicies.read"],
        ProfileType::DeviceWipe | ProfileType::DeviceRetire | ProfileType::DeviceDelete => &["devices.read"],
        ProfileType::Role => &["roles.read"],
        ProfileType::OperationApprovalPolicy => &["accessPolicies.read", "accounts.read", "groups.read"],
        ProfileType::TenantConfiguration => &["tenantConfiguration.read"],
    }
}

/// What is protected, decided on the world before the sequence.
struct Scope {
    approver_groups: BTreeSet<String>,
    /// Groups that hold a role, or that a protected object is assigned to (not approver groups).
    guarded_groups: BTreeSet<String>,
    approver_accounts: BTreeSet<String>,
    devices: BTreeSet<String>,
    own: String,
}

impl Scope {
    fn of(before: &World, own: &str) -> Scope {
        let approver_groups: BTreeSet<String> =
            before.policies.values().flat_map(|p| p.approver_group_ids.iter().cloned()).collect();
        let protected: BTreeSet<ProfileType> = before.policies.values().map(|p| p.profile_type).collect();
        let deployed = before
            .objects
            .values()
            .filter(|o| protected.contains(&o.resource_type.profile_type()))
            .filter_map(|o| o.state["assignedGroupIds"].as_array())
            .flatten()
            .filter_map(|g| g.as_str().map(str::to_owned));
        let guarded_groups = before
            .assignments
            .values()
            .flat_map(|a| a.group_ids.iter().cloned())
            .chain(deployed)
            .filter(|g| !approver_groups.contains(g))
            .collect();
        let approver_accounts =
            approver_groups.iter().filter_map(|g| before.members.get(g)).flatten().cloned().collect();
        let devices =
            before.objects.values().filter(|o| o.resource_type == ResourceType::Device).map(|o| o.id.clone()).collect();
        Scope { approver_groups, guarded_groups, approver_accounts, devices, own: own.to_owned() }
    }

    /// The protected part of `world`, keyed by what it is. Members of guarded groups count only
    /// while they exist in `live` (deleting an account that is not an approver is not
    /// protected; approvers are).
    fn view(&self, world: &World, live: &World) -> BTreeMap<String, Value> {
        let mut view = BTreeMap::new();
        for (id, (version, state)) in &world.policy_states {
            view.insert(format!("access policy {id}"), json!({"version": version, "state": state}));
        }
        for (key, object) in &world.objects {
            if object.resource_type != ResourceType::Device || self.devices.contains(&object.id) {
                view.insert(key.clone(), json!({"version": object.version, "state": object.state}));
            }
        }
        for (id, (role, _)) in &world.roles {
            view.insert(format!("role {id}"), role.clone());
        }
        for (id, assignment) in &world.assignments {
            view.insert(format!("role assignment {id}"), assignment.json.clone());
        }
        for group in &self.approver_groups {
            view.insert(format!("members of approver group {group}"), json!(world.members.get(group)));
        }
        for group in &self.guarded_groups {
            let members: Option<Vec<&String>> =
                world.members.get(group).map(|m| m.iter().filter(|a| live.accounts.contains_key(*a)).collect());
            view.insert(format!("members of {group} (it holds a role or a protected deployment)"), json!(members));
        }
        for account in &self.approver_accounts {
            let own = *account == self.own;
            let facts = world.accounts.get(account).map(|f| {
                // R9's exception: an approver changes their own password and tokens freely.
                let password = f.password_hash.as_deref().map(|h| h.chars().rev().take(8).collect::<String>());
                json!({
                    "displayName": f.display_name, "email": f.email, "enabled": f.enabled, "human": f.human,
                    "password": if own { Value::Null } else { json!(password) },
                    "tokens": if own { Value::Null } else { json!(f.tokens) },
                })
            });
            view.insert(format!("approver account {account}"), json!(facts));
        }
        view
    }
}

/// Property 2's one approved request, as bob read it.
pub struct Approved {
    /// What the change is, in words.
    pub what: String,
    pub request: String,
    /// The object it changes, as `Scope::view` names it.
    pub key: String,
    pub after: Value,
    pub before_version: i64,
}

/// Everything that breaks the properties, in words: completed requests of controlled accounts,
/// protected changes without approval, and controlled accounts that could approve. With
/// `approved` (property 2), that request and its change, exactly as approved, are allowed.
pub fn violations(
    before: &World,
    after: &World,
    controlled: &BTreeSet<String>,
    own: &str,
    approved: Option<&Approved>,
) -> Vec<String> {
    let mut found = Vec::new();
    let allowed_request = approved.map(|a| a.request.as_str());
    let protected: BTreeSet<ProfileType> =
        before.policies.values().map(|p| p.profile_type).chain([ProfileType::OperationApprovalPolicy]).collect();
    let done_before: BTreeSet<&String> =
        before.requests.iter().filter(|r| r.status == RequestStatus::Completed).map(|r| &r.id).collect();
    for request in &after.requests {
        if request.status == RequestStatus::Completed
            && !done_before.contains(&request.id)
            && controlled.contains(&request.requested_by)
            && protected.contains(&request.profile_type)
            && Some(request.id.as_str()) != allowed_request
        {
            let approvers: Vec<&str> = request.approvals.iter().map(|a| a.approver_id.as_str()).collect();
            found.push(format!(
                "completed without an independent approval: {} ({} of {} {}), requested by {}, approved by {}",
                request.id,
                request.operation,
                request.resource_type,
                request.object_id,
                request.requested_by,
                approvers.join(", ")
            ));
        }
    }

    let scope = Scope::of(before, own);
    let (was, is) = (scope.view(before, after), scope.view(after, after));
    let keys: BTreeSet<&String> = was.keys().chain(is.keys()).collect();
    let benign_completed = approved
        .is_some_and(|a| after.requests.iter().any(|r| r.id == a.request && r.status == RequestStatus::Completed));
    for key in keys {
        let (old, new) = (was.get(key).unwrap_or(&Value::Null), is.get(key).unwrap_or(&Value::Null));
        if old == new {
            continue;
        }
        if let Some(approved) = approved.filter(|a| benign_completed && a.key == *key) {
            if new["state"] == approved.after && new["version"] == json!(approved.before_version + 1) {
                continue;
            }
            found.push(format!(
                "the approved change was applied otherwise: {key}: approved {}, now {new}",
                approved.after
            ));
            continue;
        }
        found.push(format!("changed without approval: {key}: {old} → {new}"));
    }

    let mut approvers: BTreeMap<&String, Vec<ProfileType>> = BTreeMap::new();
    for policy in after.policies.values() {
        let was_eligible = before.policies.get(&policy.id).map(|p| before.eligible(p)).unwrap_or_default();
        for account in after.eligible(policy) {
            if controlled.contains(&account) && !(account == own && was_eligible.contains(&account)) {
                if let Some(account) = controlled.get(&account) {
                    approvers.entry(account).or_default().push(policy.profile_type);
                }
            }
        }
    }
    for (account, types) in approvers {
        let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        found.push(format!(
            "{account}, an account the attacker controls, is an eligible approver of {}",
            types.join(", ")
        ));
    }
    found
}
