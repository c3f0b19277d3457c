//! Apps, scripts, compliance and configuration policies, device categories, and devices:
//! list, view, create and edit (ending on *Review + save*), assign, delete, device actions.

use super::layout::{csrf_field, pretty, when};
use super::requests::request_table;
use super::{after_change, web, Page, WebError, WebResult, WebUser};
use crate::ops::resources::{
    act_on_device, assign_document, assigned_groups, create_document, delete_document, device_operation, document_type,
    page_of, proposed_document, readable, update_document, DocumentInput,
};
use crate::ops::{wrong_state, Current, Outcome, PageRequest, Paged};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum_extra::extract::Form;
use countersign_core::diff::{diff, render as render_diff, Names};
use countersign_core::error::ErrorCode;
use countersign_core::limits::{self, Unread};
use countersign_core::permission::write_permission;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::state::{DeviceLifecycle, ObjectState};
use countersign_core::{validate, DomainError};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

fn plural(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::App => "Apps",
        ResourceType::Script => "Scripts",
        ResourceType::CompliancePolicy => "Compliance policies",
        ResourceType::ConfigurationPolicy => "Configuration policies",
        ResourceType::DeviceCategory => "Device categories",
        _ => "Resources",
    }
}

fn singular(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::App => "app",
        ResourceType::Script => "script",
        ResourceType::CompliancePolicy => "compliance policy",
        ResourceType::ConfigurationPolicy => "configuration policy",
        ResourceType::DeviceCategory => "device category",
        _ => "resource",
    }
}

/// Whether the gate would hold this operation now (shown before saving).
async fn is_protected(app: &AppState, resource_type: ResourceType, operation: Operation) -> WebResult<bool> {
    web(crate::ops::policies::protects(app, resource_type, operation).await)
}

#[derive(Deserialize, Default)]
pub struct ListParams {
    cursor: Option<String>,
}

/// `GET /resources/{type}`
pub async fn list(
    State(app): State<AppState>,
    user: WebUser,
    Path(raw_type): Path<String>,
    Query(q): Query<ListParams>,
) -> WebResult {
    let resource_type = web(document_type(&raw_type))?;
    let page = PageRequest { cursor: q.cursor, limit: Some(50) };
    let Paged { items: records, next_cursor: next } = web(page_of(&app, &user.principal, resource_type, &page).await)?;
    let can_create = user.principal.has(write_permission(resource_type, Operation::Create));
    let base = format!("/resources/{resource_type}");
    Ok(Page::new(plural(resource_type), &user)
        .section(section_of(resource_type))
        .content(html! {
            @if can_create { p { a class="button" id="create" href={ (base) "/new" } { "Create " (singular(resource_type)) } } }
            @if records.is_empty() {
                p class="card muted" { "None yet." }
            } @else {
                div class="table-wrap" { table {
                    thead { tr { th { "Name" } th { "Description" } th { "Version" } th { "Last modified" } } }
                    tbody { @for r in &records { tr {
                        td { a href={ (base) "/" (r.id) } { (r.state.name()) } }
                        td { (DocumentParts::of(&r.state).description) }
                        td { (r.version) }
                        td { (when(r.updated_at)) }
                    } } }
                } }
            }
            @if let Some(cursor) = next { p { a class="button secondary" href={ (base) "?cursor=" (cursor) } { "Next page" } } }
        })
        .into_response())
}

/// The navigation entry of a resource type.
fn section_of(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::App => "/resources/app",
        ResourceType::Script => "/resources/script",
        ResourceType::CompliancePolicy => "/resources/compliancePolicy",
        ResourceType::ConfigurationPolicy => "/resources/configurationPolicy",
        ResourceType::DeviceCategory => "/resources/deviceCategory",
        _ => "/devices",
    }
}

async fn history(app: &AppState, resource_type: ResourceType, id: &str) -> WebResult<Markup> {
    let records = web(crate::ops::requests::history_of(app, resource_type, id).await)?;
    Ok(request_table(app, &records, "No approval requests yet."))
}

