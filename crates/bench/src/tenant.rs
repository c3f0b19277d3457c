//! The organisation every scenario starts from: requesters (Administrators), approvers
//! (Approver role), one app per lifecycle client, and an access policy on every profile type.

use anyhow::{anyhow, Context, Result};
use countersign_core::eligibility::AccountKind;
use countersign_core::permission::BUILT_IN_ROLES;
use countersign_core::policy::Completion;
use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::Millis;
use countersign_server::auth::{hash_password, new_token, sha256_hex};
use countersign_store::{Actor, Proposal, Store};
use serde_json::{json, Value};

/// One account's API access.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub admin: User,
    pub requesters: Vec<User>,
    pub approvers: Vec<User>,
    pub approvers_group: String,
    pub security_group: String,
    /// Apps, each as `(id, state)`: one per lifecycle client, so clients never contend for an
    /// object (R4 allows one open request per object).
    pub apps: Vec<(String, Value)>,
    /// Each profile type's access policy id.
    pub policies: Vec<(ProfileType, String)>,
}

impl Tenant {
    pub fn policy_for(&self, profile_type: ProfileType) -> &str {
        self.policies.iter().find(|(p, _)| *p == profile_type).map(|(_, id)| id.as_str()).unwrap_or_default()
    }
}

/// The profile types whose requests only security approvers decide.
pub fn needs_security_approvers(profile_type: ProfileType) -> bool {
    matches!(profile_type, ProfileType::Role | ProfileType::OperationApprovalPolicy | ProfileType::TenantConfiguration)
}

fn role_id(name: &str) -> Result<&'static str> {
    BUILT_IN_ROLES
        .iter()
        .find(|r| r.display_name == name)
        .map(|r| r.id)
        .ok_or_else(|| anyhow!("no built-in role {name}"))
}

pub fn app_state(name: &str, version: u64) -> Value {
    json!({"name": name, "description": "", "document": {"version": format!("{version}.0")}, "assignedGroupIds": []})
}

pub async fn seed(store: &Store, requesters: usize, approvers: usize, apps: usize, now: Millis) -> Result<Tenant> {
    store.seed_built_in_roles(now).await?;
    let password_hash = hash_password("bench-password-not-used").map_err(|e| anyhow!(e.detail))?;
    store.bootstrap_admin("admin", &password_hash, now).await?;
    let admin_account = store.account_by_username("admin").await?.context("the bootstrap admin")?;
    let admin_actor = Actor { id: admin_account.id.clone(), name: "admin".into(), kind: AccountKind::Human };

    let account = |username: String| {
        Proposal::create(
            ResourceType::Account,
            &username,
            json!({"username": username, "displayName": username, "email": null, "kind": "human", "enabled": true}),
        )
    };
    let requester_accounts: Vec<Proposal> = (0..requesters).map(|i| account(format!("requester{i}"))).collect();
    let approver_accounts: Vec<Proposal> = (0..approvers).map(|i| account(format!("approver{i}"))).collect();
    let security_account = account("security-approver".into());
    let members = |accounts: &[&Proposal]| -> Value {
        accounts.iter().map(|p| json!({"id": p.object_id, "username": p.object_name})).collect()
    };
    let group = |name: &str, accounts: &[&Proposal]| {
        Proposal::create(
            ResourceType::Group,
            name,
            json!({"displayName": name, "description": "", "members": members(accounts)}),
        )
    };
    let operators = group("Operators", &requester_accounts.iter().collect::<Vec<_>>());
    let approver_group = group("Approvers", &approver_accounts.iter().collect::<Vec<_>>());
    let security_group = group("Security approvers", &[&security_account]);
    let assignment = |name: &str, role: &str, group: &Proposal| -> Result<Proposal> {
        Ok(Proposal::create(
            ResourceType::RoleAssignment,
            name,
            json!({"displayName": name, "roleId": role_id(role)?, "groupIds": [group.object_id]}),
        ))
    };
    let mut plan = vec![
        assignment("Operators", "Administrator", &operators)?,
        assignment("Approvers", "Approver", &approver_group)?,
        assignment("Security approvers", "Approver", &security_group)?,
    ];
    let mut app_list = Vec::new();
    for i in 0..apps {
        let name = format!("Bench app {i}");
        let state = app_state(&name, 1);
        let proposal = Proposal::create(ResourceType::App, &name, state.clone());
        app_list.push((proposal.object_id.clone(), state));
        plan.push(proposal);
    }
    let mut policies = Vec::new();
    for profile_type in ProfileType::ALL {
        let name = format!("{} approval", profile_type.display_name());
        let group = if needs_security_approvers(profile_type) { &security_group } else { &approver_group };
        let policy = Proposal::create(
            ResourceType::AccessPolicy,
            &name,
            json!({
                "displayName": name, "description": "", "profileType": profile_type,
                "approverGroupIds": [group.object_id], "requiredApprovals": 1,
                "completion": Completion::Requester, "requestTtl": "P30D",
            }),
        );
        policies.push((profile_type, policy.object_id.clone()));
        plan.push(policy);
    }
    let (approvers_group, security_group_id) = (approver_group.object_id.clone(), security_group.object_id.clone());
    let directory: Vec<Proposal> = requester_accounts
        .iter()
        .chain(&approver_accounts)
        .chain([&security_account])
        .cloned()
        .chain([operators, approver_group, security_group])
        .collect();
    plan.splice(0..0, directory);
    if !store.seed(plan, now).await? {
        return Err(anyhow!("the benchmark needs an empty database"));
    }

    let admin = user(store, &admin_actor, &admin_account.id, "admin", now).await?;
    let mut requester_users = Vec::new();
    for p in &requester_accounts {
        requester_users.push(user(store, &admin_actor, &p.object_id, &p.object_name, now).await?);
    }
    let mut approver_users = Vec::new();
    for p in &approver_accounts {
        approver_users.push(user(store, &admin_actor, &p.object_id, &p.object_name, now).await?);
    }
    Ok(Tenant {
        admin,
        requesters: requester_users,
        approvers: approver_users,
        approvers_group,
        security_group: security_group_id,
        apps: app_list,
        policies,
    })
}

/// An API token for the account, issued by the admin.
async fn user(store: &Store, admin: &Actor, id: &str, name: &str, now: Millis) -> Result<User> {
    let token = new_token();
    countersign_store::testing::issue_token(store, admin, id, "bench", &sha256_hex(&token), now).await?;
    Ok(User { id: id.to_owned(), name: name.to_owned(), token })
}
