//! The native REST API of DESIGN §6, under `/api/v1`.

pub mod audit;
pub mod directory;
pub mod events;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod policies;
pub mod requests;
pub mod resources;

use crate::error::{ApiError, ApiResult};
use crate::extract::Principal;
use crate::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use countersign_core::profile::{Operation, ResourceType};
use countersign_store::{Proposal, RequestRecord, Submitted};
use serde::Serialize;
use serde_json::{json, Value};

/// A collection: `{"value": [...], "nextCursor": "..."}` (keyset paging).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub value: Vec<Value>,
    pub next_cursor: Option<String>,
}

/// The cursor for the next page: the last item's key when the page is full.
pub fn next_cursor<T>(items: &[T], limit: i64, key: impl Fn(&T) -> String) -> Option<String> {
    if items.len() as i64 >= limit {
        items.last().map(key)
    } else {
        None
    }
}

/// What an attempted change did; rendered as JSON by the API and as HTML by the web pages.
pub enum Outcome {
    /// Not protected: applied at once. `state` is `Null` after a delete.
    Applied { id: String, resource_type: ResourceType, state: Value, version: i64, created: bool },
    /// R1: held as an approval request.
    Held(Box<RequestRecord>),
    /// The proposal would change nothing, so nothing was submitted.
    Unchanged { id: String, resource_type: ResourceType, state: Value, version: i64 },
}

/// Runs a proposal through the MAA gate (`Store::submit`, the one place every change goes).
pub async fn gate(
    app: &AppState,
    principal: &Principal,
    proposal: Proposal,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    let created = proposal.operation == Operation::Create;
    let (id, resource_type) = (proposal.object_id.clone(), proposal.resource_type);
    let submitted = app.store.submit(&principal.actor(), proposal, justification.as_deref(), app.now()).await?;
    Ok(match submitted {
        Submitted::Applied { state, version } => Outcome::Applied { id, resource_type, state, version, created },
        Submitted::Held(record) => Outcome::Held(record),
    })
}

/// An object's state as the API shows it: the state plus `id`, `type` and `version`.
pub fn object_json(id: &str, resource_type: ResourceType, state: Value, version: i64) -> Value {
    let mut body = state;
    if let Value::Object(map) = &mut body {
        map.insert("id".into(), json!(id));
        map.insert("type".into(), json!(resource_type));
        map.insert("version".into(), json!(version));
    }
    body
}

impl Outcome {
    /// DESIGN §6: 200/201 with the object when applied (204 after a delete), 202 with the
    /// request and a `Location` when held.
    pub async fn respond(self, app: &AppState, principal: &Principal) -> ApiResult<Response> {
        match self {
            Outcome::Applied { state: Value::Null, .. } => Ok(StatusCode::NO_CONTENT.into_response()),
            Outcome::Applied { id, resource_type, state, version, created } => {
                let status = if created { StatusCode::CREATED } else { StatusCode::OK };
                Ok((status, Json(object_json(&id, resource_type, state, version))).into_response())
            }
            Outcome::Unchanged { id, resource_type, state, version } => {
                Ok(Json(object_json(&id, resource_type, state, version)).into_response())
            }
            Outcome::Held(record) => {
                let rendered = requests::RequestRenderer::new(app, principal).await?.render(&record).await?;
                let location = format!("/api/v1/requests/{}", record.id);
                Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(rendered)).into_response())
            }
        }
    }
}

fn limit_of(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(100);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::validation("limit must be between 1 and 500"))
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

pub fn routes(body_limit: usize) -> Router<AppState> {
    use crate::auth;
    let v1 = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/me/password", post(auth::change_password))
        .route("/me/notifications", get(notifications::my_settings).put(notifications::put_my_settings))
        .route("/tokens", get(auth::list_tokens).post(auth::create_token))
        .route("/tokens/{id}", axum::routing::delete(auth::delete_token))
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
    Router::new()
        .nest("/api/v1", v1)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(crate::web::routes())
        .merge(crate::graph::routes())
        .fallback(crate::web::fallback)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
}
