//! `/api/v1/accounts`, `/groups`, `/roles` and `/roleAssignments`.

use super::answers::{
    Account, AccountWithGroups, Controller, Group, GroupWithMembers, Member, Request, Role, RoleAssignment, Session,
    SessionList,
};
use super::{object_json, respond, JustificationBody, Page, PageQuery};
use crate::error::ApiResult;
use crate::extract::{justification, ApiJson, ApiQuery, OptionalJson, Principal};
use crate::ops::directory::{
    self as ops, AccountPatch, AssignmentInput, CreatedAccount, GroupPatch, NewAccount, NewGroup, RoleInput,
};
use crate::ops::Outcome;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

// ---- accounts ----

/// `GET /api/v1/accounts`
#[utoipa::path(
    get,
    path = "/accounts",
    tag = "directory",
    summary = "List accounts",
    params(PageQuery),
    responses(
        (status = 200, description = "a page of accounts", body = Page<Account>)
    )
)]
pub async fn list_accounts(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Account>>> {
    let paged = ops::list_accounts(&app, &principal, &q.into()).await?;
    Ok(Json(Page::of(paged, |a| Account::from(a))))
}

/// `GET /api/v1/accounts/{id}`: anyone may read their own account.
#[utoipa::path(
    get,
    path = "/accounts/{id}",
    tag = "directory",
    summary = "One account, with its groups",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the account", body = AccountWithGroups)
    )
)]
pub async fn get_account(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<AccountWithGroups>> {
    let found = ops::get_account(&app, &principal, &id).await?;
    let controlled_by =
        found.controlled_by.into_iter().map(|c| Controller { id: c.id, username: c.username, how: c.how }).collect();
    let identities = found.identities.iter().map(super::answers::Identity::from).collect();
    Ok(Json(AccountWithGroups {
        account: Account::from(&found.account),
        group_ids: found.group_ids,
        controlled_by,
        identities,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewAccountBody {
    username: String,
    display_name: String,
    kind: String,
    password: Option<String>,
    email: Option<String>,
    justification: Option<String>,
}

/// `POST /api/v1/accounts`: a service account gets its bearer token in the answer, once.
#[utoipa::path(
    post,
    path = "/accounts",
    tag = "directory",
    summary = "Create a human or service account (a service account's token is shown once)",
    request_body = NewAccountBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 201, description = "created: the account (a service account with its token, once)", body = ref("#/components/schemas/CreatedServiceAccount")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn create_account(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification, &headers);
    let input = NewAccount {
        username: body.username,
        display_name: body.display_name,
        kind: body.kind,
        password: body.password,
        email: body.email,
    };
    match ops::create_account(&app, &principal, &input, justification).await? {
        CreatedAccount {
            outcome: Outcome::Applied { id, resource_type, state: Some(state), version, .. },
            token: Some(token),
        } => {
            let mut body = object_json(&id, resource_type, &state, version);
            body["token"] = json!(token);
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        CreatedAccount { outcome, .. } => respond(&app, &principal, outcome).await,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccountPatchBody {
    display_name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    enabled: Option<bool>,
    justification: Option<String>,
}

/// `PATCH /api/v1/accounts/{id}`: any change to an approver is held (R9).
#[utoipa::path(
    patch,
    path = "/accounts/{id}",
    tag = "directory",
    summary = "Change an account; changes to approvers (password, enabled, e-mail, display name) are held (R9)",
    params(("id" = String, Path, description = "the object's id")),
    request_body = AccountPatchBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn update_account(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AccountPatchBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification, &headers);
    let patch = AccountPatch {
        display_name: body.display_name,
        email: body.email,
        password: body.password,
        enabled: body.enabled,
    };
    let outcome = ops::update_account(&app, &principal, &id, &patch, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `DELETE /api/v1/accounts/{id}`
#[utoipa::path(
    delete,
    path = "/accounts/{id}",
    tag = "directory",
    summary = "Delete an account; held if it is an approver (R9)",
    params(("id" = String, Path, description = "the object's id")),
    request_body = Option<JustificationBody>,
    responses(
        (status = 204, description = "deleted"),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn delete_account(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let outcome = ops::delete_account(&app, &principal, &id, justification(body.justification, &headers)).await?;
    respond(&app, &principal, outcome).await
}

/// `GET /api/v1/accounts/{id}/sessions`
#[utoipa::path(
    get,
    path = "/accounts/{id}/sessions",
    tag = "directory",
    summary = "An account's live sessions",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "its sessions", body = SessionList)
    )
)]
pub async fn list_account_sessions(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionList>> {
    let sessions = ops::account_sessions(&app, &principal, &id).await?;
    Ok(Json(SessionList { value: sessions.iter().map(Session::from).collect() }))
}

/// `DELETE /api/v1/accounts/{id}/sessions`: ends them all; held if it is an approver (R9).
#[utoipa::path(
    delete,
    path = "/accounts/{id}/sessions",
    tag = "directory",
    summary = "End every session of an account; held if it is an approver (R9)",
    params(("id" = String, Path, description = "the object's id")),
    request_body = Option<JustificationBody>,
    responses(
        (status = 204, description = "ended"),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn end_account_sessions(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification, &headers);
    match ops::end_account_sessions(&app, &principal, &id, justification).await? {
        Outcome::Applied { .. } | Outcome::Unchanged { .. } => Ok(StatusCode::NO_CONTENT.into_response()),
        held => respond(&app, &principal, held).await,
    }
}

// ---- groups ----

/// `GET /api/v1/groups`
#[utoipa::path(
    get,
    path = "/groups",
    tag = "directory",
    summary = "List groups",
    params(PageQuery),
    responses(
        (status = 200, description = "a page of groups", body = Page<Group>)
    )
)]
pub async fn list_groups(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Group>>> {
    let paged = ops::list_groups(&app, &principal, &q.into()).await?;
    Ok(Json(Page::of(paged, |g| Group::from(g))))
}

/// `GET /api/v1/groups/{id}`: the group with its members.
#[utoipa::path(
    get,
    path = "/groups/{id}",
    tag = "directory",
    summary = "One group with its members",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the group", body = GroupWithMembers)
    )
)]
pub async fn get_group(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<GroupWithMembers>> {
    let found = ops::get_group(&app, &principal, &id).await?;
    let members = found.members.iter().map(Member::from).collect();
    Ok(Json(GroupWithMembers { group: Group::from(&found.group), members }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupBody {
    display_name: String,
    description: Option<String>,
    justification: Option<String>,
}

/// `POST /api/v1/groups`
#[utoipa::path(
    post,
    path = "/groups",
    tag = "directory",
    summary = "Create a group",
    request_body = GroupBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 201, description = "created: the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn create_group(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GroupBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification, &headers);
    let input = NewGroup { display_name: body.display_name, description: body.description };
    let outcome = ops::create_group(&app, &principal, &input, justification).await?;
    respond(&app, &principal, outcome).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupPatchBody {
    display_name: Option<String>,
    description: Option<String>,
    justification: Option<String>,
}

/// `PATCH /api/v1/groups/{id}`
#[utoipa::path(
    patch,
    path = "/groups/{id}",
    tag = "directory",
    summary = "Rename or describe a group",
    params(("id" = String, Path, description = "the object's id")),
    request_body = GroupPatchBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn update_group(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GroupPatchBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification, &headers);
    let patch = GroupPatch { display_name: body.display_name, description: body.description };
    let outcome = ops::update_group(&app, &principal, &id, &patch, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `DELETE /api/v1/groups/{id}`
#[utoipa::path(
    delete,
    path = "/groups/{id}",
    tag = "directory",
    summary = "Delete a group",
    params(("id" = String, Path, description = "the object's id")),
    request_body = Option<JustificationBody>,
    responses(
        (status = 204, description = "deleted"),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn delete_group(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let outcome = ops::delete_group(&app, &principal, &id, justification(body.justification, &headers)).await?;
    respond(&app, &principal, outcome).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersBody {
    members: Vec<String>,
    justification: Option<String>,
}

/// `PUT /api/v1/groups/{id}/members` `{members: [accountId…]}`: the full new membership.
#[utoipa::path(
    put,
    path = "/groups/{id}/members",
    tag = "directory",
    summary = "Replace a group's members; held for approver groups (R9), role member groups and groups protected objects are assigned to (R18)",
    params(("id" = String, Path, description = "the object's id")),
    request_body = MembersBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn set_members(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MembersBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification, &headers);
    let outcome = ops::set_members(&app, &principal, &id, &body.members, justification).await?;
    respond(&app, &principal, outcome).await
}

// ---- roles ----

/// `GET /api/v1/roles`: built-in roles have `builtIn: true`.
#[utoipa::path(
    get,
    path = "/roles",
    tag = "rbac",
    summary = "List roles (built-in ones have builtIn: true)",
    responses(
        (status = 200, description = "every role", body = Page<Role>)
    )
)]
pub async fn list_roles(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<Page<Role>>> {
    let roles = ops::list_roles(&app, &principal).await?;
    Ok(Json(Page::all(&roles, |r| Role::from(r))))
}

/// `GET /api/v1/roles/{id}`
#[utoipa::path(
    get,
    path = "/roles/{id}",
    tag = "rbac",
    summary = "One role",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the role", body = Role)
    )
)]
pub async fn get_role(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Role>> {
    Ok(Json(Role::from(&ops::get_role(&app, &principal, &id).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleBody {
    display_name: String,
    description: Option<String>,
    permissions: Vec<String>,
    justification: Option<String>,
}

impl RoleBody {
    fn split(self, headers: &HeaderMap) -> (RoleInput, Option<String>) {
        let input =
            RoleInput { display_name: self.display_name, description: self.description, permissions: self.permissions };
        (input, justification(self.justification, headers))
    }
}

/// `POST /api/v1/roles`
#[utoipa::path(
    post,
    path = "/roles",
    tag = "rbac",
    summary = "Create a custom role",
    request_body = RoleBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 201, description = "created: the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn create_role(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<Response> {
    let (input, justification) = body.split(&headers);
    let outcome = ops::create_role(&app, &principal, &input, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `PUT /api/v1/roles/{id}`
#[utoipa::path(
    put,
    path = "/roles/{id}",
    tag = "rbac",
    summary = "Change a custom role",
    params(("id" = String, Path, description = "the object's id")),
    request_body = RoleBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn update_role(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<Response> {
    let (input, justification) = body.split(&headers);
    let outcome = ops::update_role(&app, &principal, &id, &input, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `DELETE /api/v1/roles/{id}`
#[utoipa::path(
    delete,
    path = "/roles/{id}",
    tag = "rbac",
    summary = "Delete a custom role",
    params(("id" = String, Path, description = "the object's id")),
    request_body = Option<JustificationBody>,
    responses(
        (status = 204, description = "deleted"),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn delete_role(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let outcome = ops::delete_role(&app, &principal, &id, justification(body.justification, &headers)).await?;
    respond(&app, &principal, outcome).await
}

// ---- role assignments ----

/// `GET /api/v1/roleAssignments`
#[utoipa::path(
    get,
    path = "/roleAssignments",
    tag = "rbac",
    summary = "List role assignments",
    responses(
        (status = 200, description = "every role assignment", body = Page<RoleAssignment>)
    )
)]
pub async fn list_role_assignments(
    State(app): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Page<RoleAssignment>>> {
    let assignments = ops::list_role_assignments(&app, &principal).await?;
    Ok(Json(Page::all(&assignments, |a| RoleAssignment::from(a))))
}

/// `GET /api/v1/roleAssignments/{id}`
#[utoipa::path(
    get,
    path = "/roleAssignments/{id}",
    tag = "rbac",
    summary = "One role assignment",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the role assignment", body = RoleAssignment)
    )
)]
pub async fn get_role_assignment(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<RoleAssignment>> {
    Ok(Json(RoleAssignment::from(&ops::get_role_assignment(&app, &principal, &id).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssignmentBody {
    role_id: String,
    group_ids: Vec<String>,
    display_name: Option<String>,
    justification: Option<String>,
}

impl AssignmentBody {
    fn split(self, headers: &HeaderMap) -> (AssignmentInput, Option<String>) {
        let input =
            AssignmentInput { role_id: self.role_id, group_ids: self.group_ids, display_name: self.display_name };
        (input, justification(self.justification, headers))
    }
}

/// `POST /api/v1/roleAssignments` `{roleId, groupIds}`
#[utoipa::path(
    post,
    path = "/roleAssignments",
    tag = "rbac",
    summary = "Assign a role to groups",
    request_body = AssignmentBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 201, description = "created: the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn create_role_assignment(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> ApiResult<Response> {
    let (input, justification) = body.split(&headers);
    let outcome = ops::create_role_assignment(&app, &principal, &input, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `PUT /api/v1/roleAssignments/{id}`
#[utoipa::path(
    put,
    path = "/roleAssignments/{id}",
    tag = "rbac",
    summary = "Change a role assignment",
    params(("id" = String, Path, description = "the object's id")),
    request_body = AssignmentBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn update_role_assignment(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> ApiResult<Response> {
    let (input, justification) = body.split(&headers);
    let outcome = ops::update_role_assignment(&app, &principal, &id, &input, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `DELETE /api/v1/roleAssignments/{id}`
#[utoipa::path(
    delete,
    path = "/roleAssignments/{id}",
    tag = "rbac",
    summary = "Delete a role assignment",
    params(("id" = String, Path, description = "the object's id")),
    request_body = Option<JustificationBody>,
    responses(
        (status = 204, description = "deleted"),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn delete_role_assignment(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification, &headers);
    let outcome = ops::delete_role_assignment(&app, &principal, &id, justification).await?;
    respond(&app, &principal, outcome).await
}
