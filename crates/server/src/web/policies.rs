//! Access policies: the list, one policy with each approver's eligibility (R2, R14), and the
//! create wizard (*Basics*, *Approvers*, *Review + create*), which always ends in a request (R9).

use super::layout::csrf_field;
use super::{after_change, web, Page, WebResult, WebUser};
use crate::ops::policies::{create_policy, existing, proposed, update_policy, with_approvers, PolicyInput};
use crate::ops::Outcome;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum_extra::extract::Form;
use countersign_core::permission::Permission;
use countersign_core::policy::format_duration;
use countersign_core::profile::ProfileType;
use maud::{html, Markup};
use serde::Deserialize;

/// `GET /policies`
pub async fn list(State(app): State<AppState>, user: WebUser) -> WebResult {
    let policies = web(crate::ops::policies::list(&app, &user.principal).await)?;
    let groups = web(crate::ops::directory::group_names(&app).await)?;
    let group_name =
        |id: &String| groups.iter().find(|g| &g.id == id).map(|g| g.display_name.clone()).unwrap_or_else(|| id.clone());
    Ok(Page::new("Access policies", &user)
        .section("/policies")
        .content(html! {
            p class="muted" { "Each policy protects one profile type: changes to it are held until another eligible administrator approves them." }
            @if user.principal.has(Permission::AccessPoliciesCreate) { p { a class="button" id="create-policy" href="/policies/new" { "Create access policy" } } }
            div class="table-wrap" { table {
                thead { tr { th { "Name" } th { "Protects" } th { "Approver groups" } th { "Approvals" } th { "Completion" } th { "Lifetime" } th { "Step-up" } } }
                tbody { @for p in &policies { tr {
                    td { a href={ "/policies/" (p.id) } { (p.display_name) } }
                    td { (p.profile_type.display_name()) }
                    td { (p.approver_group_ids.iter().map(group_name).collect::<Vec<_>>().join(", ")) }
                    td { (p.required_approvals) }
                    td { (p.completion.as_str()) }
                    td { (format_duration(p.request_ttl_ms)) }
                    td { (p.step_up.as_str()) }
                } } }
            } }
        })
        .into_response())
}

/// `GET /policies/{id}`: the policy and every approver's eligibility with reasons.
pub async fn show(State(app): State<AppState>, user: WebUser, Path(id): Path<String>) -> WebResult {
    let found = web(with_approvers(&app, &user.principal, &id).await)?;
    let (policy, version, approvers) = (found.policy, found.version, found.approvers);
    let eligible = approvers.iter().filter(|a| a.eligible).count();
    Ok(Page::new(&policy.display_name, &user)
        .section("/policies")
        .content(html! {
            @if user.principal.has(Permission::AccessPoliciesUpdate) { p { a class="button" id="edit-policy" href={ "/policies/" (policy.id) "/edit" } { "Edit" } } }
            div class="card" { dl class="facts" {
                dt { "Protects" } dd { (policy.profile_type.display_name()) }
                dt { "Description" } dd { (policy.description) }
                dt { "Required approvals" } dd { (policy.required_approvals) }
                dt { "Completion" } dd { (if policy.completion.as_str() == "automatic" { "Applied when approved" } else { "The requester completes" }) }
                dt { "Request lifetime" } dd { (format_duration(policy.request_ttl_ms)) }
                dt { "Assigned groups" } dd id="assigned-groups" { (assigned_groups(policy.protect_assigned_groups)) }
                dt { "Step-up (R21)" } dd id="step-up" { (step_up_words(policy.step_up.as_str())) }
                dt { "Version" } dd { (version) }
            } }
            h2 { "Approvers" }
            @if eligible < policy.required_approvals as usize {
                p class="alert alert-error" role="alert" { "Fewer eligible approvers than required approvals: requests under this policy cannot be approved." }
            }
            div class="table-wrap" { table id="approvers" {
                thead { tr { th { "Account" } th { "Eligible" } th { "Why not" } } }
                tbody { @for a in &approvers { tr {
                    td { (a.display_name) " " span class="muted" { "(" (a.username) ")" } }
                    td { @if a.eligible { span class="badge status-completed" { "Eligible" } } @else { span class="badge status-rejected" { "Not eligible" } } }
                    td { (a.reasons.join("; ")) }
                } } }
            } }
        })
        .into_response())
}

