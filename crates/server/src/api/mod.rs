//! The native REST API of DESIGN §6, under `/api/v1`: parses JSON bodies and queries, calls one
//! operation in `ops`, and renders its typed answer as JSON.

pub mod answers;
pub mod audit;
pub mod directory;
pub mod events;
pub mod notifications;
pub mod openapi;
pub mod own;
pub mod passkeys;
pub mod policies;
pub mod requests;
pub mod resources;

use crate::error::{ApiError, ApiResult};
use crate::extract::Principal;
use crate::ops::{Current, Outcome, PageRequest, Paged};
use crate::AppState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use countersign_core::profile::ResourceType;
use countersign_core::state::ObjectState;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A collection: `{"value": [...], "nextCursor": "..."}` (keyset paging). Its items are typed
/// answers, or object states as JSON.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<Item = Value> {
    pub value: Vec<Item>,
    /// Where the next page starts; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<Item> Page<Item> {
    /// A page of items, each rendered by `render`.
    pub fn of<T>(paged: Paged<T>, render: impl Fn(&T) -> Item) -> Self {
        Page { value: paged.items.iter().map(render).collect(), next_cursor: paged.next_cursor }
    }

    /// A whole collection on one page.
    pub fn all<T>(items: &[T], render: impl Fn(&T) -> Item) -> Self {
        Page { value: items.iter().map(render).collect(), next_cursor: None }
    }
}

/// `?cursor=&limit=`
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

impl From<PageQuery> for PageRequest {
    fn from(q: PageQuery) -> Self {
        PageRequest { cursor: q.cursor, limit: q.limit }
    }
}

/// A body that carries only a justification (DELETE).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JustificationBody {
    pub justification: Option<String>,
}

/// An object's state as the API shows it: the state plus `id`, `type` and `version`.
pub fn object_json(id: &str, resource_type: ResourceType, state: &ObjectState, version: i64) -> Value {
    let mut body = state.to_json();
    if let Value::Object(map) = &mut body {
        map.insert("id".into(), json!(id));
        map.insert("type".into(), json!(resource_type));
        map.insert("version".into(), json!(version));
    }
    body
}

/// [`object_json`] of an object as it is stored now.
pub fn current_json(resource_type: ResourceType, current: &Current) -> Value {
    object_json(&current.id, resource_type, &current.state, current.version)
}

/// DESIGN §6: 200/201 with the object when applied (204 after a delete), 202 with the request
/// and a `Location` when held.
pub async fn respond(app: &AppState, principal: &Principal, outcome: Outcome) -> ApiResult<Response> {
    match outcome {
        Outcome::Applied { state: None, .. } => Ok(StatusCode::NO_CONTENT.into_response()),
        Outcome::Applied { id, resource_type, state: Some(state), version, created } => {
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok((status, Json(object_json(&id, resource_type, &state, version))).into_response())
        }
        Outcome::Unchanged { id, resource_type, state, version } => {
            Ok(Json(object_json(&id, resource_type, &state, version)).into_response())
        }
        Outcome::Held(record) => {
            let location = format!("/api/v1/requests/{}", record.id);
            let view = crate::ops::requests::view(app, principal, *record).await?;
            Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(requests::render(&view))).into_response())
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Every route of the native API, under `/api/v1`, each with its OpenAPI description.
pub fn routes() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::default()
        .routes(routes!(own::login))
        .routes(routes!(own::logout))
        .routes(routes!(own::me))
        .routes(routes!(own::change_password, passkeys::remove_password))
        .routes(routes!(passkeys::list, passkeys::finish_registration))
        .routes(routes!(passkeys::begin_registration))
        .routes(routes!(passkeys::rename, passkeys::remove))
        .routes(routes!(passkeys::begin_sign_in))
        .routes(routes!(passkeys::finish_sign_in))
        .routes(routes!(passkeys::list_for, passkeys::finish_registration_for))
        .routes(routes!(passkeys::begin_registration_for))
        .routes(routes!(passkeys::remove_for))
        .routes(routes!(notifications::my_settings, notifications::put_my_settings))
        .routes(routes!(own::list_tokens, own::create_token))
        .routes(routes!(own::delete_token))
        .routes(routes!(own::list_sessions))
        .routes(routes!(own::end_session))
        .routes(routes!(own::list_identities))
        .routes(routes!(own::unlink_identity))
        .routes(routes!(directory::list_account_sessions, directory::end_account_sessions))
        .routes(routes!(directory::list_accounts, directory::create_account))
        .routes(routes!(directory::get_account, directory::update_account, directory::delete_account))
        .routes(routes!(directory::list_groups, directory::create_group))
        .routes(routes!(directory::get_group, directory::update_group, directory::delete_group))
        .routes(routes!(directory::set_members))
        .routes(routes!(directory::list_roles, directory::create_role))
        .routes(routes!(directory::get_role, directory::update_role, directory::delete_role))
        .routes(routes!(directory::list_role_assignments, directory::create_role_assignment))
        .routes(routes!(
            directory::get_role_assignment,
            directory::update_role_assignment,
            directory::delete_role_assignment
        ))
        .routes(routes!(resources::list, resources::create))
        .routes(routes!(resources::get, resources::update, resources::delete))
        .routes(routes!(resources::assign))
        .routes(routes!(resources::list_devices, resources::enroll_device))
        .routes(routes!(resources::get_device))
        .routes(routes!(resources::device_action))
        .routes(routes!(policies::list, policies::create))
        .routes(routes!(policies::get, policies::update, policies::delete))
        .routes(routes!(requests::list))
        .routes(routes!(requests::get))
        .routes(routes!(requests::approve))
        .routes(routes!(requests::reject))
        .routes(routes!(requests::step_up))
        .routes(routes!(requests::cancel))
        .routes(routes!(requests::complete))
        .routes(routes!(notifications::list, notifications::create))
        .routes(routes!(notifications::get, notifications::update, notifications::delete))
        .routes(routes!(notifications::test))
        .routes(routes!(notifications::deliveries))
        .routes(routes!(notifications::retry))
        .routes(routes!(events::stream))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::checkpoints))
        .routes(routes!(openapi::document))
        .fallback(not_found);
    OpenApiRouter::default().nest("/api/v1", v1)
}