/// `GET /resources/{type}/{id}`
pub async fn show(
    State(app): State<AppState>,
    user: WebUser,
    Path((raw_type, id)): Path<(String, String)>,
) -> WebResult {
    let resource_type = web(document_type(&raw_type))?;
    let Current { id, state, version } = web(readable(&app, &user.principal, resource_type, &id).await)?;
    let base = format!("/resources/{resource_type}/{id}");
    let groups = web(crate::ops::directory::group_names(&app).await)?;
    let document = DocumentParts::of(&state);
    let assigned = assigned_groups(&state);
    let p = &user.principal;
    Ok(Page::new(state.name(), &user)
        .section(section_of(resource_type))
        .content(html! {
            div class="card" {
                dl class="facts" {
                    dt { "Type" } dd { (singular(resource_type)) }
                    dt { "Description" } dd { (document.description) }
                    dt { "Version" } dd { (version) }
                    @if resource_type.is_assignable() {
                        dt { "Assigned to" } dd id="assigned" {
                            @if assigned.is_empty() { span class="muted" { "No groups" } }
                            @for g in groups.iter().filter(|g| assigned.contains(&g.id)) { span class="badge" { (g.display_name) } " " }
                        }
                    }
                }
            }
            h2 { "Document" }
            pre id="document" { (pretty(&document.settings)) }
            @if p.has(write_permission(resource_type, Operation::Update)) {
                p { a class="button" id="edit" href={ (base) "/edit" } { "Edit" } }
            }
            @if resource_type.is_assignable() && p.has(write_permission(resource_type, Operation::Assign)) {
                h2 { "Assignments" }
                form class="card" method="post" action={ (base) "/assign" } {
                    (csrf_field(&user.csrf))
                    fieldset class="checks" {
                        legend { "Groups this " (singular(resource_type)) " is assigned to" }
                        @for g in &groups {
                            label { input type="checkbox" name="groupIds" value=(g.id) checked[assigned.contains(&g.id)]; (g.display_name) }
                        }
                    }
                    (justification_field("assign-justification", None, "", false))
                    button type="submit" class="secondary" { "Save assignments" }
                }
            }
            @if p.has(write_permission(resource_type, Operation::Delete)) {
                h2 { "Delete" }
                form class="card" method="post" action={ (base) "/delete" } {
                    (csrf_field(&user.csrf))
                    (justification_field("delete-justification", None, "", false))
                    button type="submit" class="danger" id="delete" { "Delete " (singular(resource_type)) }
                }
            }
            h2 { "Approval requests for this " (singular(resource_type)) }
            (history(&app, resource_type, &id).await?)
        })
        .into_response())
}

fn justification_field(id: &str, error: Option<&str>, value: &str, required: bool) -> Markup {
    html! {
        div class={ "field" @if error.is_some() { " invalid" } } {
            label for=(id) { "Business justification" @if !required { span class="muted" { " (needed when the change is protected)" } } }
            textarea id=(id) name="justification" maxlength="1024" required[required]
                aria-describedby=[error.map(|_| format!("{id}-error"))] { (value) }
            @if let Some(error) = error { p class="field-error" id={ (id) "-error" } { (error) } }
        }
    }
}

/// The edit form's values and their errors, kept when the form comes back.
#[derive(Deserialize, Default, Clone)]
pub struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    document: String,
    justification: Option<String>,
}

#[derive(Default)]
struct Errors {
    name: Option<String>,
    description: Option<String>,
    document: Option<String>,
}

impl Errors {
    fn any(&self) -> bool {
        self.name.is_some() || self.description.is_some() || self.document.is_some()
    }
}

fn text_field(id: &str, label: &str, value: &str, error: Option<&str>, textarea: bool, hint: Option<&str>) -> Markup {
    html! {
        div class={ "field" @if error.is_some() { " invalid" } } {
            label for=(id) { (label) }
            @if textarea {
                textarea id=(id) name=(id) rows="12" aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| format!("{id}-error"))] { (value) }
            } @else {
                input type="text" id=(id) name=(id) value=(value) aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| format!("{id}-error"))];
            }
            @if let Some(hint) = hint { p class="hint" { (hint) } }
            @if let Some(error) = error { p class="field-error" id={ (id) "-error" } role="alert" { (error) } }
        }
    }
}

