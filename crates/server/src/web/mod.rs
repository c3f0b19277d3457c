//! The web admin center: server-rendered HTML (maud) with plain forms, served at `/`.
//!
//! Pages call the same operations as the REST API (`crate::ops`), so permissions and the MAA
//! gate are checked in one place. Every form carries the session's CSRF token, checked by one
//! layer over every route but sign-in ([`require_csrf`]); pages work without JavaScript, which
//! only adds live updates (`assets/app.js`).

mod account;
mod audit;
mod directory;
mod layout;
mod notifications;
mod policies;
mod requests;
mod resources;
mod sso;

use crate::error::{ApiError, ApiResult};
use crate::extract::{session_cookie, Credential, Principal};
use crate::ops::Outcome;
use crate::AppState;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use axum_extra::extract::Form;
use countersign_core::error::ErrorCode;
use maud::html;
use serde::Deserialize;
use subtle::ConstantTimeEq;

pub use layout::Page;

/// A signed-in browser session: the caller, the CSRF token its forms must carry, and the
/// notice the server left for this page (see [`Flash`]).
#[derive(Clone)]
pub struct WebUser {
    pub principal: Principal,
    pub csrf: String,
    pub flash: Option<String>,
}

/// A notice for the session's next page, set by the handler that performed an action (see
/// [`see_other`]). It travels in the response's extensions, which only this process can write,
/// and `require_csrf` keeps it with the session in the database, so that the next page shows
/// it once whichever replica serves it. No notice is ever read from a URL: a link cannot put
/// words in the admin center's mouth.
#[derive(Clone, Debug)]
pub struct Flash(pub String);

impl WebUser {
    /// Refuses a form whose CSRF token is not this session's (a cross-site forgery).
    fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
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
        // A form post: `require_csrf` has read the session already.
        if let Some(user) = parts.extensions.remove::<WebUser>() {
            return Ok(user);
        }
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
        // R16: a password someone else set is replaced before anything else is done.
        if session.access.account.password_change_required
            && !["/account/password", "/logout"].contains(&parts.uri.path())
        {
            return Err(Redirect::to("/account/password").into_response());
        }
        // A page (never a form post) shows the notice the last action left, once.
        let flash = if parts.method == Method::GET {
            match app.store.take_flash(&id_hash).await {
                Ok(flash) => flash,
                Err(e) => return Err(WebError(e.into()).into_response()),
            }
        } else {
            None
        };
        let principal = Principal::new(session.access, Credential::Session { id_hash });
        Ok(WebUser { principal, csrf: session.csrf_token, flash })
    }
}

/// The one field of a form that `require_csrf` reads.
#[derive(Deserialize, Default)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// The CSRF check of the admin center, layered over every route but sign-in: a POST (the only
/// method that changes anything here) must come from a signed-in session and carry that
/// session's token in its form's `csrf` field, which a cross-site form cannot know.
/// The body is read here and handed on, with the session, so the handler's `WebUser` costs no
/// second read.
async fn require_csrf(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let user = match WebUser::from_request_parts(&mut parts, &app).await {
        Ok(user) => user,
        Err(to_login) => return to_login,
    };
    let Ok(bytes) = axum::body::to_bytes(body, app.config.body_limit).await else {
        return WebError(ApiError::new(ErrorCode::PayloadTooLarge, "The form is larger than the server accepts."))
            .into_response();
    };
    // Read as the handler's `Form` will read it (a GET form would come from the query string).
    let mut form = Request::new(Body::from(bytes.clone()));
    *form.method_mut() = parts.method.clone();
    if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
        form.headers_mut().insert(header::CONTENT_TYPE, content_type.clone());
    }
    let sent = Form::<CsrfField>::from_request(form, &()).await.map(|Form(field)| field.csrf).unwrap_or_default();
    if let Err(forged) = user.check_csrf(&sent) {
        return forged.into_response();
    }
    let session = match &user.principal.credential {
        Credential::Session { id_hash } => Some(id_hash.clone()),
        Credential::Token { .. } => None,
    };
    parts.extensions.insert(user);
    let mut response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if let (Some(Flash(notice)), Some(id_hash)) = (response.extensions_mut().remove::<Flash>(), session) {
        if let Err(e) = app.store.set_flash(&id_hash, &notice).await {
            return WebError(e.into()).into_response();
        }
    }
    response
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

