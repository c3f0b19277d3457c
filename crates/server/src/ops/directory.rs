//! Accounts, groups and membership, roles and role assignments. Changes to approver groups and
//! approver accounts are held by the gate (R9); RBAC changes when a `role` policy exists.

use super::{
    current, ensure_groups, gate, limit_of, next_cursor, propose, propose_with_secret, wrong_state, Current, Outcome,
    PageRequest, Paged,
};
use crate::auth::{new_token, sha256_hex};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Principal};
use crate::AppState;
use countersign_core::accounts::{ensure_not_self, SelfChange};
use countersign_core::eligibility::AccountKind;
use countersign_core::error::ErrorCode;
use countersign_core::permission::Permission;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::state::{
    AccountState, GroupMember, GroupState, ObjectState, PasswordChange, RoleAssignmentState, RoleState, SessionsChange,
};
use countersign_core::validate;
use countersign_store::{AccountRecord, GroupRecord, Proposal, RoleAssignmentRecord, RoleRecord, SessionInfo};

// ---- accounts ----

pub async fn list_accounts(
    app: &AppState,
    principal: &Principal,
    page: &PageRequest,
) -> ApiResult<Paged<AccountRecord>> {
    principal.require(Permission::AccountsRead)?;
    let limit = limit_of(page.limit)?;
    let after = page.cursor.as_deref().map(parse_id).transpose()?;
    let items = app.store.accounts(after.as_deref(), limit).await?;
    let next_cursor = next_cursor(&items, limit, |a| a.id.clone());
    Ok(Paged { items, next_cursor })
}

/// An account and the groups it is in.
pub struct AccountWithGroups {
    pub account: AccountRecord,
    pub group_ids: Vec<String>,
    /// R16: who controls it now.
    pub controlled_by: Vec<Controller>,
    /// Its linked single sign-on identities (issue 17).
    pub identities: Vec<countersign_store::SsoIdentity>,
}

/// One account; anyone may read their own.
pub async fn get_account(app: &AppState, principal: &Principal, id: &str) -> ApiResult<AccountWithGroups> {
    let id = parse_id(id)?;
    if id != principal.account.id {
        principal.require(Permission::AccountsRead)?;
    }
    let account =
        app.store.account(&id).await?.ok_or_else(|| ApiError::not_found(format!("account {id} does not exist")))?;
    let group_ids = app.store.group_ids_of(&id).await?;
    let control = app.store.control_graph(&[id.as_str()], app.now()).await?;
    let controlled_by = control
        .control_set(&id)
        .into_iter()
        .filter(|(controller, _)| *controller != id)
        .map(|(controller, path)| Controller {
            username: control.username(&controller).to_owned(),
            how: path.iter().map(|edge| control.describe_edge(edge)).collect::<Vec<_>>().join("; "),
            id: controller,
        })
        .collect();
    let identities = app.store.sso_identities_of(&id).await?;
    Ok(AccountWithGroups { account, group_ids, controlled_by, identities })
}

/// R16: an account that controls another through its live credentials, and the chain that
/// makes it so ("alice's password was set by dave").
pub struct Controller {
    pub id: String,
    pub username: String,
    pub how: String,
}

/// The kind of an account, human when it no longer exists (a deleted requester stays a person).
pub async fn account_kind(app: &AppState, id: &str) -> ApiResult<AccountKind> {
    Ok(app.store.account(id).await?.map_or(AccountKind::Human, |a| a.kind))
}

/// A new account as an administrator fills it in.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    pub kind: String,
    pub password: Option<String>,
    pub email: Option<String>,
}

/// An e-mail address, or none when blank.
pub(crate) fn email(raw: Option<&str>) -> ApiResult<Option<String>> {
    match raw.map(str::trim).filter(|e| !e.is_empty()) {
        None => Ok(None),
        Some(e) if e.len() <= 254 && e.contains('@') && !e.contains(char::is_whitespace) => Ok(Some(e.to_owned())),
        Some(e) => Err(ApiError::validation(format!("'{e}' is not an e-mail address"))),
    }
}

/// What creating an account did, and a service account's bearer token, returned this once.
pub struct CreatedAccount {
    pub outcome: Outcome,
    pub token: Option<String>,
}