fn edit_fields(user: &WebUser, action: &str, form: &EditForm, errors: &Errors) -> Markup {
    html! {
        ol class="steps" { li aria-current="step" { "1. Edit" } li { "2. Review + save" } }
        form class="card" method="post" action=(action) novalidate {
            (csrf_field(&user.csrf))
            (text_field("name", "Name", &form.name, errors.name.as_deref(), false, None))
            (text_field("description", "Description", &form.description, errors.description.as_deref(), false, None))
            (text_field("document", "Document (JSON)", &form.document, errors.document.as_deref(), true, Some("The settings, as a JSON object.")))
            button type="submit" id="review" { "Review" }
        }
    }
}

/// Parses and validates the form; on error, the messages for each field.
fn check(form: &EditForm) -> Result<DocumentInput, Errors> {
    let mut errors = Errors::default();
    if let Err(e) = validate::display_name("name", &form.name) {
        errors.name = Some(e.to_string().replace("name ", "The name "));
    }
    if let Err(e) = validate::description(Some(&form.description)) {
        errors.description = Some(e.to_string());
    }
    let document = match limits::parse(form.document.as_bytes()) {
        Ok(v) if v.is_object() => Some(v),
        Ok(_) => {
            errors.document = Some("The document must be a JSON object, such as {\"version\": \"1.0\"}.".into());
            None
        }
        Err(Unread::Malformed(e)) => {
            errors.document = Some(format!("This is not valid JSON: {e}."));
            None
        }
        Err(Unread::Limit(limit)) => {
            errors.document = Some(format!("{}.", DomainError::from(limit)));
            None
        }
    };
    match document {
        Some(document) if !errors.any() => {
            Ok(DocumentInput { name: form.name.clone(), description: Some(form.description.clone()), document })
        }
        _ => Err(errors),
    }
}

