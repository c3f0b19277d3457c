//! Groups and members, roles and role assignments, accounts (humans and service accounts).
//! Changes go through the same operations as the API, so approver-group membership and
//! changes to approvers are held (R9), RBAC is held when a `role` policy exists, and the
//! membership of groups that protected objects are assigned to is held (R18).

use super::layout::{csrf_field, name_flag, when, who};
use super::{after_change, given, see_other, web, Page, WebResult, WebUser};
use crate::ops::directory::{
    self as ops, AccountPatch, AccountWithGroups, AssignmentInput, CreatedAccount, GroupWithMembers, NewAccount,
    NewGroup, RoleInput,
};
use crate::ops::{Outcome, PageRequest};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum_extra::extract::Form;
use countersign_core::permission::Permission;
use maud::html;
use serde::Deserialize;

/// The first 500 of a list: the admin center shows whole lists on one page.
fn up_to_500() -> PageRequest {
    PageRequest { cursor: None, limit: Some(500) }
}

/// `GET /groups`
pub async fn groups(State(app): State<AppState>, user: WebUser) -> WebResult {
    let groups = web(ops::list_groups(&app, &user.principal, &up_to_500()).await)?.items;
    Ok(Page::new("Groups", &user)
        .section("/groups")
        .content(html! {
            div class="table-wrap" { table {
                thead { tr { th { "Name" } th { "Description" } th { "Members" } } }
                tbody { @for g in &groups { tr {
                    td { a href={ "/groups/" (g.id) } { (g.display_name) } } td { (g.description) } td { (g.member_count) }
                } } }
            } }
            @if user.principal.has(Permission::GroupsWrite) {
                h2 { "Create group" }
                form class="card" method="post" action="/groups" {
                    (csrf_field(&user.csrf))
                    div class="field" { label for="group-name" { "Name" } input type="text" id="group-name" name="display_name" required; }
                    div class="field" { label for="group-description" { "Description" } input type="text" id="group-description" name="description"; }
                    button type="submit" { "Create group" }
                }
            }
        })
        .into_response())
}

#[derive(Deserialize, Default)]
pub struct GroupForm {
    #[serde(default)]
    display_name: String,
    description: Option<String>,
}

/// `POST /groups`
pub async fn create_group(State(app): State<AppState>, user: WebUser, Form(form): Form<GroupForm>) -> WebResult {
    let input = NewGroup { display_name: form.display_name.clone(), description: form.description };
    let outcome = web(ops::create_group(&app, &user.principal, &input, None).await)?;
    let target = match &outcome {
        Outcome::Applied { id, .. } => format!("/groups/{id}"),
        _ => "/groups".to_owned(),
    };
    Ok(after_change(&user, outcome, &target, &format!("Create group “{}”", form.display_name)))
}

/// `GET /groups/{id}`: the members, and the form to change them.
pub async fn group(State(app): State<AppState>, user: WebUser, Path(id): Path<String>) -> WebResult {
    let GroupWithMembers { group, members } = web(ops::get_group(&app, &user.principal, &id).await)?;
    let id = group.id.clone();
    let everyone = if user.principal.has(Permission::GroupsWrite) {
        web(ops::list_accounts(&app, &user.principal, &up_to_500()).await)?.items
    } else {
        vec![]
    };
    let is_member = |account_id: &str| members.iter().any(|m| m.id == account_id);
    let approver_of = web(crate::ops::policies::approved_by_group(&app, &id).await)?;
    Ok(Page::new(&group.display_name, &user)
        .section("/groups")
        .content(html! {
            @if !approver_of.is_empty() {
                p class="alert alert-info" { "Approver group of " (approver_of.join(", ")) ". Membership changes need approval." }
            }
            h2 { "Members" }
            @if members.is_empty() { p class="muted" { "No members." } } @else {
                table id="members" { thead { tr { th { "Account" } th { "Kind" } } } tbody {
                    @for m in &members { tr { td { (who(&m.display_name, &m.username)) (name_flag(m.display_name_flag.as_deref())) } td { (m.kind.as_str()) } } }
                } }
            }
            @if !everyone.is_empty() {
                h2 { "Change members" }
                form class="card" method="post" action={ "/groups/" (id) "/members" } {
                    (csrf_field(&user.csrf))
                    fieldset class="checks field" {
                        legend { "Members" }
                        @for a in &everyone {
                            label { input type="checkbox" name="members" value=(a.id) checked[is_member(&a.id)]; (who(&a.display_name, &a.username)) (name_flag(a.display_name_flag.as_deref())) }
                        }
                    }
                    div class="field" { label for="members-justification" { "Business justification" span class="muted" { " (needed when the change is protected)" } } textarea id="members-justification" name="justification" maxlength="1024" {} }
                    button type="submit" id="save-members" { "Save members" }
                }
            }
        })
        .into_response())
}