/// What R21's setting means, in words.
fn step_up_words(step_up: &str) -> &'static str {
    if step_up == "none" {
        "None: a signed-in session or an API token can approve or reject (the behaviour before step-up)"
    } else {
        "Passkey: every approve or reject is confirmed with the approver's passkey over the change digest"
    }
}

/// What R18's switch means, in words.
fn assigned_groups(protected: bool) -> &'static str {
    if protected {
        "Membership changes of the groups these objects are assigned to need approval"
    } else {
        "Membership changes of the groups these objects are assigned to apply at once"
    }
}

/// The wizard's fields, carried from step to step in hidden inputs.
#[derive(Deserialize, Default, Clone)]
pub struct WizardForm {
    /// Set when editing an existing policy.
    #[serde(default)]
    policy_id: String,
    #[serde(default)]
    step: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    profile_type: String,
    #[serde(default)]
    approver_group_ids: Vec<String>,
    #[serde(default)]
    required_approvals: String,
    #[serde(default)]
    completion: String,
    #[serde(default)]
    request_ttl: String,
    /// R18's switch. The approvers step sends a hidden `false` and then, when ticked, the
    /// checkbox's `true`: the last value is what the box showed. Empty before that step.
    #[serde(default)]
    protect_assigned_groups: Vec<String>,
    /// R21: `passkey` or `none`; empty (a new policy): `passkey`.
    #[serde(default)]
    step_up: String,
    #[serde(default)]
    justification: String,
}

impl WizardForm {
    fn input(&self) -> PolicyInput {
        PolicyInput {
            display_name: self.display_name.clone(),
            description: Some(self.description.clone()),
            profile_type: self.profile_type.clone(),
            approver_group_ids: self.approver_group_ids.clone(),
            required_approvals: self.required_approvals.trim().parse().ok(),
            completion: Some(self.completion.clone()).filter(|c| !c.is_empty()),
            request_ttl: Some(self.request_ttl.trim().to_owned()).filter(|t| !t.is_empty()),
            protect_assigned_groups: Some(self.protects_assigned_groups()),
            step_up: Some(self.step_up.clone()).filter(|s| !s.is_empty()),
        }
    }

    /// Protected unless the box was cleared.
    fn protects_assigned_groups(&self) -> bool {
        self.protect_assigned_groups.last().map(String::as_str) != Some("false")
    }
}

fn carried(form: &WizardForm, except: &str) -> Markup {
    html! {
        @if !form.policy_id.is_empty() { input type="hidden" name="policy_id" value=(form.policy_id); }
        @if except != "basics" {
            input type="hidden" name="display_name" value=(form.display_name);
            input type="hidden" name="description" value=(form.description);
            input type="hidden" name="profile_type" value=(form.profile_type);
        }
        @if except != "approvers" {
            @for g in &form.approver_group_ids { input type="hidden" name="approver_group_ids" value=(g); }
            input type="hidden" name="required_approvals" value=(form.required_approvals);
            input type="hidden" name="completion" value=(form.completion);
            input type="hidden" name="request_ttl" value=(form.request_ttl);
            input type="hidden" name="protect_assigned_groups" value=(form.protects_assigned_groups());
            input type="hidden" name="step_up" value=(form.step_up);
        }
    }
}

fn steps(current: &str) -> Markup {
    html! { ol class="steps" {
        @for (key, label) in [("basics", "1. Basics"), ("approvers", "2. Approvers"), ("review", "3. Review + create")] {
            li aria-current=[(key == current).then_some("step")] { (label) }
        }
    } }
}

