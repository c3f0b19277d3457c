//! Accounts, groups and membership, roles and role assignments. Changes to approver groups and
//! approver accounts are held by the gate (R9); RBAC changes when a `role` policy exists.

use super::resources::{current, ensure_groups, propose, propose_outcome, JustificationBody, PageQuery};
use super::{gate, limit_of, next_cursor, object_json, Outcome, Page};
use crate::auth::{hash_password, new_token, sha256_hex};
use crate::error::{ApiError, ApiResult};
use crate::extract::{justification, parse_id, ApiJson, ApiQuery, OptionalJson, Principal};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use countersign_core::eligibility::AccountKind;
use countersign_core::permission;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::validate;
use countersign_store::Proposal;
use serde::Deserialize;
use serde_json::{json, Value};

// ---- accounts ----

/// `GET /api/v1/accounts`
pub async fn list_accounts(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page>> {
    principal.require("accounts.read")?;
    let limit = limit_of(q.limit)?;
    let after = q.cursor.as_deref().map(parse_id).transpose()?;
    let accounts = app.store.accounts(after.as_deref(), limit).await?;
    let cursor = next_cursor(&accounts, limit, |a| a.id.clone());
    Ok(Json(Page { value: accounts.iter().map(|a| json!(a)).collect(), next_cursor: cursor }))
}

/// `GET /api/v1/accounts/{id}`: anyone may read their own account.
pub async fn get_account(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    if id != principal.account.id {
        principal.require("accounts.read")?;
    }
    let account =
        app.store.account(&id).await?.ok_or_else(|| ApiError::not_found(format!("account {id} does not exist")))?;
    let mut body = json!(account);
    body["groupIds"] = json!(app.store.group_ids_of(&id).await?);
    Ok(Json(body))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewAccountBody {
    pub username: String,
    pub display_name: String,
    pub kind: String,
    pub password: Option<String>,
    pub email: Option<String>,
    pub justification: Option<String>,
}

pub(crate) fn email(raw: Option<&str>) -> ApiResult<Option<String>> {
    match raw.map(str::trim).filter(|e| !e.is_empty()) {
        None => Ok(None),
        Some(e) if e.len() <= 254 && e.contains('@') && !e.contains(char::is_whitespace) => Ok(Some(e.to_owned())),
        Some(e) => Err(ApiError::validation(format!("'{e}' is not an e-mail address"))),
    }
}

/// Creates an account (never protected: a new account is in no group). A service account's
/// bearer token is returned this once.
pub async fn create_account_op(
    app: &AppState,
    principal: &Principal,
    body: &NewAccountBody,
    justification: Option<String>,
) -> ApiResult<(Outcome, Option<String>)> {
    principal.require("accounts.write")?;
    let kind = AccountKind::parse(&body.kind)?;
    let username = validate::username(&body.username)?;
    let display_name = validate::display_name("displayName", &body.display_name)?;
    let secret = match (kind, body.password.as_deref().filter(|p| !p.is_empty())) {
        (AccountKind::Human, Some(password)) => {
            validate::password(password)?;
            Some(hash_password(password)?)
        }
        (AccountKind::Human, None) => return Err(ApiError::validation("a human account needs a password")),
        (AccountKind::Service, Some(_)) => {
            return Err(ApiError::validation("service accounts sign in with a token, not a password"))
        }
        (AccountKind::Service, None) => None,
    };
    if app.store.account_by_username(&username).await?.is_some() {
        return Err(ApiError::conflict("conflict", format!("the username '{username}' is taken")));
    }
    let after = json!({
        "username": username,
        "displayName": display_name,
        "email": email(body.email.as_deref())?,
        "kind": kind,
        "enabled": true,
    });
    // The store writes the token with the account, in the same transaction, if it applies it.
    let token = (kind == AccountKind::Service).then(new_token);
    let service_token_hash = token.as_deref().map(sha256_hex);
    let proposal = Proposal { secret, service_token_hash, ..Proposal::create(ResourceType::Account, &username, after) };
    let outcome = gate(app, principal, proposal, justification).await?;
    let token = match outcome {
        Outcome::Applied { .. } => token,
        _ => None,
    };
    Ok((outcome, token))
}

/// `POST /api/v1/accounts`: a service account gets its bearer token in the answer, once.
pub async fn create_account(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification.clone(), &headers);
    match create_account_op(&app, &principal, &body, justification).await? {
        (Outcome::Applied { id, resource_type, state, version, .. }, Some(token)) => {
            let mut body = object_json(&id, resource_type, state, version);
            body["token"] = json!(token);
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        (outcome, _) => outcome.respond(&app, &principal).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccountPatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub enabled: Option<bool>,
    pub justification: Option<String>,
}

/// Changes an account; a password or enabled change to an approver is held (R9).
pub async fn update_account_op(
    app: &AppState,
    principal: &Principal,
    id: &str,
    body: &AccountPatch,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require("accounts.write")?;
    let (id, before, version) = current(app, ResourceType::Account, id).await?;
    let mut after = before.clone();
    if let Some(name) = &body.display_name {
        after["displayName"] = json!(validate::display_name("displayName", name)?);
    }
    if body.email.is_some() {
        after["email"] = json!(email(body.email.as_deref())?);
    }
    if let Some(enabled) = body.enabled {
        if id == principal.account.id && !enabled {
            return Err(ApiError::validation("you cannot disable your own account"));
        }
        after["enabled"] = json!(enabled);
    }
    let Some(password) = &body.password else {
        return propose_outcome(
            app,
            principal,
            ResourceType::Account,
            Operation::Update,
            id,
            before,
            version,
            after,
            justification,
        )
        .await;
    };
    if before["kind"] == "service" {
        return Err(ApiError::validation("service accounts have no password"));
    }
    validate::password(password)?;
    after["password"] = json!("changed");
    let secret = Some(hash_password(password)?);
    let proposal =
        Proposal { secret, ..Proposal::change(ResourceType::Account, Operation::Update, id, before, version, after) };
    gate(app, principal, proposal, justification).await
}

/// `PATCH /api/v1/accounts/{id}`: a password or enabled change to an approver is held (R9).
pub async fn update_account(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AccountPatch>,
) -> ApiResult<Response> {
    let justification = justification(body.justification.clone(), &headers);
    update_account_op(&app, &principal, &id, &body, justification).await?.respond(&app, &principal).await
}

/// `DELETE /api/v1/accounts/{id}`
pub async fn delete_account(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    principal.require("accounts.write")?;
    let (id, before, version) = current(&app, ResourceType::Account, &id).await?;
    if id == principal.account.id {
        return Err(ApiError::validation("you cannot delete your own account"));
    }
    propose(
        &app,
        &principal,
        ResourceType::Account,
        Operation::Delete,
        id,
        before,
        version,
        Value::Null,
        justification(body.justification, &headers),
    )
    .await
}

// ---- groups ----

/// `GET /api/v1/groups`
pub async fn list_groups(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page>> {
    principal.require("groups.read")?;
    let limit = limit_of(q.limit)?;
    let after = q.cursor.as_deref().map(parse_id).transpose()?;
    let groups = app.store.groups(after.as_deref(), limit).await?;
    let cursor = next_cursor(&groups, limit, |g| g.id.clone());
    Ok(Json(Page { value: groups.iter().map(|g| json!(g)).collect(), next_cursor: cursor }))
}

/// `GET /api/v1/groups/{id}`: the group with its members.
pub async fn get_group(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require("groups.read")?;
    let id = parse_id(&id)?;
    let group = app.store.group(&id).await?.ok_or_else(|| ApiError::not_found(format!("group {id} does not exist")))?;
    let members = app.store.group_members(&id).await?;
    let mut body = json!(group);
    body["members"] = json!(members
        .iter()
        .map(|m| json!({"id": m.id, "username": m.username, "displayName": m.display_name, "kind": m.kind}))
        .collect::<Vec<_>>());
    Ok(Json(body))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupBody {
    pub display_name: String,
    pub description: Option<String>,
    pub justification: Option<String>,
}

/// Creates an empty group (not protected: no policy or role assignment names it yet).
pub async fn create_group_op(
    app: &AppState,
    principal: &Principal,
    body: &GroupBody,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require("groups.write")?;
    let display_name = validate::display_name("displayName", &body.display_name)?;
    let description = validate::description(body.description.as_deref())?;
    let after = json!({"displayName": display_name, "description": description, "members": []});
    gate(app, principal, Proposal::create(ResourceType::Group, &display_name, after), justification).await
}

/// `POST /api/v1/groups`
pub async fn create_group(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GroupBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification.clone(), &headers);
    create_group_op(&app, &principal, &body, justification).await?.respond(&app, &principal).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupPatch {
    display_name: Option<String>,
    description: Option<String>,
    justification: Option<String>,
}

/// `PATCH /api/v1/groups/{id}`
pub async fn update_group(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GroupPatch>,
) -> ApiResult<Response> {
    principal.require("groups.write")?;
    let (id, before, version) = current(&app, ResourceType::Group, &id).await?;
    let mut after = before.clone();
    if let Some(name) = &body.display_name {
        after["displayName"] = json!(validate::display_name("displayName", name)?);
    }
    if body.description.is_some() {
        after["description"] = json!(validate::description(body.description.as_deref())?);
    }
    propose(
        &app,
        &principal,
        ResourceType::Group,
        Operation::Update,
        id,
        before,
        version,
        after,
        justification(body.justification, &headers),
    )
    .await
}

/// `DELETE /api/v1/groups/{id}`
pub async fn delete_group(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    principal.require("groups.write")?;
    let (id, before, version) = current(&app, ResourceType::Group, &id).await?;
    propose(
        &app,
        &principal,
        ResourceType::Group,
        Operation::Delete,
        id,
        before,
        version,
        Value::Null,
        justification(body.justification, &headers),
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MembersBody {
    pub members: Vec<String>,
    pub justification: Option<String>,
}

/// Replaces a group's members; held for approver groups (R9) and, with a role policy, for
/// groups that hold a role assignment.
pub async fn set_members_op(
    app: &AppState,
    principal: &Principal,
    id: &str,
    member_ids: &[String],
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require("groups.write")?;
    let (id, before, version) = current(app, ResourceType::Group, id).await?;
    let mut members = Vec::new();
    for raw in member_ids {
        let account_id = parse_id(raw)?;
        let account = app
            .store
            .account(&account_id)
            .await?
            .ok_or_else(|| ApiError::validation(format!("account {account_id} does not exist")))?;
        members.push((account.username, account.id));
    }
    members.sort();
    members.dedup();
    let mut after = before.clone();
    after["members"] =
        json!(members.iter().map(|(username, id)| json!({"id": id, "username": username})).collect::<Vec<_>>());
    propose_outcome(app, principal, ResourceType::Group, Operation::Update, id, before, version, after, justification)
        .await
}

/// `PUT /api/v1/groups/{id}/members` `{members: [accountId…]}`: the full new membership.
pub async fn set_members(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MembersBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification.clone(), &headers);
    set_members_op(&app, &principal, &id, &body.members, justification).await?.respond(&app, &principal).await
}

// ---- roles ----

/// `GET /api/v1/roles`: built-in roles have `builtIn: true`.
pub async fn list_roles(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require("roles.read")?;
    Ok(Json(json!({"value": app.store.roles().await?, "nextCursor": null})))
}

/// `GET /api/v1/roles/{id}`
pub async fn get_role(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require("roles.read")?;
    let id = parse_id(&id)?;
    let role = app.store.role(&id).await?.ok_or_else(|| ApiError::not_found(format!("role {id} does not exist")))?;
    Ok(Json(json!(role)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleBody {
    pub display_name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub justification: Option<String>,
}

fn role_state(body: &RoleBody) -> ApiResult<Value> {
    let mut permissions = body.permissions.clone();
    if let Some(unknown) = permissions.iter().find(|p| !permission::is_known(p)) {
        return Err(ApiError::validation(format!("'{unknown}' is not a permission")));
    }
    permissions.sort();
    permissions.dedup();
    Ok(json!({
        "displayName": validate::display_name("displayName", &body.display_name)?,
        "description": validate::description(body.description.as_deref())?,
        "permissions": permissions,
        "builtIn": false,
    }))
}

/// Creates a custom role; held when a `role` policy exists.
pub async fn create_role_op(
    app: &AppState,
    principal: &Principal,
    body: &RoleBody,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require("roles.write")?;
    let after = role_state(body)?;
    let name = after["displayName"].as_str().unwrap_or_default().to_owned();
    gate(app, principal, Proposal::create(ResourceType::Role, &name, after), justification).await
}

/// `POST /api/v1/roles`
pub async fn create_role(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification.clone(), &headers);
    create_role_op(&app, &principal, &body, justification).await?.respond(&app, &principal).await
}

async fn custom_role(app: &AppState, id: &str) -> ApiResult<(String, Value, i64)> {
    let (id, before, version) = current(app, ResourceType::Role, id).await?;
    if before["builtIn"] == true {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "built_in_role",
            "built-in roles cannot be changed; create a custom role",
        ));
    }
    Ok((id, before, version))
}

/// `PUT /api/v1/roles/{id}`
pub async fn update_role(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<Response> {
    principal.require("roles.write")?;
    let (id, before, version) = custom_role(&app, &id).await?;
    let after = role_state(&body)?;
    propose(
        &app,
        &principal,
        ResourceType::Role,
        Operation::Update,
        id,
        before,
        version,
        after,
        justification(body.justification, &headers),
    )
    .await
}

/// `DELETE /api/v1/roles/{id}`
pub async fn delete_role(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    principal.require("roles.write")?;
    let (id, before, version) = custom_role(&app, &id).await?;
    propose(
        &app,
        &principal,
        ResourceType::Role,
        Operation::Delete,
        id,
        before,
        version,
        Value::Null,
        justification(body.justification, &headers),
    )
    .await
}

// ---- role assignments ----

/// `GET /api/v1/roleAssignments`
pub async fn list_role_assignments(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require("roles.read")?;
    Ok(Json(json!({"value": app.store.role_assignments().await?, "nextCursor": null})))
}

/// `GET /api/v1/roleAssignments/{id}`
pub async fn get_role_assignment(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require("roles.read")?;
    let id = parse_id(&id)?;
    let assignment = app
        .store
        .role_assignment(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("role assignment {id} does not exist")))?;
    Ok(Json(json!(assignment)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssignmentBody {
    pub role_id: String,
    pub group_ids: Vec<String>,
    pub display_name: Option<String>,
    pub justification: Option<String>,
}

async fn assignment_state(app: &AppState, body: &AssignmentBody) -> ApiResult<Value> {
    let role_id = parse_id(&body.role_id)?;
    let role = app
        .store
        .role(&role_id)
        .await?
        .ok_or_else(|| ApiError::validation(format!("role {role_id} does not exist")))?;
    let group_ids = ensure_groups(app, &body.group_ids).await?;
    if group_ids.is_empty() {
        return Err(ApiError::validation("groupIds must name at least one group"));
    }
    let display_name = match &body.display_name {
        Some(name) => validate::display_name("displayName", name)?,
        None => role.display_name,
    };
    Ok(json!({"displayName": display_name, "roleId": role_id, "groupIds": group_ids}))
}

/// Assigns a role to groups; held when a `role` policy exists.
pub async fn create_role_assignment_op(
    app: &AppState,
    principal: &Principal,
    body: &AssignmentBody,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require("roles.write")?;
    let after = assignment_state(app, body).await?;
    let name = after["displayName"].as_str().unwrap_or_default().to_owned();
    gate(app, principal, Proposal::create(ResourceType::RoleAssignment, &name, after), justification).await
}

/// `POST /api/v1/roleAssignments` `{roleId, groupIds}`
pub async fn create_role_assignment(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification.clone(), &headers);
    create_role_assignment_op(&app, &principal, &body, justification).await?.respond(&app, &principal).await
}

/// `PUT /api/v1/roleAssignments/{id}`
pub async fn update_role_assignment(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> ApiResult<Response> {
    principal.require("roles.write")?;
    let (id, before, version) = current(&app, ResourceType::RoleAssignment, &id).await?;
    let after = assignment_state(&app, &body).await?;
    propose(
        &app,
        &principal,
        ResourceType::RoleAssignment,
        Operation::Update,
        id,
        before,
        version,
        after,
        justification(body.justification, &headers),
    )
    .await
}

/// Removes a role assignment; held when a `role` policy exists.
pub async fn delete_role_assignment_op(
    app: &AppState,
    principal: &Principal,
    id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require("roles.write")?;
    let (id, before, version) = current(app, ResourceType::RoleAssignment, id).await?;
    let operation = Operation::Delete;
    propose_outcome(
        app,
        principal,
        ResourceType::RoleAssignment,
        operation,
        id,
        before,
        version,
        Value::Null,
        justification,
    )
    .await
}

/// `DELETE /api/v1/roleAssignments/{id}`
pub async fn delete_role_assignment(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification, &headers);
    delete_role_assignment_op(&app, &principal, &id, justification).await?.respond(&app, &principal).await
}