#[derive(Deserialize, Default)]
pub struct MembersForm {
    #[serde(default)]
    members: Vec<String>,
    justification: Option<String>,
}

/// `POST /groups/{id}/members`
pub async fn set_members(
    State(app): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<MembersForm>,
) -> WebResult {
    let outcome = web(ops::set_members(&app, &user.principal, &id, &form.members, given(&form.justification)).await)?;
    Ok(after_change(&user, outcome, &format!("/groups/{id}"), "Change group members"))
}

/// `GET /roles`: roles with their permissions, role assignments, and a form to assign a role.
pub async fn roles(State(app): State<AppState>, user: WebUser) -> WebResult {
    let roles = web(ops::list_roles(&app, &user.principal).await)?;
    let assignments = web(ops::list_role_assignments(&app, &user.principal).await)?;
    let groups = web(ops::group_names(&app).await)?;
    let role_name = |id: &str| roles.iter().find(|r| r.id == id).map(|r| r.display_name.clone()).unwrap_or_default();
    let group_name =
        |id: &String| groups.iter().find(|g| &g.id == id).map(|g| g.display_name.clone()).unwrap_or_else(|| id.clone());
    let can_write = user.principal.has(Permission::RolesWrite);
    Ok(Page::new("Roles and assignments", &user)
        .section("/roles")
        .content(html! {
            h2 { "Role assignments" }
            div class="table-wrap" { table id="assignments" {
                thead { tr { th { "Assignment" } th { "Role" } th { "Member groups" } @if can_write { th {} } } }
                tbody { @for a in &assignments { tr {
                    td { (a.display_name) } td { (role_name(&a.role_id)) }
                    td { (a.group_ids.iter().map(group_name).collect::<Vec<_>>().join(", ")) }
                    @if can_write { td { form method="post" action={ "/roles/assignments/" (a.id) "/delete" } {
                        (csrf_field(&user.csrf))
                        input type="hidden" name="justification" value="Removed in the admin center";
                        button type="submit" class="link" { "Remove" }
                    } } }
                } } }
            } }
            @if can_write {
                form class="card" method="post" action="/roles/assignments" {
                    (csrf_field(&user.csrf))
                    h3 { "Assign a role" }
                    div class="field" { label for="role" { "Role" } select id="role" name="role_id" { @for r in &roles { option value=(r.id) { (r.display_name) } } } }
                    fieldset class="checks field" { legend { "To groups" } @for g in &groups { label { input type="checkbox" name="group_ids" value=(g.id); (g.display_name) } } }
                    div class="field" { label for="assign-justification" { "Business justification" span class="muted" { " (needed when RBAC is protected)" } } textarea id="assign-justification" name="justification" maxlength="1024" {} }
                    button type="submit" { "Assign" }
                }
            }
            h2 { "Roles" }
            @if can_write {
                details class="card" {
                    summary { "Create a custom role" }
                    form method="post" action="/roles" {
                        (csrf_field(&user.csrf))
                        div class="field" { label for="role-name" { "Name" } input type="text" id="role-name" name="display_name" required; }
                        div class="field" { label for="role-description" { "Description" } input type="text" id="role-description" name="description"; }
                        fieldset class="checks field" { legend { "Permissions" }
                            @for p in Permission::ALL { label { input type="checkbox" name="permissions" value=(p); code { (p) } } }
                        }
                        div class="field" { label for="role-justification" { "Business justification" span class="muted" { " (needed when RBAC is protected)" } } textarea id="role-justification" name="justification" maxlength="1024" {} }
                        button type="submit" { "Create role" }
                    }
                }
            }
            div class="table-wrap" { table id="roles" {
                thead { tr { th { "Role" } th { "Permissions" } } }
                tbody { @for r in &roles { tr {
                    td { (r.display_name) @if r.built_in { " " span class="badge" { "built-in" } } p class="hint" { (r.description) } }
                    td { code { (r.permissions.join(", ")) } }
                } } }
            } }
        })
        .into_response())
}

