//! The native REST API of DESIGN §6, under `/api/v1`: parses JSON bodies and queries, calls one
//! operation in `ops`, and renders its typed answer as JSON.

pub mod audit;
pub mod directory;
pub mod events;
pub mod notifications;
pub mod openapi;
pub mod own;
pub mod policies;
pub mod requests;
pub mod resources;

use crate::error::{ApiError, ApiResult};
use crate::extract::Principal;
use crate::ops::{Current, Outcome, PageRequest, Paged};
use crate::AppState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use countersign_core::profile::ResourceType;
use countersign_core::state::ObjectState;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A collection: `{"value": [...], "nextCursor": "..."}` (keyset paging).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub value: Vec<Value>,
    pub next_cursor: Option<String>,
}

impl Page {
    /// A page of items, each rendered by `render`.
    pub fn of<T>(paged: Paged<T>, render: impl Fn(&T) -> Value) -> Page {
        Page { value: paged.items.iter().map(render).collect(), next_cursor: paged.next_cursor }
    }

    /// A whole collection on one page.
    pub fn all<T>(items: &[T], render: impl Fn(&T) -> Value) -> Page {
        Page { value: items.iter().map(render).collect(), next_cursor: None }
    }
}

/// `?cursor=&limit=`
#[derive(Deserialize, Default)]
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
#[derive(Deserialize, Default)]
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

/// Every route of the native API, under `/api/v1`.
pub fn routes() -> Router<AppState> {
    let v1 = Router::new()
        .route("/auth/login", post(own::login))
        .route("/auth/logout", post(own::logout))
        .route("/me", get(own::me))
        .route("/me/password", post(own::change_password))
        .route("/me/notifications", get(notifications::my_settings).put(notifications::put_my_settings))
        .route("/tokens", get(own::list_tokens).post(own::create_token))
        .route("/tokens/{id}", axum::routing::delete(own::delete_token))
        .route("/accounts", get(directory::list_accounts).post(directory::create_account))
        .route(
            "/accounts/{id}",
            get(directory::get_account).patch(directory::update_account).delete(directory::delete_account),
        )
        .route("/groups", get(directory::list_groups).post(directory::create_group))
        .route("/groups/{id}", get(directory::get_group).patch(directory::update_group).delete(directory::delete_group))
        .route("/groups/{id}/members", put(directory::set_members))
        .route("/roles", get(directory::list_roles).post(directory::create_role))
        .route("/roles/{id}", get(directory::get_role).put(directory::update_role).delete(directory::delete_role))
        .route("/roleAssignments", get(directory::list_role_assignments).post(directory::create_role_assignment))
        .route(
            "/roleAssignments/{id}",
            get(directory::get_role_assignment)
                .put(directory::update_role_assignment)
                .delete(directory::delete_role_assignment),
        )
        .route("/resources/{type}", get(resources::list).post(resources::create))
        .route("/resources/{type}/{id}", get(resources::get).put(resources::update).delete(resources::delete))
        .route("/resources/{type}/{id}/assign", post(resources::assign))
        .route("/devices", get(resources::list_devices).post(resources::enroll_device))
        .route("/devices/{id}", get(resources::get_device))
        .route("/devices/{id}/{action}", post(resources::device_action))
        .route("/accessPolicies", get(policies::list).post(policies::create))
        .route("/accessPolicies/{id}", get(policies::get).put(policies::update).delete(policies::delete))
        .route("/requests", get(requests::list))
        .route("/requests/{id}", get(requests::get))
        .route("/requests/{id}/approve", post(requests::approve))
        .route("/requests/{id}/reject", post(requests::reject))
        .route("/requests/{id}/cancel", post(requests::cancel))
        .route("/requests/{id}/complete", post(requests::complete))
        .route("/notificationChannels", get(notifications::list).post(notifications::create))
        .route(
            "/notificationChannels/{id}",
            get(notifications::get).put(notifications::update).delete(notifications::delete),
        )
        .route("/notificationChannels/{id}/test", post(notifications::test))
        .route("/notificationDeliveries", get(notifications::deliveries))
        .route("/notificationDeliveries/{id}/retry", post(notifications::retry))
        .route("/events", get(events::stream))
        .route("/audit", get(audit::list))
        .route("/audit/verify", get(audit::verify))
        .route("/openapi.json", get(openapi::document))
        .fallback(not_found);
    Router::new().nest("/api/v1", v1)
}