async fn wizard_page(
    app: &AppState,
    user: &WebUser,
    step: &str,
    form: &WizardForm,
    error: Option<String>,
) -> WebResult {
    let groups = web(crate::ops::directory::group_names(app).await)?;
    let title = if form.policy_id.is_empty() { "Create access policy" } else { "Edit access policy" };
    let mut response = Page::new(title, user)
        .section("/policies")
        .content(html! {
            (steps(step))
            @if let Some(error) = &error { p class="alert alert-error" role="alert" id="wizard-error" { (error) } }
            form class="card" method="post" action="/policies/new" {
                (csrf_field(&user.csrf))
                (carried(form, step))
                @match step {
                    "basics" => {
                        div class="field" { label for="display_name" { "Name" } input type="text" id="display_name" name="display_name" value=(form.display_name) required; }
                        div class="field" { label for="description" { "Description" } input type="text" id="description" name="description" value=(form.description); }
                        @if form.policy_id.is_empty() {
                            div class="field" {
                                label for="profile_type" { "Profile type" }
                                select id="profile_type" name="profile_type" {
                                    @for p in ProfileType::ALL { option value=(p.as_str()) selected[form.profile_type == p.as_str()] { (p.display_name()) } }
                                }
                            }
                        } @else {
                            input type="hidden" name="profile_type" value=(form.profile_type);
                            p { "Protects: " strong { (form.profile_type) } span class="muted" { " (a policy's profile type cannot change)" } }
                        }
                        button type="submit" name="step" value="approvers" id="next" { "Next: Approvers" }
                    }
                    "approvers" => {
                        fieldset class="checks field" {
                            legend { "Approver groups" }
                            @for g in &groups {
                                label { input type="checkbox" name="approver_group_ids" value=(g.id) checked[form.approver_group_ids.contains(&g.id)]; (g.display_name) " " span class="muted" { "(" (g.member_count) " members)" } }
                            }
                        }
                        div class="field" { label for="required_approvals" { "Required approvals" } input type="number" id="required_approvals" name="required_approvals" min="1" max="10" value=(if form.required_approvals.is_empty() { "1" } else { &form.required_approvals }); }
                        div class="field" {
                            label for="completion" { "Completion" }
                            select id="completion" name="completion" {
                                option value="requester" selected[form.completion != "automatic"] { "The requester completes an approved request" }
                                option value="automatic" selected[form.completion == "automatic"] { "Apply as soon as it is approved" }
                            }
                        }
                        div class="field" { label for="request_ttl" { "Request lifetime" } input type="text" id="request_ttl" name="request_ttl" value=(if form.request_ttl.is_empty() { "P30D" } else { &form.request_ttl }); p class="hint" { "ISO 8601 duration, such as P30D (30 days) or PT12H." } }
                        fieldset class="checks field" {
                            legend { "Assigned groups" }
                            input type="hidden" name="protect_assigned_groups" value="false";
                            label { input type="checkbox" id="protect_assigned_groups" name="protect_assigned_groups" value="true" checked[form.protects_assigned_groups()]; "Hold membership changes of groups that these objects are assigned to" }
                            p class="hint" { "Who is in such a group decides who the object reaches, so adding or removing members is a change to it." }
                        }
                        div class="field" {
                            label for="step_up" { "Step-up on every decision" }
                            select id="step_up" name="step_up" {
                                option value="passkey" selected[form.step_up != "none"] { "Passkey: approvers confirm each decision with their passkey" }
                                option value="none" selected[form.step_up == "none"] { "None: a session or API token is enough" }
                            }
                        }
                        div class="actions" {
                            button type="submit" name="step" value="basics" class="secondary" { "Back" }
                            button type="submit" name="step" value="review" id="next" { "Next: Review + create" }
                        }
                    }
                    _ => {
                        dl class="facts card" {
                            dt { "Name" } dd { (form.display_name) }
                            dt { "Profile type" } dd { (form.profile_type) }
                            dt { "Approver groups" } dd { (groups.iter().filter(|g| form.approver_group_ids.contains(&g.id)).map(|g| g.display_name.clone()).collect::<Vec<_>>().join(", ")) }
                            dt { "Required approvals" } dd { (form.required_approvals) }
                            dt { "Completion" } dd { (form.completion) }
                            dt { "Request lifetime" } dd { (form.request_ttl) }
                            dt { "Assigned groups" } dd { (assigned_groups(form.protects_assigned_groups())) }
                            dt { "Step-up" } dd { (step_up_words(if form.step_up.is_empty() { "passkey" } else { &form.step_up })) }
                        }
                        p class="alert alert-info" { "Access-policy changes are always held for approval: saving creates an approval request." }
                        div class="field" {
                            label for="justification" { "Business justification" }
                            textarea id="justification" name="justification" maxlength="1024" required { (form.justification) }
                        }
                        div class="actions" {
                            button type="submit" name="step" value="approvers" class="secondary" { "Back" }
                            button type="submit" name="step" value="create" id="create" { (if form.policy_id.is_empty() { "Create" } else { "Save" }) }
                        }
                    }
                }
            }
        })
        .into_response();
    if error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

async fn save_policy(app: &AppState, user: &WebUser, form: &WizardForm) -> crate::error::ApiResult<Outcome> {
    let justification = Some(form.justification.clone());
    if form.policy_id.is_empty() {
        create_policy(app, &user.principal, &form.input(), justification).await
    } else {
        update_policy(app, &user.principal, &form.policy_id, &form.input(), justification).await
    }
}

/// `GET /policies/{id}/edit`: the wizard, filled in with the policy.
pub async fn edit(State(app): State<AppState>, user: WebUser, Path(id): Path<String>) -> WebResult {
    web(user.principal.require(Permission::AccessPoliciesUpdate))?;
    let policy = web(existing(&app, &id).await)?.policy;
    let form = WizardForm {
        policy_id: policy.id.clone(),
        display_name: policy.display_name.clone(),
        description: policy.description.clone(),
        profile_type: policy.profile_type.as_str().to_owned(),
        approver_group_ids: policy.approver_group_ids.clone(),
        required_approvals: policy.required_approvals.to_string(),
        completion: policy.completion.as_str().to_owned(),
        request_ttl: format_duration(policy.request_ttl_ms),
        protect_assigned_groups: vec![policy.protect_assigned_groups.to_string()],
        step_up: policy.step_up.as_str().to_owned(),
        ..WizardForm::default()
    };
    wizard_page(&app, &user, "basics", &form, None).await
}

/// `GET /policies/new`
pub async fn wizard(State(app): State<AppState>, user: WebUser) -> WebResult {
    web(user.principal.require(Permission::AccessPoliciesCreate))?;
    wizard_page(&app, &user, "basics", &WizardForm::default(), None).await
}

/// `POST /policies/new`: moves between steps; `create` submits the policy as a request.
pub async fn wizard_step(State(app): State<AppState>, user: WebUser, Form(form): Form<WizardForm>) -> WebResult {
    web(user.principal.require(if form.policy_id.is_empty() {
        Permission::AccessPoliciesCreate
    } else {
        Permission::AccessPoliciesUpdate
    }))?;
    match form.step.as_str() {
        "basics" | "approvers" => wizard_page(&app, &user, &form.step, &form, None).await,
        "review" => match proposed(&app, &form.policy_id, &form.input()).await {
            Ok(_) => wizard_page(&app, &user, "review", &form, None).await,
            Err(e) => wizard_page(&app, &user, "approvers", &form, Some(e.detail)).await,
        },
        _ => match save_policy(&app, &user, &form).await {
            Ok(outcome) => {
                Ok(after_change(&user, outcome, "/policies", &format!("Save access policy “{}”", form.display_name)))
            }
            Err(e) if e.status().is_client_error() => wizard_page(&app, &user, "review", &form, Some(e.detail)).await,
            Err(e) => Err(e.into()),
        },
    }
}
