//! The web admin center: server-rendered HTML (maud) with plain forms, served at `/`.
//!
//! Pages call the same operations as the REST API (`crate::ops`), so permissions and the MAA
//! gate are checked in one place. Every form carries the session's CSRF token; pages work
//! without JavaScript, which only adds live updates (`assets/app.js`).

mod account;
mod audit;
mod directory;
mod layout;
mod notifications;
mod policies;
mod requests;
mod resources;

use crate::error::{ApiError, ApiResult};
use crate::extract::{session_cookie, Credential, Principal};
use crate::ops::Outcome;
use crate::AppState;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use countersign_core::error::ErrorCode;
use maud::html;
use subtle::ConstantTimeEq;

pub use layout::Page;

/// A signed-in browser session: the caller and the CSRF token its forms must carry.
pub struct WebUser {
    pub principal: Principal,
    pub csrf: String,
}

impl WebUser {
    /// Refuses a form whose CSRF token is not this session's (a cross-site forgery).
    pub fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        if bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(WebError(ApiError::new(
                ErrorCode::CsrfFailed,
                "This form has expired or did not come from Countersign. Reload the page and try again.",
            )))
        }
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let to_login = || {
            let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            Redirect::to(&format!("/login?next={}", urlencode(next))).into_response()
        };
        let Some(cookie) = session_cookie(&parts.headers) else { return Err(to_login()) };
        let id_hash = crate::auth::sha256_hex(&cookie);
        let session = match app.store.session(&id_hash, app.now()).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(WebError(e.into()).into_response()),
        };
        let principal = Principal::new(session.access, Credential::Session { id_hash });
        Ok(WebUser { principal, csrf: session.csrf_token })
    }
}

/// An error shown as a page: the problem's title and detail, with its HTTP status.
#[derive(Debug)]
pub struct WebError(pub ApiError);

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError(e)
    }
}

impl From<countersign_store::StoreError> for WebError {
    fn from(e: countersign_store::StoreError) -> Self {
        WebError(e.into())
    }
}

impl From<countersign_core::DomainError> for WebError {
    fn from(e: countersign_core::DomainError) -> Self {
        WebError(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let body = layout::bare(
            title,
            html! {
                div class="card error-page" {
                    h1 { (title) }
                    p class="alert alert-error" role="alert" { (self.0.detail) }
                    p class="muted" { "Code: " code { (self.0.code) } }
                    p { a href="/" { "Back to the admin center" } }
                }
            },
        );
        (status, body).into_response()
    }
}

pub type WebResult<T = Response> = Result<T, WebError>;

/// Percent-encodes a value for a URL query.
pub fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A 303 to `path` with a notice shown at the top of the next page.
pub fn see_other(path: &str, notice: &str) -> Response {
    let separator = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{separator}notice={}", urlencode(notice))).into_response()
}

/// After a change: applied changes go back to `applied_to`; held ones say plainly that approval
/// is needed and link to the request (R1).
pub fn after_change(user: &WebUser, outcome: Outcome, applied_to: &str, what: &str) -> Response {
    match outcome {
        Outcome::Applied { .. } => see_other(applied_to, &format!("{what}: done.")),
        Outcome::Unchanged { .. } => see_other(applied_to, "Nothing changed, so nothing was submitted."),
        Outcome::Held(record) => Page::new("Approval needed", user)
            .content(html! {
                div class="card held" {
                    p class="alert alert-info" role="status" {
                        strong { "Approval needed. " }
                        "This change is protected by Multi Admin Approval. It has not been applied: another administrator must approve it first."
                    }
                    dl class="facts" {
                        dt { "Change" } dd { (what) }
                        dt { "Status" } dd { (layout::status_badge(record.status)) }
                        dt { "Business justification" } dd { (record.justification) }
                    }
                    p { a class="button" id="view-request" href={ "/requests/" (record.id) } { "View the request" } }
                }
            })
            .into_response(),
    }
}

async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], layout::CSS)
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        layout::JS,
    )
        .into_response()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(requests::home))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/account/notifications", post(account::notifications))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route("/requests", get(requests::list))
        .route("/requests/{id}", get(requests::show))
        .route("/requests/{id}/{action}", post(requests::act))
        .route("/resources/{type}", get(resources::list))
        .route("/resources/{type}/new", get(resources::new_form).post(resources::review_new))
        .route("/resources/{type}/new/save", post(resources::save_new))
        .route("/resources/{type}/{id}", get(resources::show))
        .route("/resources/{type}/{id}/edit", get(resources::edit_form).post(resources::review_edit))
        .route("/resources/{type}/{id}/save", post(resources::save_edit))
        .route("/resources/{type}/{id}/delete", post(resources::delete))
        .route("/resources/{type}/{id}/assign", post(resources::assign))
        .route("/devices", get(resources::devices))
        .route("/devices/{id}", get(resources::device))
        .route("/devices/{id}/{action}", post(resources::device_action))
        .route("/policies", get(policies::list))
        .route("/policies/new", get(policies::wizard).post(policies::wizard_step))
        .route("/policies/{id}", get(policies::show))
        .route("/policies/{id}/edit", get(policies::edit))
        .route("/groups", get(directory::groups).post(directory::create_group))
        .route("/groups/{id}", get(directory::group))
        .route("/groups/{id}/members", post(directory::set_members))
        .route("/roles", get(directory::roles).post(directory::create_role))
        .route("/roles/assignments", post(directory::assign_role))
        .route("/roles/assignments/{id}/delete", post(directory::remove_assignment))
        .route("/accounts", get(directory::accounts).post(directory::create_account))
        .route("/accounts/{id}", get(directory::account))
        .route("/accounts/{id}/{what}", post(directory::change_account))
        .route("/notifications", get(notifications::page))
        .route("/notifications/channels", post(notifications::add))
        .route("/notifications/channels/{id}/test", post(notifications::test))
        .route("/notifications/deliveries/{id}/retry", post(notifications::retry))
        .route("/audit", get(audit::page))
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/app.js", get(script))
}

/// The 404 page for paths outside the API.
pub async fn fallback(OriginalUri(uri): OriginalUri) -> WebError {
    WebError(ApiError::not_found(format!("There is no page at {}.", uri.path())))
}

/// A form field's value, or `None` when it was left blank. The value is kept as typed (it may
/// be a password).
pub fn given(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.trim().is_empty())
}

/// Turns an API-layer result into a web result.
pub fn web<T>(result: ApiResult<T>) -> WebResult<T> {
    result.map_err(WebError)
}