#[derive(Deserialize, Default)]
pub struct RoleForm {
    #[serde(default)]
    display_name: String,
    description: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    justification: Option<String>,
}

/// `POST /roles`
pub async fn create_role(State(app): State<AppState>, user: WebUser, Form(form): Form<RoleForm>) -> WebResult {
    let input = RoleInput {
        display_name: form.display_name.clone(),
        description: given(&form.description),
        permissions: form.permissions,
    };
    let outcome = web(ops::create_role(&app, &user.principal, &input, given(&form.justification)).await)?;
    Ok(after_change(&user, outcome, "/roles", &format!("Create role “{}”", form.display_name)))
}

#[derive(Deserialize, Default)]
pub struct AssignmentForm {
    #[serde(default)]
    role_id: String,
    #[serde(default)]
    group_ids: Vec<String>,
    justification: Option<String>,
}

/// `POST /roles/assignments`
pub async fn assign_role(State(app): State<AppState>, user: WebUser, Form(form): Form<AssignmentForm>) -> WebResult {
    let input = AssignmentInput { role_id: form.role_id, group_ids: form.group_ids, display_name: None };
    let outcome = web(ops::create_role_assignment(&app, &user.principal, &input, given(&form.justification)).await)?;
    Ok(after_change(&user, outcome, "/roles", "Assign a role"))
}

#[derive(Deserialize, Default)]
pub struct JustifiedForm {
    justification: Option<String>,
}

/// `POST /roles/assignments/{id}/delete`
pub async fn remove_assignment(
    State(app): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<JustifiedForm>,
) -> WebResult {
    let outcome = web(ops::delete_role_assignment(&app, &user.principal, &id, given(&form.justification)).await)?;
    Ok(after_change(&user, outcome, "/roles", "Remove a role assignment"))
}

/// `GET /accounts`
pub async fn accounts(State(app): State<AppState>, user: WebUser) -> WebResult {
    let accounts = web(ops::list_accounts(&app, &user.principal, &up_to_500()).await)?.items;
    Ok(Page::new("Accounts", &user)
        .section("/accounts")
        .content(html! {
            div class="table-wrap" { table id="accounts" {
                thead { tr { th { "Account" } th { "Kind" } th { "E-mail" } th { "State" } th { "Created" } } }
                tbody { @for a in &accounts { tr {
                    td { a href={ "/accounts/" (a.id) } { (who(&a.display_name, &a.username)) } (name_flag(a.display_name_flag.as_deref())) }
                    td { (if a.kind.as_str() == "service" { "Service account" } else { "Person" }) }
                    td { (a.email.as_deref().unwrap_or("—")) }
                    td { @if a.enabled { span class="badge state-active" { "enabled" } } @else { span class="badge state-retired" { "disabled" } } }
                    td { (when(a.created_at)) }
                } } }
            } }
            @if user.principal.has(Permission::AccountsWrite) {
                h2 { "Create account" }
                form class="card" method="post" action="/accounts" {
                    (csrf_field(&user.csrf))
                    div class="grid-2" {
                        div class="field" { label for="username" { "Username" } input type="text" id="username" name="username" required; }
                        div class="field" { label for="display" { "Display name" } input type="text" id="display" name="display_name" required; }
                        div class="field" { label for="kind" { "Kind" } select id="kind" name="kind" { option value="human" { "Person (signs in with a password)" } option value="service" { "Service account (API token)" } } }
                        div class="field" { label for="email" { "E-mail" } input type="text" id="email" name="email"; }
                        div class="field" { label for="new-password" { "Password" } input type="password" id="new-password" name="password" autocomplete="new-password"; p class="hint" { "For people; at least 12 characters. They choose their own at first sign-in, but an account whose first password you set stays yours to Countersign: it can never approve your requests (R16). The server's operator adds people nobody controls with countersign accounts add." } }
                    }
                    button type="submit" { "Create account" }
                }
            }
        })
        .into_response())
}