/// Creates an account (never protected: a new account is in no group).
pub async fn create_account(
    app: &AppState,
    principal: &Principal,
    input: &NewAccount,
    justification: Option<String>,
) -> ApiResult<CreatedAccount> {
    principal.require(Permission::AccountsWrite)?;
    let kind = AccountKind::parse(&input.kind)?;
    let username = validate::username(&input.username)?;
    let display_name = countersign_core::lookalike::account_display_name(&input.display_name)?;
    let secret = match (kind, input.password.as_deref().filter(|p| !p.is_empty())) {
        (AccountKind::Human, Some(password)) => {
            validate::password(password)?;
            Some(app.passwords.admit()?.hash(password.to_owned()).await?)
        }
        (AccountKind::Human, None) => return Err(ApiError::validation("a human account needs a password")),
        (AccountKind::Service, Some(_)) => {
            return Err(ApiError::validation("service accounts sign in with a token, not a password"))
        }
        (AccountKind::Service, None) => None,
    };
    if app.store.account_by_username(&username).await?.is_some() {
        return Err(ApiError::new(ErrorCode::Conflict, format!("the username '{username}' is taken")));
    }
    let after = ObjectState::Account(AccountState {
        username,
        display_name,
        email: email(input.email.as_deref())?,
        kind,
        enabled: true,
        password: None,
        sessions: None,
        passkey: None,
    });
    // The store writes the token with the account, in the same transaction, if it applies it.
    let token = (kind == AccountKind::Service).then(new_token);
    let service_token_hash = token.as_deref().map(sha256_hex);
    let proposal = Proposal { secret, service_token_hash, ..Proposal::create(ResourceType::Account, after) };
    let outcome = gate(app, principal, proposal, justification).await?;
    let token = match outcome {
        Outcome::Applied { .. } => token,
        _ => None,
    };
    Ok(CreatedAccount { outcome, token })
}

/// The fields of an account to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub enabled: Option<bool>,
}

/// Changes an account; any change to an approver (password, enabled state, e-mail address,
/// display name) is held (R9).
pub async fn update_account(
    app: &AppState,
    principal: &Principal,
    id: &str,
    patch: &AccountPatch,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::AccountsWrite)?;
    let before = current(app, ResourceType::Account, id).await?;
    let ObjectState::Account(account) = &before.state else { return Err(wrong_state(&before)) };
    let mut after = account.clone();
    if let Some(name) = &patch.display_name {
        after.display_name = countersign_core::lookalike::account_display_name(name)?;
    }
    if patch.email.is_some() {
        after.email = email(patch.email.as_deref())?;
    }
    if let Some(enabled) = patch.enabled {
        if !enabled {
            ensure_not_self(&principal.account.id, &before.id, SelfChange::Disable)?;
        }
        after.enabled = enabled;
    }
    let secret = match &patch.password {
        None => None,
        Some(password) => {
            if account.kind == AccountKind::Service {
                return Err(ApiError::validation("service accounts have no password"));
            }
            validate::password(password)?;
            after.password = Some(PasswordChange::Changed);
            Some(app.passwords.admit()?.hash(password.to_owned()).await?)
        }
    };
    let after = Some(ObjectState::Account(after));
    propose_with_secret(app, principal, ResourceType::Account, Operation::Update, before, after, secret, justification)
        .await
}

/// The live sessions of an account, for administrators.
pub async fn account_sessions(app: &AppState, principal: &Principal, id: &str) -> ApiResult<Vec<SessionInfo>> {
    principal.require(Permission::AccountsRead)?;
    let id = parse_id(id)?;
    app.store.account(&id).await?.ok_or_else(|| ApiError::not_found(format!("account {id} does not exist")))?;
    Ok(app.store.sessions_of(&id, None, app.now()).await?)
}

/// Ends every session of an account. A change to its credentials like any other: refused when
/// the caller lacks a permission the account holds (R19), and held for an approver (R9): it
/// only removes access, but an attacker could end an approver's sessions again and again to
/// keep them from reviewing while a change waits.
pub async fn end_account_sessions(
    app: &AppState,
    principal: &Principal,
    id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::AccountsWrite)?;
    let before = current(app, ResourceType::Account, id).await?;
    let ObjectState::Account(account) = &before.state else { return Err(wrong_state(&before)) };
    let after = Some(ObjectState::Account(AccountState { sessions: Some(SessionsChange::Ended), ..account.clone() }));
    propose(app, principal, ResourceType::Account, Operation::Update, before, after, justification).await
}

/// Deletes an account other than the caller's own.
pub async fn delete_account(
    app: &AppState,
    principal: &Principal,
    id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::AccountsWrite)?;
    let before = current(app, ResourceType::Account, id).await?;
    ensure_not_self(&principal.account.id, &before.id, SelfChange::Delete)?;
    propose(app, principal, ResourceType::Account, Operation::Delete, before, None, justification).await
}

// ---- groups ----

