//! The organisation every scenario starts from: requesters (Administrators), approvers
//! (Approver role), one app per lifecycle client, and an access policy on every profile type.

use anyhow::{anyhow, Context, Result};
use countersign_core::eligibility::AccountKind;
use countersign_core::permission::BUILT_IN_ROLES;
use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::state::{AssignableState, ObjectState};
use countersign_core::Millis;
use countersign_server::auth::{hash_password, new_token, sha256_hex};
use countersign_store::{Actor, PolicyPlan, Store, TenantPlan};
use serde_json::{json, Map, Value};

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

fn app_document(version: u64) -> Map<String, Value> {
    Map::from_iter([("version".to_owned(), json!(format!("{version}.0")))])
}

/// A bench app's state at `version`, as the API shows it.
pub fn app_state(name: &str, version: u64) -> Value {
    let state = AssignableState {
        name: name.to_owned(),
        description: String::new(),
        document: app_document(version),
        assigned_group_ids: vec![],
    };
    ObjectState::Assignable(state).to_json()
}

pub async fn seed(store: &Store, requesters: usize, approvers: usize, apps: usize, now: Millis) -> Result<Tenant> {
    store.seed_built_in_roles(now).await?;
    let password_hash = hash_password("bench-password-not-used").map_err(|e| anyhow!(e.detail))?;
    store.bootstrap_admin("admin", &password_hash, now).await?;
    let admin_account = store.account_by_username("admin").await?.context("the bootstrap admin")?;
    let admin_actor = Actor {
        id: admin_account.id.clone(),
        name: "admin".into(),
        username: "admin".into(),
        kind: AccountKind::Human,
        via: vec![],
    };

    let mut plan = TenantPlan::new();
    let mut people = |prefix: &str, count: usize| -> Vec<(String, String)> {
        (0..count)
            .map(|i| {
                let username = format!("{prefix}{i}");
                (plan.human(&username, &username, None, None), username)
            })
            .collect()
    };
    let requester_accounts = people("requester", requesters);
    let approver_accounts = people("approver", approvers);
    let security_account = plan.human("security-approver", "security-approver", None, None);
    let ids = |accounts: &[(String, String)]| -> Vec<String> { accounts.iter().map(|(id, _)| id.clone()).collect() };
    let (requester_ids, approver_ids) = (ids(&requester_accounts), ids(&approver_accounts));
    let operators = plan.group("Operators", "", &requester_ids);
    let approvers_group = plan.group("Approvers", "", &approver_ids);
    let security_group = plan.group("Security approvers", "", &[&security_account]);
    plan.role_assignment("Operators", role_id("Administrator")?, &[&operators]);
    plan.role_assignment("Approvers", role_id("Approver")?, &[&approvers_group]);
    plan.role_assignment("Security approvers", role_id("Approver")?, &[&security_group]);
    let mut app_list = Vec::new();
    for i in 0..apps {
        let name = format!("Bench app {i}");
        let id = plan.document(ResourceType::App, &name, "", app_document(1));
        app_list.push((id, app_state(&name, 1)));
    }
    let mut policies = Vec::new();
    for profile_type in ProfileType::ALL {
        let name = format!("{} approval", profile_type.display_name());
        let group = if needs_security_approvers(profile_type) { &security_group } else { &approvers_group };
        policies.push((profile_type, plan.policy(PolicyPlan::new(&name, profile_type, &[group]))));
    }
    if !store.seed(plan.into_proposals(), now).await? {
        return Err(anyhow!("the benchmark needs an empty database"));
    }

    let admin = user(store, &admin_actor, &admin_account.id, "admin", now).await?;
    let mut requester_users = Vec::new();
    for (id, username) in &requester_accounts {
        requester_users.push(user(store, &admin_actor, id, username, now).await?);
    }
    let mut approver_users = Vec::new();
    for (id, username) in &approver_accounts {
        approver_users.push(user(store, &admin_actor, id, username, now).await?);
    }
    Ok(Tenant {
        admin,
        requesters: requester_users,
        approvers: approver_users,
        approvers_group,
        security_group,
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