#[derive(Deserialize, Default)]
pub struct AccountForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    kind: String,
    email: Option<String>,
    password: Option<String>,
}

/// `POST /accounts`: a service account's token is shown on this page only.
pub async fn create_account(State(app): State<AppState>, user: WebUser, Form(form): Form<AccountForm>) -> WebResult {
    let input = NewAccount {
        username: form.username.trim().to_owned(),
        display_name: form.display_name,
        kind: form.kind,
        password: given(&form.password),
        email: given(&form.email),
    };
    match web(ops::create_account(&app, &user.principal, &input, None).await)? {
        CreatedAccount { outcome: Outcome::Applied { id, .. }, token: Some(token) } => {
            Ok(Page::new("Service account created", &user)
                .section("/accounts")
                .content(html! {
                    div class="alert alert-info" role="status" {
                        p { "The service account’s API token. Copy it now: it will not be shown again." }
                        p class="token" id="new-token" { (token) }
                    }
                    p { a href={ "/accounts/" (id) } { "Go to the account" } }
                })
                .into_response())
        }
        CreatedAccount { outcome: Outcome::Applied { id, .. }, token: None } => {
            Ok(see_other(&format!("/accounts/{id}"), "The account was created."))
        }
        CreatedAccount { outcome, .. } => Ok(after_change(&user, outcome, "/accounts", "Create account")),
    }
}

