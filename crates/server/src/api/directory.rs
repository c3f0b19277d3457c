//! Accounts, groups and membership, roles and role assignments. Changes to approver groups and
//! approver accounts are held by the gate (R9); RBAC changes when a `role` policy exists.

use super::resources::{current, ensure_groups, propose, JustificationBody, PageQuery};
use super::{limit_of, new_id, next_cursor, submit, Page};
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
use countersign_store::{Proposal, Submitted};
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewAccountBody {
    username: String,
    display_name: String,
    kind: String,
    password: Option<String>,
    email: Option<String>,
    justification: Option<String>,
}

fn email(raw: Option<&str>) -> ApiResult<Option<String>> {
    match raw.map(str::trim).filter(|e| !e.is_empty()) {
        None => Ok(None),
        Some(e) if e.len() <= 254 && e.contains('@') && !e.contains(char::is_whitespace) => Ok(Some(e.to_owned())),
        Some(e) => Err(ApiError::validation(format!("'{e}' is not an e-mail address"))),
    }
}

/// `POST /api/v1/accounts`: a service account gets its bearer token in the answer, once.
pub async fn create_account(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> ApiResult<Response> {
    principal.require("accounts.write")?;
    let kind = AccountKind::parse(&body.kind)?;
    let username = validate::username(&body.username)?;
    let display_name = validate::display_name("displayName", &body.display_name)?;
    let secret = match (kind, body.password.as_deref()) {
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
    let id = new_id();
    let proposal = Proposal {
        resource_type: ResourceType::Account,
        operation: Operation::Create,
        object_id: id.clone(),
        object_name: username.clone(),
        before: Value::Null,
        before_version: 0,
        after: json!({
            "username": username,
            "displayName": display_name,
            "email": email(body.email.as_deref())?,
            "kind": kind,
            "enabled": true,
        }),
        secret,
    };
    let justification = justification(body.justification, &headers);
    if kind == AccountKind::Human {
        return submit(&app, &principal, proposal, justification).await;
    }
    let submitted = app.store.submit(&principal.actor(), proposal, justification.as_deref(), app.now()).await?;
    let Submitted::Applied { mut state, version } = submitted else {
        return Err(ApiError::conflict("conflict", "creating an account is never held"));
    };
    let token = new_token();
    app.store
        .create_token(&principal.actor(), &id, "service account token", &sha256_hex(&token), None, app.now())
        .await?;
    state["id"] = json!(id);
    state["version"] = json!(version);
    state["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(state)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccountPatch {
    display_name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    enabled: Option<bool>,
    justification: Option<String>,
}

/// `PATCH /api/v1/accounts/{id}`: a password or enabled change to an approver is held (R9).
pub async fn update_account(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AccountPatch>,
) -> ApiResult<Response> {
    principal.require("accounts.write")?;
    let (id, before, version) = current(&app, ResourceType::Account, &id).await?;
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
    let secret = match &body.password {
        Some(password) => {
            if before["kind"] == "service" {
                return Err(ApiError::validation("service accounts have no password"));
            }
            validate::password(password)?;
            after["password"] = json!("changed");
            Some(hash_password(password)?)
        }
        None => None,
    };
    if secret.is_none() {
        return propose(
            &app,
            &principal,
            ResourceType::Account,
            Operation::Update,
            id,
            before,
            version,
            after,
            justification(body.justification, &headers),
        )
        .await;
    }
    let object_name = before["username"].as_str().unwrap_or_default().to_owned();
    let proposal = Proposal {
        resource_type: ResourceType::Account,
        operation: Operation::Update,
        object_id: id,
        object_name,
        before,
        before_version: version,
        after,
        secret,
    };
    submit(&app, &principal, proposal, justification(body.justification, &headers)).await
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupBody {
    display_name: String,
    description: Option<String>,
    justification: Option<String>,
}

/// `POST /api/v1/groups`
pub async fn create_group(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GroupBody>,
) -> ApiResult<Response> {
    principal.require("groups.write")?;
    let display_name = validate::display_name("displayName", &body.display_name)?;
    let proposal = Proposal::create(
        ResourceType::Group,
        &display_name,
        json!({"displayName": display_name, "description": validate::description(body.description.as_deref())?, "members": []}),
    );
    submit(&app, &principal, proposal, justification(body.justification, &headers)).await
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersBody {
    members: Vec<String>,
    justification: Option<String>,
}

/// `PUT /api/v1/groups/{id}/members` `{members: [accountId…]}`: the full new membership.
pub async fn set_members(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MembersBody>,
) -> ApiResult<Response> {
    principal.require("groups.write")?;
    let (id, before, version) = current(&app, ResourceType::Group, &id).await?;
    let mut members = Vec::new();
    for raw in &body.members {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleBody {
    display_name: String,
    description: Option<String>,
    permissions: Vec<String>,
    justification: Option<String>,
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

/// `POST /api/v1/roles`
pub async fn create_role(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<Response> {
    principal.require("roles.write")?;
    let after = role_state(&body)?;
    let name = after["displayName"].as_str().unwrap_or_default().to_owned();
    let proposal = Proposal::create(ResourceType::Role, &name, after);
    submit(&app, &principal, proposal, justification(body.justification, &headers)).await
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssignmentBody {
    role_id: String,
    group_ids: Vec<String>,
    display_name: Option<String>,
    justification: Option<String>,
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

/// `POST /api/v1/roleAssignments` `{roleId, groupIds}`
pub async fn create_role_assignment(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> ApiResult<Response> {
    principal.require("roles.write")?;
    let after = assignment_state(&app, &body).await?;
    let name = after["displayName"].as_str().unwrap_or_default().to_owned();
    let proposal = Proposal::create(ResourceType::RoleAssignment, &name, after);
    submit(&app, &principal, proposal, justification(body.justification, &headers)).await
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

/// `DELETE /api/v1/roleAssignments/{id}`
pub async fn delete_role_assignment(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    principal.require("roles.write")?;
    let (id, before, version) = current(&app, ResourceType::RoleAssignment, &id).await?;
    propose(
        &app,
        &principal,
        ResourceType::RoleAssignment,
        Operation::Delete,
        id,
        before,
        version,
        Value::Null,
        justification(body.justification, &headers),
    )
    .await
}