pub async fn list_groups(app: &AppState, principal: &Principal, page: &PageRequest) -> ApiResult<Paged<GroupRecord>> {
    principal.require(Permission::GroupsRead)?;
    let limit = limit_of(page.limit)?;
    let after = page.cursor.as_deref().map(parse_id).transpose()?;
    let items = app.store.groups(after.as_deref(), limit).await?;
    let next_cursor = next_cursor(&items, limit, |g| g.id.clone());
    Ok(Paged { items, next_cursor })
}

/// The first 500 groups, to name the groups a page shows by id (a role assignment's, an
/// account's): the page's own permission covers them.
pub async fn group_names(app: &AppState) -> ApiResult<Vec<GroupRecord>> {
    Ok(app.store.groups(None, 500).await?)
}

/// A group and its members.
pub struct GroupWithMembers {
    pub group: GroupRecord,
    pub members: Vec<AccountRecord>,
}

pub async fn get_group(app: &AppState, principal: &Principal, id: &str) -> ApiResult<GroupWithMembers> {
    principal.require(Permission::GroupsRead)?;
    let id = parse_id(id)?;
    let group = app.store.group(&id).await?.ok_or_else(|| ApiError::not_found(format!("group {id} does not exist")))?;
    let members = app.store.group_members(&id).await?;
    Ok(GroupWithMembers { group, members })
}

/// A new group's name and description.
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub display_name: String,
    pub description: Option<String>,
}

/// Creates an empty group (not protected: no policy or role assignment names it yet).
pub async fn create_group(
    app: &AppState,
    principal: &Principal,
    input: &NewGroup,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::GroupsWrite)?;
    let display_name = validate::display_name("displayName", &input.display_name)?;
    let description = validate::description(input.description.as_deref())?;
    let after = ObjectState::Group(GroupState { display_name, description, members: vec![] });
    gate(app, principal, Proposal::create(ResourceType::Group, after), justification).await
}

/// The fields of a group to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    pub display_name: Option<String>,
    pub description: Option<String>,
}

pub async fn update_group(
    app: &AppState,
    principal: &Principal,
    id: &str,
    patch: &GroupPatch,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::GroupsWrite)?;
    let before = current(app, ResourceType::Group, id).await?;
    let ObjectState::Group(group) = &before.state else { return Err(wrong_state(&before)) };
    let mut after = group.clone();
    if let Some(name) = &patch.display_name {
        after.display_name = validate::display_name("displayName", name)?;
    }
    if patch.description.is_some() {
        after.description = validate::description(patch.description.as_deref())?;
    }
    let after = Some(ObjectState::Group(after));
    propose(app, principal, ResourceType::Group, Operation::Update, before, after, justification).await
}

pub async fn delete_group(
    app: &AppState,
    principal: &Principal,
    id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::GroupsWrite)?;
    let before = current(app, ResourceType::Group, id).await?;
    propose(app, principal, ResourceType::Group, Operation::Delete, before, None, justification).await
}

/// Replaces a group's members; held for approver groups (R9), with a role policy for groups
/// that hold a role assignment, and for groups a protected object is assigned to (R18).
pub async fn set_members(
    app: &AppState,
    principal: &Principal,
    id: &str,
    member_ids: &[String],
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::GroupsWrite)?;
    let before = current(app, ResourceType::Group, id).await?;
    let ObjectState::Group(group) = &before.state else { return Err(wrong_state(&before)) };
    let mut members = Vec::new();
    for raw in member_ids {
        let account_id = parse_id(raw)?;
        let account = app
            .store
            .account(&account_id)
            .await?
            .ok_or_else(|| ApiError::validation(format!("account {account_id} does not exist")))?;
        members.push(GroupMember { id: account.id, username: account.username });
    }
    // Ordered as the store lists members, so an unchanged set is recognised as unchanged.
    members.sort_by(|a, b| (&a.username, &a.id).cmp(&(&b.username, &b.id)));
    members.dedup();
    let after = Some(ObjectState::Group(GroupState { members, ..group.clone() }));
    propose(app, principal, ResourceType::Group, Operation::Update, before, after, justification).await
}

// ---- roles ----

/// Every role, built-in ones first.
pub async fn list_roles(app: &AppState, principal: &Principal) -> ApiResult<Vec<RoleRecord>> {
    principal.require(Permission::RolesRead)?;
    Ok(app.store.roles().await?)
}

pub async fn get_role(app: &AppState, principal: &Principal, id: &str) -> ApiResult<RoleRecord> {
    principal.require(Permission::RolesRead)?;
    let id = parse_id(id)?;
    app.store.role(&id).await?.ok_or_else(|| ApiError::not_found(format!("role {id} does not exist")))
}