/// `GET /accounts/{id}`: the account, its groups, and credential actions.
pub async fn account(State(app): State<AppState>, user: WebUser, Path(id): Path<String>) -> WebResult {
    let AccountWithGroups { account, group_ids, controlled_by, identities } =
        web(ops::get_account(&app, &user.principal, &id).await)?;
    let id = account.id.clone();
    let groups = web(ops::group_names(&app).await)?;
    let can_write = user.principal.has(Permission::AccountsWrite) && id != user.principal.account.id;
    let passkeys = web(crate::ops::passkeys::list_for(&app, &user.principal, &id).await)?;
    Ok(Page::new(&countersign_core::text::shown(&account.display_name), &user)
        .section("/accounts")
        .content(html! {
            @if let Some(reason) = &account.display_name_flag {
                p class="alert alert-error" role="alert" id="name-flag" { "This display name is flagged: " (reason) }
            }
            div class="card" { dl class="facts" {
                dt { "Username" } dd { (account.username) }
                dt { "Display name" } dd id="display-name" { (countersign_core::text::shown(&account.display_name)) (name_flag(account.display_name_flag.as_deref())) }
                dt { "Kind" } dd { (if account.kind.as_str() == "service" { "Service account" } else { "Person" }) }
                dt { "E-mail" } dd { (account.email.as_deref().unwrap_or("—")) }
                dt { "Controlled by" } dd id="controlled-by" {
                    @if controlled_by.is_empty() { "nobody else" } @else {
                        ul { @for c in &controlled_by { li { strong { (c.username) } ": " (c.how) } } }
                    }
                }
                @if account.password_change_required { dt { "Password" } dd { "set by someone else; to be replaced at first sign-in" } }
                @if !identities.is_empty() {
                    dt { "Single sign-on" } dd id="identities" {
                        ul { @for i in &identities { li { (i.provider_id) ": " (i.email.as_deref().unwrap_or(&i.subject)) " (subject " code { (i.subject) } ")" } } }
                    }
                }
                dt { "State" } dd id="account-state" { (if account.enabled { "enabled" } else { "disabled" }) }
                dt { "Groups" } dd { (groups.iter().filter(|g| group_ids.contains(&g.id)).map(|g| g.display_name.clone()).collect::<Vec<_>>().join(", ")) }
            } }
            @if account.kind.as_str() == "human" {
                h2 { "Passkeys" }
                @if passkeys.is_empty() { p class="muted" { "No passkeys." } } @else {
                    table id="account-passkeys" { thead { tr { th { "Name" } th { "Added" } th { "Registered by" } th { "Last used" } th {} } } tbody {
                        @for p in &passkeys { tr data-passkey=(p.id) {
                            td { (p.name) } td { (when(p.created_at)) }
                            td { (if p.created_by.as_deref().is_none_or(|by| by == account.id) { "the account itself" } else { "another account (it controls this one, R16)" }) }
                            td { (p.last_used_at.map(when).unwrap_or_else(|| "never".into())) }
                            td { @if can_write { form method="post" action={ "/accounts/" (id) "/passkeys/" (p.id) "/remove" } class="inline" {
                                (csrf_field(&user.csrf))
                                input type="text" name="justification" placeholder="Business justification" aria-label="Business justification";
                                button type="submit" class="link" { "Remove" }
                            } } }
                        } }
                    } }
                }
                @if can_write { p class="hint" { "Removing an approver's passkey needs approval (R9). A passkey for someone else is registered through the API (POST /api/v1/accounts/{id}/passkeys/register) by whoever holds the authenticator." } }
            }
            @if can_write {
                p class="hint" { "Changing the password, enabled state, e-mail address or display name of an approver needs approval." }
                div class="grid-2" {
                    form class="card" method="post" action={ "/accounts/" (id) "/enabled" } {
                        (csrf_field(&user.csrf))
                        input type="hidden" name="enabled" value=(if account.enabled { "false" } else { "true" });
                        div class="field" { label for="enabled-justification" { "Business justification" } textarea id="enabled-justification" name="justification" maxlength="1024" {} }
                        button type="submit" id="toggle-enabled" class=(if account.enabled { "danger" } else { "" }) { (if account.enabled { "Disable account" } else { "Enable account" }) }
                    }
                    @if account.kind.as_str() == "human" {
                        form class="card" method="post" action={ "/accounts/" (id) "/password" } {
                            (csrf_field(&user.csrf))
                            div class="field" { label for="reset-password" { "New password" } input type="password" id="reset-password" name="password" autocomplete="new-password" minlength="12" required; }
                            div class="field" { label for="reset-justification" { "Business justification" } textarea id="reset-justification" name="justification" maxlength="1024" {} }
                            button type="submit" id="reset" { "Reset password" }
                        }
                    }
                }
            }
        })
        .into_response())
}

#[derive(Deserialize, Default)]
pub struct CredentialForm {
    enabled: Option<String>,
    password: Option<String>,
    justification: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct JustificationForm {
    justification: Option<String>,
}

/// `POST /accounts/{id}/passkeys/{passkey}/remove`: through the gate (R9 for approvers, R19).
pub async fn remove_account_passkey(
    State(app): State<AppState>,
    user: WebUser,
    Path((id, passkey)): Path<(String, String)>,
    Form(form): Form<JustificationForm>,
) -> WebResult {
    let outcome =
        web(crate::ops::passkeys::remove_for(&app, &user.principal, &id, &passkey, given(&form.justification)).await)?;
    Ok(after_change(&user, outcome, &format!("/accounts/{id}"), "Remove passkey"))
}

/// `POST /accounts/{id}/enabled|password`
pub async fn change_account(
    State(app): State<AppState>,
    user: WebUser,
    Path((id, what)): Path<(String, String)>,
    Form(form): Form<CredentialForm>,
) -> WebResult {
    let patch = match what.as_str() {
        "enabled" => AccountPatch { enabled: Some(form.enabled.as_deref() == Some("true")), ..AccountPatch::default() },
        "password" => AccountPatch { password: form.password.clone(), ..AccountPatch::default() },
        _ => return Err(crate::error::ApiError::not_found("no such account action").into()),
    };
    let outcome = web(ops::update_account(&app, &user.principal, &id, &patch, given(&form.justification)).await)?;
    let what = if what == "enabled" { "Change enabled state" } else { "Reset password" };
    Ok(after_change(&user, outcome, &format!("/accounts/{id}"), what))
}