/// A 303 to `path`, whose page shows `notice` at the top, once (a [`Flash`]).
pub fn see_other(path: &str, notice: &str) -> Response {
    let mut response = Redirect::to(path).into_response();
    response.extensions_mut().insert(Flash(notice.to_owned()));
    response
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

async fn passkeys_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        layout::PASSKEYS_JS,
    )
        .into_response()
}

/// Every form the admin center accepts from a signed-in session, in one list: `routes` serves
/// them behind `require_csrf`, and the e2e tests post to each without a token.
fn form_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/logout", post(account::logout)),
        ("/account/password", post(account::change_password)),
        ("/account/notifications", post(account::notifications)),
        ("/account/tokens", post(account::create_token)),
        ("/account/tokens/{id}/revoke", post(account::revoke_token)),
        ("/account/passkeys/{id}/rename", post(account::rename_passkey)),
        ("/account/passkeys/{id}/remove", post(account::remove_passkey)),
        ("/account/sso/{id}/link", post(sso::link)),
        ("/account/sso/identities/{id}/unlink", post(sso::unlink)),
        ("/requests/{id}/{action}", post(requests::act)),
        ("/resources/{type}/new", post(resources::review_new)),
        ("/resources/{type}/new/save", post(resources::save_new)),
        ("/resources/{type}/{id}/edit", post(resources::review_edit)),
        ("/resources/{type}/{id}/save", post(resources::save_edit)),
        ("/resources/{type}/{id}/delete", post(resources::delete)),
        ("/resources/{type}/{id}/assign", post(resources::assign)),
        ("/devices/{id}/{action}", post(resources::device_action)),
        ("/policies/new", post(policies::wizard_step)),
        ("/groups", post(directory::create_group)),
        ("/groups/{id}/members", post(directory::set_members)),
        ("/roles", post(directory::create_role)),
        ("/roles/assignments", post(directory::assign_role)),
        ("/roles/assignments/{id}/delete", post(directory::remove_assignment)),
        ("/accounts", post(directory::create_account)),
        ("/accounts/{id}/{what}", post(directory::change_account)),
        ("/accounts/{id}/passkeys/{passkey}/remove", post(directory::remove_account_passkey)),
        ("/notifications/channels", post(notifications::add)),
        ("/notifications/channels/{id}/test", post(notifications::test)),
        ("/notifications/deliveries/{id}/retry", post(notifications::retry)),
    ]
}

/// The paths of every form route (see [`form_routes`]).
pub fn form_paths() -> Vec<&'static str> {
    form_routes().into_iter().map(|(path, _)| path).collect()
}

pub fn routes(app: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(requests::home))
        .route("/account", get(account::page))
        .route("/account/password", get(account::password_page))
        .route("/requests", get(requests::list))
        .route("/requests/{id}", get(requests::show))
        .route("/resources/{type}", get(resources::list))
        .route("/resources/{type}/new", get(resources::new_form))
        .route("/resources/{type}/{id}", get(resources::show))
        .route("/resources/{type}/{id}/edit", get(resources::edit_form))
        .route("/devices", get(resources::devices))
        .route("/devices/{id}", get(resources::device))
        .route("/policies", get(policies::list))
        .route("/policies/new", get(policies::wizard))
        .route("/policies/{id}", get(policies::show))
        .route("/policies/{id}/edit", get(policies::edit))
        .route("/groups", get(directory::groups))
        .route("/groups/{id}", get(directory::group))
        .route("/roles", get(directory::roles))
        .route("/accounts", get(directory::accounts))
        .route("/accounts/{id}", get(directory::account))
        .route("/notifications", get(notifications::page))
        .route("/audit", get(audit::page));
    form_routes()
        .into_iter()
        .fold(pages, |router, (path, form)| router.route(path, form))
        .route_layer(middleware::from_fn_with_state(app, require_csrf))
        // Added after the layer: signing in has no session yet, and the assets change nothing.
        .route("/login", get(account::login_page).post(account::login))
        // Single sign-on: started by a link, finished by the provider's redirect (no session yet).
        .route("/sso/{id}/start", get(sso::start))
        .route("/sso/{id}/callback", get(sso::callback))
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/app.js", get(script))
        .route("/assets/passkeys.js", get(passkeys_script))
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