/// A custom role's name, description and permissions.
#[derive(Debug, Clone, Default)]
pub struct RoleInput {
    pub display_name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
}

fn role_state(input: &RoleInput) -> ApiResult<ObjectState> {
    let mut permissions = input.permissions.clone();
    if let Some(unknown) = permissions.iter().find(|p| p.parse::<Permission>().is_err()) {
        return Err(ApiError::validation(format!("'{unknown}' is not a permission")));
    }
    permissions.sort();
    permissions.dedup();
    Ok(ObjectState::Role(RoleState {
        display_name: validate::display_name("displayName", &input.display_name)?,
        description: validate::description(input.description.as_deref())?,
        permissions,
        built_in: false,
    }))
}

/// Creates a custom role; held when a `role` policy exists.
pub async fn create_role(
    app: &AppState,
    principal: &Principal,
    input: &RoleInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::RolesWrite)?;
    gate(app, principal, Proposal::create(ResourceType::Role, role_state(input)?), justification).await
}

async fn custom_role(app: &AppState, id: &str) -> ApiResult<Current> {
    let role = current(app, ResourceType::Role, id).await?;
    if matches!(&role.state, ObjectState::Role(state) if state.built_in) {
        return Err(ApiError::new(ErrorCode::BuiltInRole, "built-in roles cannot be changed; create a custom role"));
    }
    Ok(role)
}

pub async fn update_role(
    app: &AppState,
    principal: &Principal,
    id: &str,
    input: &RoleInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::RolesWrite)?;
    let before = custom_role(app, id).await?;
    let after = Some(role_state(input)?);
    propose(app, principal, ResourceType::Role, Operation::Update, before, after, justification).await
}

pub async fn delete_role(
    app: &AppState,
    principal: &Principal,
    id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::RolesWrite)?;
    let before = custom_role(app, id).await?;
    propose(app, principal, ResourceType::Role, Operation::Delete, before, None, justification).await
}

// ---- role assignments ----

pub async fn list_role_assignments(app: &AppState, principal: &Principal) -> ApiResult<Vec<RoleAssignmentRecord>> {
    principal.require(Permission::RolesRead)?;
    Ok(app.store.role_assignments().await?)
}

pub async fn get_role_assignment(app: &AppState, principal: &Principal, id: &str) -> ApiResult<RoleAssignmentRecord> {
    principal.require(Permission::RolesRead)?;
    let id = parse_id(id)?;
    app.store
        .role_assignment(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("role assignment {id} does not exist")))
}

/// A role given to groups; the name defaults to the role's.
#[derive(Debug, Clone, Default)]
pub struct AssignmentInput {
    pub role_id: String,
    pub group_ids: Vec<String>,
    pub display_name: Option<String>,
}

async fn assignment_state(app: &AppState, input: &AssignmentInput) -> ApiResult<ObjectState> {
    let role_id = parse_id(&input.role_id)?;
    let role = app
        .store
        .role(&role_id)
        .await?
        .ok_or_else(|| ApiError::validation(format!("role {role_id} does not exist")))?;
    let group_ids = ensure_groups(app, &input.group_ids).await?;
    if group_ids.is_empty() {
        return Err(ApiError::validation("groupIds must name at least one group"));
    }
    let display_name = match &input.display_name {
        Some(name) => validate::display_name("displayName", name)?,
        None => role.display_name,
    };
    Ok(ObjectState::RoleAssignment(RoleAssignmentState { display_name, role_id, group_ids }))
}

/// Assigns a role to groups; held when a `role` policy exists.
pub async fn create_role_assignment(
    app: &AppState,
    principal: &Principal,
    input: &AssignmentInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::RolesWrite)?;
    let after = assignment_state(app, input).await?;
    gate(app, principal, Proposal::create(ResourceType::RoleAssignment, after), justification).await
}

pub async fn update_role_assignment(
    app: &AppState,
    principal: &Principal,
    id: &str,
    input: &AssignmentInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::RolesWrite)?;
    let before = current(app, ResourceType::RoleAssignment, id).await?;
    let after = Some(assignment_state(app, input).await?);
    propose(app, principal, ResourceType::RoleAssignment, Operation::Update, before, after, justification).await
}

/// Removes a role assignment; held when a `role` policy exists.
pub async fn delete_role_assignment(
    app: &AppState,
    principal: &Principal,
    id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::RolesWrite)?;
    let before = current(app, ResourceType::RoleAssignment, id).await?;
    propose(app, principal, ResourceType::RoleAssignment, Operation::Delete, before, None, justification).await
}