fn form_page(
    user: &WebUser,
    resource_type: ResourceType,
    title: &str,
    action: &str,
    form: &EditForm,
    errors: &Errors,
) -> axum::response::Response {
    let mut response = Page::new(title, user)
        .section(section_of(resource_type))
        .content(html! {
            @if errors.any() { p class="alert alert-error" role="alert" { "Please correct the fields marked below." } }
            (edit_fields(user, action, form, errors))
        })
        .into_response();
    if errors.any() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

/// `GET /resources/{type}/new`
pub async fn new_form(user: WebUser, Path(raw_type): Path<String>) -> WebResult {
    let resource_type = web(document_type(&raw_type))?;
    let form = EditForm { document: "{}".into(), ..EditForm::default() };
    let title = format!("Create {}", singular(resource_type));
    Ok(form_page(&user, resource_type, &title, &format!("/resources/{resource_type}/new"), &form, &Errors::default()))
}

/// `GET /resources/{type}/{id}/edit`
pub async fn edit_form(
    State(app): State<AppState>,
    user: WebUser,
    Path((raw_type, id)): Path<(String, String)>,
) -> WebResult {
    let resource_type = web(document_type(&raw_type))?;
    let Current { id, state, .. } = web(readable(&app, &user.principal, resource_type, &id).await)?;
    let document = DocumentParts::of(&state);
    let form = EditForm {
        name: state.name().into(),
        description: document.description.into(),
        document: pretty(&document.settings),
        ..EditForm::default()
    };
    let title = format!("Edit {}", form.name);
    Ok(form_page(
        &user,
        resource_type,
        &title,
        &format!("/resources/{resource_type}/{id}/edit"),
        &form,
        &Errors::default(),
    ))
}

/// The *Review + save* step: the change as it will be proposed, whether it needs approval, and
/// the business justification.
#[allow(clippy::too_many_arguments)]
fn review_page(
    user: &WebUser,
    resource_type: ResourceType,
    title: &str,
    save_to: &str,
    back_to: &str,
    form: &EditForm,
    before: &Value,
    after: &Value,
    protected: bool,
    justification_error: Option<&str>,
) -> axum::response::Response {
    let entries = diff(before, after);
    let mut response = Page::new(title, user)
        .section(section_of(resource_type))
        .content(html! {
            ol class="steps" { li { "1. Edit" } li aria-current="step" { "2. Review + save" } }
            @if protected {
                p class="alert alert-info" id="protected" {
                    "This change is protected by Multi Admin Approval: saving it creates an approval request, and nothing changes until another administrator approves it."
                }
            }
            h2 { "Changes" }
            pre id="review-diff" { (render_diff(&entries, &Names::new())) }
            form class="card" method="post" action=(save_to) {
                (csrf_field(&user.csrf))
                input type="hidden" name="name" value=(form.name);
                input type="hidden" name="description" value=(form.description);
                input type="hidden" name="document" value=(form.document);
                (justification_field("justification", justification_error, form.justification.as_deref().unwrap_or(""), protected))
                div class="actions" {
                    button type="submit" id="save" { "Save" }
                    a href=(back_to) class="button secondary" { "Back to editing" }
                }
            }
        })
        .into_response();
    if justification_error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

/// What every document type shows: its description and its settings.
struct DocumentParts<'a> {
    description: &'a str,
    settings: Value,
}

impl<'a> DocumentParts<'a> {
    fn of(state: &'a ObjectState) -> DocumentParts<'a> {
        match state {
            ObjectState::Assignable(s) => {
                DocumentParts { description: &s.description, settings: Value::Object(s.document.clone()) }
            }
            ObjectState::DeviceCategory(s) => {
                DocumentParts { description: &s.description, settings: Value::Object(s.document.clone()) }
            }
            _ => DocumentParts { description: "", settings: Value::Null },
        }
    }
}

/// `POST /resources/{type}/new`: validate, then review.
pub async fn review_new(
    State(app): State<AppState>,
    user: WebUser,
    Path(raw_type): Path<String>,
    Form(form): Form<EditForm>,
) -> WebResult {
    let resource_type = web(document_type(&raw_type))?;
    let title = format!("Create {}", singular(resource_type));
    let input = match check(&form) {
        Ok(input) => input,
        Err(errors) => {
            return Ok(form_page(
                &user,
                resource_type,
                &title,
                &format!("/resources/{resource_type}/new"),
                &form,
                &errors,
            ))
        }
    };
    let protected = is_protected(&app, resource_type, Operation::Create).await?;
    let after = web(proposed_document(resource_type, &input, vec![]))?.to_json();
    Ok(review_page(
        &user,
        resource_type,
        &title,
        &format!("/resources/{resource_type}/new/save"),
        &format!("/resources/{resource_type}/new"),
        &form,
        &Value::Null,
        &after,
        protected,
        None,
    ))
}

/// `POST /resources/{type}/{id}/edit`: validate, then review.
pub async fn review_edit(
    State(app): State<AppState>,
    user: WebUser,
    Path((raw_type, id)): Path<(String, String)>,
    Form(form): Form<EditForm>,
) -> WebResult {
    let resource_type = web(document_type(&raw_type))?;
    let Current { id, state: before, .. } = web(readable(&app, &user.principal, resource_type, &id).await)?;
    let title = format!("Edit {}", before.name());
    let input = match check(&form) {
        Ok(input) => input,
        Err(errors) => {
            return Ok(form_page(
                &user,
                resource_type,
                &title,
                &format!("/resources/{resource_type}/{id}/edit"),
                &form,
                &errors,
            ))
        }
    };
    let protected = is_protected(&app, resource_type, Operation::Update).await?;
    let after = web(proposed_document(resource_type, &input, assigned_groups(&before)))?.to_json();
    let before = before.to_json();
    Ok(review_page(
        &user,
        resource_type,
        &title,
        &format!("/resources/{resource_type}/{id}/save"),
        &format!("/resources/{resource_type}/{id}/edit"),
        &form,
        &before,
        &after,
        protected,
        None,
    ))
}

/// Saves a reviewed change; a missing justification for a protected change returns to the review.
async fn save(
    app: &AppState,
    user: &WebUser,
    resource_type: ResourceType,
    id: Option<String>,
    form: EditForm,
) -> WebResult {
    let input = match check(&form) {
        Ok(input) => input,
        // A post that skipped the review: the form again, with what was typed (issue 15).
        Err(errors) => {
            let (title, action) = match &id {
                Some(id) => {
                    (format!("Edit {}", singular(resource_type)), format!("/resources/{resource_type}/{id}/edit"))
                }
                None => (format!("Create {}", singular(resource_type)), format!("/resources/{resource_type}/new")),
            };
            return Ok(form_page(user, resource_type, &title, &action, &form, &errors));
        }
    };
    let justification = form.justification.clone().filter(|j| !j.trim().is_empty());
    let result = match &id {
        None => create_document(app, &user.principal, resource_type, &input, justification).await,
        Some(id) => update_document(app, &user.principal, resource_type, id, &input, justification).await,
    };
    match result {
        Ok(outcome) => {
            let target = match (&outcome, &id) {
                (_, Some(id)) => format!("/resources/{resource_type}/{id}"),
                (Outcome::Applied { id, .. }, None) => format!("/resources/{resource_type}/{id}"),
                _ => format!("/resources/{resource_type}"),
            };
            let what = format!("{} “{}”", if id.is_some() { "Edit" } else { "Create" }, input.name.trim());
            Ok(after_change(user, outcome, &target, &what))
        }
        Err(e) if matches!(e.code, ErrorCode::JustificationRequired | ErrorCode::JustificationTooLong) => {
            let before = match &id {
                Some(id) => Some(web(readable(app, &user.principal, resource_type, id).await)?.state),
                None => None,
            };
            let assigned = before.as_ref().map(assigned_groups).unwrap_or_default();
            let after = web(proposed_document(resource_type, &input, assigned))?.to_json();
            let before = before.as_ref().map_or(Value::Null, ObjectState::to_json);
            let (save_to, back_to) = match &id {
                Some(id) => {
                    (format!("/resources/{resource_type}/{id}/save"), format!("/resources/{resource_type}/{id}/edit"))
                }
                None => (format!("/resources/{resource_type}/new/save"), format!("/resources/{resource_type}/new")),
            };
            Ok(review_page(
                user,
                resource_type,
                "Review + save",
                &save_to,
                &back_to,
                &form,
                &before,
                &after,
                true,
                Some(e.detail.as_str()),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /resources/{type}/new/save`
pub async fn save_new(
    State(app): State<AppState>,
    user: WebUser,
    Path(raw_type): Path<String>,
    Form(form): Form<EditForm>,
) -> WebResult {
    let resource_type = web(document_type(&raw_type))?;
    save(&app, &user, resource_type, None, form).await
}

/// `POST /resources/{type}/{id}/save`
pub async fn save_edit(
    State(app): State<AppState>,
    user: WebUser,
    Path((raw_type, id)): Path<(String, String)>,
    Form(form): Form<EditForm>,
) -> WebResult {
    let resource_type = web(document_type(&raw_type))?;
    save(&app, &user, resource_type, Some(id), form).await
}

#[derive(Deserialize, Default)]
pub struct ActionForm {
    justification: Option<String>,
    #[serde(default, rename = "groupIds")]
    group_ids: Vec<String>,
    #[serde(default, rename = "keepEnrollmentData")]
    keep_enrollment_data: Option<String>,
}

impl ActionForm {
    fn justification(&self) -> Option<String> {
        self.justification.clone().filter(|j| !j.trim().is_empty())
    }
}

/// `POST /resources/{type}/{id}/delete`
pub async fn delete(
    State(app): State<AppState>,
    user: WebUser,
    Path((raw_type, id)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> WebResult {
    let resource_type = web(document_type(&raw_type))?;
    let outcome = web(delete_document(&app, &user.principal, resource_type, &id, form.justification()).await)?;
    Ok(after_change(
        &user,
        outcome,
        &format!("/resources/{resource_type}"),
        &format!("Delete {}", singular(resource_type)),
    ))
}

/// `POST /resources/{type}/{id}/assign`
pub async fn assign(
    State(app): State<AppState>,
    user: WebUser,
    Path((raw_type, id)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> WebResult {
    let resource_type = web(document_type(&raw_type))?;
    let outcome =
        web(assign_document(&app, &user.principal, resource_type, &id, &form.group_ids, form.justification()).await)?;
    Ok(after_change(&user, outcome, &format!("/resources/{resource_type}/{id}"), "Assignments"))
}

fn state_badge(state: &str) -> Markup {
    html! { span class={ "badge state-" (state) } { (state) } }
}

/// `GET /devices`
pub async fn devices(State(app): State<AppState>, user: WebUser, Query(q): Query<ListParams>) -> WebResult {
    let page = PageRequest { cursor: q.cursor, limit: Some(50) };
    let Paged { items: records, next_cursor: next } =
        web(page_of(&app, &user.principal, ResourceType::Device, &page).await)?;
    Ok(Page::new("Devices", &user)
        .section("/devices")
        .content(html! {
            div class="table-wrap" { table {
                thead { tr { th { "Name" } th { "Operating system" } th { "Owner" } th { "State" } } }
                tbody { @for r in &records { tr {
                    @if let ObjectState::Device(d) = &r.state {
                        td { a href={ "/devices/" (r.id) } { (d.name) } }
                        td { (d.os) }
                        td { (d.owner.as_deref().unwrap_or("—")) }
                        td { (state_badge(d.state.as_str())) }
                    }
                } } }
            } }
            @if let Some(cursor) = next { p { a class="button secondary" href={ "/devices?cursor=" (cursor) } { "Next page" } } }
        })
        .into_response())
}

/// `GET /devices/{id}`: the device, its actions and its history.
pub async fn device(State(app): State<AppState>, user: WebUser, Path(id): Path<String>) -> WebResult {
    let current = web(readable(&app, &user.principal, ResourceType::Device, &id).await)?;
    let ObjectState::Device(state) = &current.state else { return Err(WebError(wrong_state(&current))) };
    let (id, version) = (&current.id, current.version);
    let active = state.state == DeviceLifecycle::Active;
    let p = &user.principal;
    let actions = [
        ("wipe", "Wipe", "Erases the device and restores factory settings.", Operation::Wipe),
        ("retire", "Retire", "Removes company data and management; personal data stays.", Operation::Retire),
        ("delete", "Delete", "Removes the device from management records.", Operation::Delete),
    ];
    Ok(Page::new(&state.name, &user)
        .section("/devices")
        .content(html! {
            div class="card" { dl class="facts" {
                dt { "Operating system" } dd { (state.os) }
                dt { "Owner" } dd { (state.owner.as_deref().unwrap_or("—")) }
                dt { "State" } dd id="device-state" { (state_badge(state.state.as_str())) }
                dt { "Version" } dd { (version) }
            } }
            h2 { "Actions" }
            div class="grid-2" {
                @for (action, label, hint, operation) in actions {
                    @if p.has(write_permission(ResourceType::Device, operation)) && (active || operation == Operation::Delete) {
                        form class="card" method="post" action={ "/devices/" (id) "/" (action) } {
                            (csrf_field(&user.csrf))
                            h3 { (label) }
                            p class="hint" { (hint) }
                            @if operation == Operation::Wipe {
                                div class="checks field" { label { input type="checkbox" name="keepEnrollmentData" value="true"; "Keep enrollment state and user account" } }
                            }
                            (justification_field(&format!("{action}-justification"), None, "", false))
                            button type="submit" id=(action) class=(if operation == Operation::Delete { "danger" } else { "" }) { (label) }
                        }
                    }
                }
            }
            h2 { "History" }
            (history(&app, ResourceType::Device, id).await?)
        })
        .into_response())
}

/// `POST /devices/{id}/wipe|retire|delete`
pub async fn device_action(
    State(app): State<AppState>,
    user: WebUser,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> WebResult {
    let operation = web(device_operation(&action))?;
    let keep = form.keep_enrollment_data.is_some();
    let outcome = web(act_on_device(&app, &user.principal, &id, operation, keep, form.justification()).await)?;
    let back = if operation == Operation::Delete { "/devices".to_owned() } else { format!("/devices/{id}") };
    Ok(after_change(&user, outcome, &back, &format!("{} device", capitalise(&action))))
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
