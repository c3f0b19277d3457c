//! Single sign-on in the admin center: "Sign in with <provider>", the provider's return, and
//! linking an identity on *My account*. The operations are in `ops::sso`.

use super::layout::{bare, bare_onward, csrf_field, when};
use super::{see_other, web, WebError, WebResult, WebUser};
use crate::auth::{cookie, session_cookie_header, SESSION_TTL};
use crate::error::ApiResult;
use crate::ops::sso::{self as ops, Callback, Finished, GroupChange};
use crate::sso::{BROWSER_COOKIE, LOGIN_TTL};
use crate::AppState;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::Form;
use maud::{html, Markup};
use serde::Deserialize;
use std::net::SocketAddr;

/// The browser binding cookie: `Lax`, so that it comes back with the provider's redirect, and
/// only to `/sso/`.
fn browser_cookie_header(app: &AppState, value: &str) -> ApiResult<HeaderValue> {
    let cookie = Cookie::build((BROWSER_COOKIE, value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(app.config.secure_cookies)
        .path("/sso/")
        .max_age(time::Duration::milliseconds(LOGIN_TTL))
        .build();
    cookie.to_string().parse().map_err(|_| crate::error::ApiError::validation("bad cookie"))
}

/// The sign-in page's buttons, one per provider.
pub fn sign_in_buttons(app: &AppState, next: &str) -> Markup {
    html! {
        @if !app.sso.all().is_empty() {
            div class="sso" {
                p class="muted" { "Or sign in with your organisation's account:" }
                @for provider in app.sso.all() {
                    p { a class="button secondary" id={ "sso-" (provider.id) } href={ "/sso/" (provider.id) "/start?next=" (super::urlencode(next)) } {
                        "Sign in with " (provider.display_name)
                    } }
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct StartQuery {
    next: Option<String>,
}

/// `GET /sso/{id}/start`: off to the provider. A GET, so that a link can start it: a sign-in
/// that another site starts only signs the browser in as the identity its own person holds at
/// the provider, and finishes only in the browser that started it.
pub async fn start(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> WebResult {
    let next = super::account::safe_next(q.next.as_deref());
    let browser = cookie(&headers, BROWSER_COOKIE);
    let started = web(ops::start(&app, &id, &next, browser.as_deref(), None).await)?;
    let mut response = Redirect::to(&started.authorize_url).into_response();
    response.headers_mut().append(header::SET_COOKIE, web(browser_cookie_header(&app, &started.browser_cookie))?);
    Ok(response)
}

#[derive(Deserialize, Default)]
pub struct LinkForm {
    /// The account's current password, when it has one.
    #[serde(default)]
    password: String,
}

/// `POST /account/sso/{id}/link`: links an identity at provider `id` to the caller's own
/// account. A form (checked for the session's CSRF token like every form), since linking gives
/// the identity a way into this account: another site must not be able to start it.
pub async fn link(
    State(app): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<LinkForm>,
) -> WebResult {
    let browser = cookie(&headers, BROWSER_COOKIE);
    let started = web(ops::start_link(&app, &id, &user.principal, &form.password, browser.as_deref()).await)?;
    let provider = web(app.sso.get(&id))?.display_name.clone();
    let page = bare_onward(
        "Link your identity",
        &started.authorize_url,
        html! { div class="card" { h1 { "Link your " (provider) " identity" } p { "Sign in at " (provider) " to link it to your account." } } },
    );
    let mut response = page.into_response();
    response.headers_mut().append(header::SET_COOKIE, web(browser_cookie_header(&app, &started.browser_cookie))?);
    Ok(response)
}

#[derive(Deserialize, Default)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /sso/{id}/callback`: the provider sends the person back here.
pub async fn callback(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let address = crate::auth::client_address(app.config.trust_forwarded_for, &headers, peer);
    let browser = cookie(&headers, BROWSER_COOKIE);
    let finished = ops::finish(
        &app,
        Callback {
            provider_id: &id,
            code: q.code.as_deref(),
            state: q.state.as_deref(),
            error: q.error.as_deref(),
            browser: browser.as_deref(),
            address: &address,
            user_agent: crate::auth::user_agent(&headers),
        },
    )
    .await;
    match finished {
        Ok(Finished::SignedIn { account, session_id, next, groups, .. }) => {
            let page = bare_onward(
                "Signed in",
                &next,
                html! { div class="card" {
                    h1 { "Signed in as " (account.username) }
                    (group_notes(&groups))
                } },
            );
            let mut response = page.into_response();
            match session_cookie_header(&app, session_id, SESSION_TTL / 1000) {
                Ok(cookie) => {
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                    response
                }
                Err(e) => WebError(e).into_response(),
            }
        }
        Ok(Finished::Linked { provider, next, .. }) => bare_onward(
            "Identity linked",
            &next,
            html! { div class="card" { h1 { "Linked" } p class="alert alert-info" role="status" id="sso-linked" { "Your " (provider) " identity is now linked to your account." } } },
        )
        .into_response(),
        Err(e) => {
            let status = e.status();
            let body = bare(
                "Single sign-on failed",
                html! { div class="card error-page" {
                    h1 { "Sign-in failed" }
                    p class="alert alert-error" role="alert" id="sso-error" { (e.detail) }
                    p class="muted" { "Code: " code { (e.code) } }
                    p { a href="/login" { "Back to sign-in" } }
                } },
            );
            (status, body).into_response()
        }
    }
}

/// What the group mapping did, told to the person who signed in.
fn group_notes(changes: &[GroupChange]) -> Markup {
    html! {
        @if !changes.is_empty() {
            ul class="sso-groups" id="sso-groups" {
                @for change in changes { li { (match change {
                    GroupChange::Added { group } => format!("Added to {group}."),
                    GroupChange::Removed { group } => format!("Removed from {group}."),
                    GroupChange::Held { group, request_id } => format!("Membership of {group} needs approval (request {request_id})."),
                    GroupChange::Waiting { group, request_id } => format!("{group} has an open request ({request_id}); membership is unchanged for now."),
                    GroupChange::Completed { group, request_id } => format!("The approved change to {group} (request {request_id}) is applied."),
                    GroupChange::Failed { group, reason } => format!("{group}: {reason}."),
                }) } }
            }
        }
    }
}

/// *My account*'s single sign-on section: linked identities, and a button per provider.
pub async fn account_section(app: &AppState, user: &WebUser) -> WebResult<Markup> {
    if app.sso.all().is_empty() {
        return Ok(html! {});
    }
    let linked = web(ops::identities(app, &user.principal).await)?;
    let name_of =
        |id: &str| app.sso.all().iter().find(|p| p.id == id).map_or_else(|| id.to_owned(), |p| p.display_name.clone());
    Ok(html! {
        h2 id="single-sign-on" { "Single sign-on" }
        @if linked.is_empty() { p class="muted" id="no-identities" { "No identity is linked to your account." } } @else {
            table id="identities" { thead { tr { th { "Provider" } th { "Identity" } th { "Linked" } th { "Last sign-in" } th {} } } tbody {
                @for identity in &linked { tr {
                    td { (name_of(&identity.provider_id)) }
                    td { (identity.email.as_deref().unwrap_or(&identity.subject)) }
                    td { (when(identity.created_at)) }
                    td { (identity.last_sign_in_at.map(when).unwrap_or_else(|| "never".into())) }
                    td { form method="post" action={ "/account/sso/identities/" (identity.id) "/unlink" } {
                        (csrf_field(&user.csrf)) button type="submit" class="link" { "Unlink" }
                    } }
                } }
            } }
        }
        @let has_password = user.principal.account.password_hash.is_some();
        @for provider in app.sso.all() {
            form class="card" method="post" action={ "/account/sso/" (provider.id) "/link" } {
                (csrf_field(&user.csrf))
                @if has_password {
                    div class="field" {
                        label for={ "link-password-" (provider.id) } { "Current password" }
                        input type="password" id={ "link-password-" (provider.id) } name="password" autocomplete="current-password" required;
                        p class="hint" { "Linking gives the identity a way into this account, so confirm it is you." }
                    }
                }
                button type="submit" class="secondary" id={ "link-" (provider.id) } { "Link " (provider.display_name) }
            }
        }
    })
}

/// `POST /account/sso/identities/{id}/unlink`
pub async fn unlink(State(app): State<AppState>, user: WebUser, Path(id): Path<String>) -> WebResult {
    web(ops::unlink(&app, &user.principal, &id).await)?;
    Ok(see_other("/account#single-sign-on", "The identity is unlinked."))
}
