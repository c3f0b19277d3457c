//! Sign in and out, and *My account*: change password, personal API tokens (shown once).

use super::layout::{bare, csrf_field, when};
use super::{see_other, web, Page, WebError, WebResult, WebUser};
use crate::auth::{
    cookie, device_cookie_header, login_form_cookie_header, random_secret, refuse_cross_site, session_cookie_header,
    DEVICE_COOKIE, LOGIN_FORM_COOKIE, SESSION_TTL,
};
use crate::error::{ApiError, ApiResult};
use crate::ops::notifications::{my_settings, optional_kinds, set_my_settings, Settings};
use crate::ops::own::{
    change_password as change_own_password, create_token as create_personal_token, revoke_token as revoke, sign_in,
    sign_out, tokens, Attempt,
};
use crate::AppState;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use countersign_core::error::ErrorCode;
use countersign_core::permission::Permission;
use maud::html;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Where to go after sign-in: only a local path of plain URL characters, so that a crafted link
/// cannot send someone elsewhere (issue 15, finding 2). Browsers drop tab, CR and LF from URLs
/// and read `\` as `/`, so `/%09/evil.example`, once decoded, is the other site
/// `//evil.example`: control characters, whitespace, backslashes and `//` are refused as sent
/// and once percent-decoded. Anything else goes to `/`.
pub(super) fn safe_next(next: Option<&str>) -> String {
    next.filter(|path| is_local_path(path)).unwrap_or("/").to_owned()
}

fn is_local_path(path: &str) -> bool {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%".contains(c);
    let harmless = |text: &str| !text.contains("//") && !text.contains('\\') && !text.chars().any(char::is_control);
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8();
    path.starts_with('/')
        && path.chars().all(plain)
        && harmless(path)
        && decoded.is_ok_and(|d| harmless(&d) && !d.chars().any(char::is_whitespace))
}

/// The sign-in form's CSRF defence (issue 15, finding 5), the signed double-submit: the form
/// cookie's nonce (a new one when the browser has none), and the token the form carries for it.
async fn form_token(app: &AppState, headers: &HeaderMap) -> Result<(String, String, bool), WebError> {
    let key = web(app.sign_in_key().await)?;
    let (nonce, new) = match cookie(headers, LOGIN_FORM_COOKIE) {
        Some(nonce) if !nonce.is_empty() => (nonce, false),
        _ => (random_secret(), true),
    };
    let token = key.login_form_token(&nonce);
    Ok((nonce, token, new))
}

async fn login_form(app: &AppState, headers: &HeaderMap, next: &str, username: &str, error: Option<&str>) -> Response {
    let (nonce, token, new) = match form_token(app, headers).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let page = bare(
        "Sign in",
        html! {
            div class="card" {
                h1 { span class="logo" aria-hidden="true" { "✓✓ " } "Countersign" }
                p class="muted" { "Multi Admin Approval. Sign in to continue." }
                @if let Some(error) = error { p class="alert alert-error" role="alert" id="login-error" { (error) } }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(token);
                    input type="hidden" name="next" value=(next);
                    div class="field" {
                        label for="username" { "Username" }
                        input type="text" id="username" name="username" value=(username) autocomplete="username" required autofocus;
                    }
                    div class="field" {
                        label for="password" { "Password" }
                        input type="password" id="password" name="password" autocomplete="current-password" required;
                    }
                    button type="submit" id="sign-in" { "Sign in" }
                }
                p { button type="button" class="secondary" id="passkey-sign-in" data-next=(next) { "Sign in with a passkey" } }
                p class="alert alert-error" role="alert" id="passkey-error" hidden {}
                (super::sso::sign_in_buttons(app, next))
            }
        },
    );
    let mut response = page.into_response();
    if new {
        match login_form_cookie_header(app, nonce) {
            Ok(cookie) => {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Err(e) => return WebError(e).into_response(),
        }
    }
    response
}

/// `GET /login`
pub async fn login_page(State(app): State<AppState>, headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    login_form(&app, &headers, &safe_next(q.next.as_deref()), "", None).await
}

#[derive(Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
    #[serde(default)]
    csrf: String,
}

/// Login CSRF: the post comes from this site (`Origin`, `Sec-Fetch-Site`) and carries the
/// token of this browser's form cookie.
async fn check_login_form(app: &AppState, headers: &HeaderMap, sent: &str) -> ApiResult<()> {
    refuse_cross_site(&app.config.public_url, headers)?;
    let key = app.sign_in_key().await?;
    match cookie(headers, LOGIN_FORM_COOKIE) {
        Some(nonce) if key.login_form_token_matches(&nonce, sent) => Ok(()),
        _ => Err(ApiError::new(
            ErrorCode::CsrfFailed,
            "This sign-in form has expired or did not come from Countersign. Sign in again.",
        )),
    }
}

/// `POST /login`: the same sign-in as the API (budgets, audit), then the session and device
/// cookies. There is no session yet, so the form is guarded by [`check_login_form`].
pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let address = crate::auth::client_address(app.config.trust_forwarded_for, &headers, peer);
    let device = cookie(&headers, DEVICE_COOKIE);
    let attempt = Attempt {
        username: form.username.trim(),
        password: &form.password,
        address: &address,
        user_agent: crate::auth::user_agent(&headers),
        device: device.as_deref(),
    };
    let signed_in = match check_login_form(&app, &headers, &form.csrf).await {
        Ok(()) => sign_in(&app, attempt).await,
        Err(e) => Err(e),
    };
    let cookies = signed_in.and_then(|signed_in| {
        Ok([
            session_cookie_header(&app, signed_in.session_id, SESSION_TTL / 1000)?,
            device_cookie_header(&app, signed_in.device_cookie)?,
        ])
    });
    match cookies {
        Ok(cookies) => {
            let mut response = Redirect::to(&next).into_response();
            for cookie in cookies {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => {
            let mut response = login_form(&app, &headers, &next, &form.username, Some(&e.detail)).await;
            *response.status_mut() = e.status();
            if let Some(seconds) = e.retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
            }
            response
        }
    }
}

/// `POST /logout`
pub async fn logout(State(app): State<AppState>, user: WebUser) -> WebResult {
    web(sign_out(&app, &user.principal).await)?;
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(header::SET_COOKIE, web(session_cookie_header(&app, String::new(), 0))?);
    Ok(response)
}

async fn account_page(
    app: &AppState,
    user: &WebUser,
    notice: Option<String>,
    new_token: Option<(String, String)>,
    password_error: Option<String>,
) -> WebResult {
    let tokens = web(tokens(app, &user.principal).await)?;
    let passkeys = web(crate::ops::passkeys::list(app, &user.principal).await)?;
    let Settings { email, opt_outs } = web(my_settings(app, &user.principal).await)?;
    let account = &user.principal.account;
    let single_sign_on = super::sso::account_section(app, user).await?;
    let mut response = Page::new("My account", user)
        .section("/account")
        .notice(notice)
        .content(html! {
            div class="card" { dl class="facts" {
                dt { "Username" } dd { (account.username) }
                dt { "Display name" } dd { (countersign_core::text::shown(&account.display_name)) (super::layout::name_flag(account.display_name_flag.as_deref())) }
                dt { "E-mail" } dd { (account.email.as_deref().unwrap_or("—")) }
                dt { "Permissions" } dd { (user.principal.permissions.iter().map(Permission::as_str).collect::<Vec<_>>().join(", ")) }
            } }
            (single_sign_on)
            h2 { "Notifications" }
            form class="card" method="post" action="/account/notifications" {
                (csrf_field(&user.csrf))
                div class="field" { label for="my-email" { "E-mail address" } input type="text" id="my-email" name="email" value=(email.as_deref().unwrap_or("")); }
                fieldset class="checks field" {
                    legend { "E-mail me about" }
                    @for kind in optional_kinds() {
                        label { input type="checkbox" name="receive" value=(kind) checked[!opt_outs.iter().any(|o| o == kind)]; (kind) }
                    }
                    p class="hint" { "Applied and failed changes, and anything about access policies, approvers or roles, are always sent." }
                }
                button type="submit" id="save-notifications" class="secondary" { "Save notification settings" }
            }
            h2 id="change-password" { "Change password" }
            @if account.password_hash.is_none() {
                p class="muted" id="no-password" { "This account has no password: you sign in with single sign-on." }
            } @else {
                form class="card" method="post" action="/account/password" {
                    (csrf_field(&user.csrf))
                    div class="field" {
                        label for="current" { "Current password" }
                        input type="password" id="current" name="current" autocomplete="current-password" required;
                    }
                    div class={ "field" @if password_error.is_some() { " invalid" } } {
                        label for="new" { "New password" }
                        input type="password" id="new" name="new" autocomplete="new-password" minlength="12" required;
                        p class="hint" { "At least 12 characters." }
                        @if let Some(error) = &password_error { p class="field-error" role="alert" { (error) } }
                    }
                    div class="field" {
                        label { input type="checkbox" id="revoke-tokens" name="revoke_tokens" value="on"; "Also revoke my API tokens" }
                        p class="hint" { "Your other sessions are signed out either way. Revoke the tokens too if someone else may have known your password." }
                    }
                    button type="submit" { "Change password" }
                }
            }
            h2 id="passkeys" { "Passkeys" }
            p class="muted" { "Sign in without a password, and confirm approvals with your device (R21). Adding or removing one needs your current password, unless you signed in within the last 5 minutes." }
            @if passkeys.is_empty() { p class="muted" id="no-passkeys" { "You have no passkeys." } } @else {
                table id="passkey-list" { thead { tr { th { "Name" } th { "Added" } th { "Last used" } th {} th {} } } tbody {
                    @for p in &passkeys { tr data-passkey=(p.id) {
                        td { (p.name) } td { (when(p.created_at)) } td { (p.last_used_at.map(when).unwrap_or_else(|| "never".into())) }
                        td { form method="post" action={ "/account/passkeys/" (p.id) "/rename" } class="inline" {
                            (csrf_field(&user.csrf))
                            input type="text" name="name" value=(p.name) aria-label="New name" required;
                            button type="submit" class="link" { "Rename" }
                        } }
                        td { form method="post" action={ "/account/passkeys/" (p.id) "/remove" } class="inline" {
                            (csrf_field(&user.csrf))
                            input type="password" name="current" placeholder="Current password" aria-label="Current password" autocomplete="current-password";
                            button type="submit" class="link" { "Remove" }
                        } }
                    } }
                } }
            }
            div class="card" id="add-passkey-form" {
                (csrf_field(&user.csrf))
                div class="field" { label for="passkey-name" { "Passkey name" } input type="text" id="passkey-name" name="passkey-name" placeholder="e.g. YubiKey 5C" required; }
                div class="field" {
                    label for="passkey-password" { "Current password" }
                    input type="password" id="passkey-password" autocomplete="current-password";
                    p class="hint" { "Not needed within 5 minutes of signing in." }
                }
                button type="button" class="secondary" id="add-passkey" { "Add a passkey" }
                p class="alert alert-error" role="alert" id="passkey-error" hidden {}
            }
            h2 { "Personal API tokens" }
            @if let Some((name, token)) = &new_token {
                div class="alert alert-info" role="status" {
                    p { "Your new token “" (name) "”. Copy it now: it will not be shown again." }
                    p class="token" id="new-token" { (token) }
                }
            }
            @if tokens.is_empty() { p class="muted" { "You have no tokens." } } @else {
                table { thead { tr { th { "Name" } th { "Created" } th { "Last used" } th {} } } tbody {
                    @for t in &tokens { tr {
                        td { (t.display_name) } td { (when(t.created_at)) } td { (t.last_used_at.map(when).unwrap_or_else(|| "never".into())) }
                        td { form method="post" action={ "/account/tokens/" (t.id) "/revoke" } {
                            (csrf_field(&user.csrf)) button type="submit" class="link" { "Revoke" }
                        } }
                    } }
                } }
            }
            form class="card" method="post" action="/account/tokens" {
                (csrf_field(&user.csrf))
                div class="field" { label for="token-name" { "Token name" } input type="text" id="token-name" name="name" required; }
                button type="submit" class="secondary" { "Create token" }
            }
        })
        .into_response();
    if password_error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

#[derive(Deserialize, Default)]
pub struct AccountQuery {
    passkey: Option<String>,
}

/// `GET /account`
pub async fn page(State(app): State<AppState>, user: WebUser, Query(q): Query<AccountQuery>) -> WebResult {
    let notice = (q.passkey.as_deref() == Some("added")).then(|| "Your passkey was added.".to_owned());
    account_page(&app, &user, notice, None, None).await
}

#[derive(Deserialize, Default)]
pub struct RenamePasskeyForm {
    #[serde(default)]
    name: String,
}

/// `POST /account/passkeys/{id}/rename`
pub async fn rename_passkey(
    State(app): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<RenamePasskeyForm>,
) -> WebResult {
    web(crate::ops::passkeys::rename(&app, &user.principal, &id, &form.name).await)?;
    Ok(see_other("/account#passkeys", "The passkey was renamed."))
}

#[derive(Deserialize, Default)]
pub struct RemovePasskeyForm {
    current: Option<String>,
}

/// `POST /account/passkeys/{id}/remove`
pub async fn remove_passkey(
    State(app): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<RemovePasskeyForm>,
) -> WebResult {
    let password = super::given(&form.current);
    web(crate::ops::passkeys::remove(&app, &user.principal, &id, password.as_deref()).await)?;
    Ok(see_other("/account#passkeys", "The passkey was removed."))
}

/// `GET /account/password`: where an account whose password someone else set is sent until it
/// chooses its own (R16); for everyone else, the password form of their account page.
pub async fn password_page(user: WebUser) -> WebResult {
    if !user.principal.account.password_change_required {
        return Ok(Redirect::to("/account#change-password").into_response());
    }
    first_password_page(&user, None).await
}

async fn first_password_page(user: &WebUser, error: Option<String>) -> WebResult {
    let invalid = error.is_some();
    let mut response = Page::new("Choose your password", user)
        .section("/account")
        .content(html! {
            div class="alert alert-info" role="status" {
                p { "Your password was set by someone else. Choose your own before you continue: until you do, you cannot approve requests or change anything." }
            }
            form class="card" method="post" action="/account/password" {
                (csrf_field(&user.csrf))
                div class="field" {
                    label for="current" { "Password you were given" }
                    input type="password" id="current" name="current" autocomplete="current-password" required;
                }
                div class={ "field" @if invalid { " invalid" } } {
                    label for="new" { "Your new password" }
                    input type="password" id="new" name="new" autocomplete="new-password" minlength="12" required;
                    p class="hint" { "At least 12 characters, and not the one you were given." }
                    @if let Some(error) = &error { p class="field-error" role="alert" { (error) } }
                }
                button type="submit" id="choose-password" { "Set my password" }
            }
            form method="post" action="/logout" { (csrf_field(&user.csrf)) button type="submit" class="link" { "Sign out" } }
        })
        .into_response();
    if invalid {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

#[derive(Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    /// The "also revoke my API tokens" box, sent only when ticked.
    revoke_tokens: Option<String>,
}

/// `POST /account/password`
pub async fn change_password(State(app): State<AppState>, user: WebUser, Form(form): Form<PasswordForm>) -> WebResult {
    let revoke_tokens = form.revoke_tokens.is_some();
    match change_own_password(&app, &user.principal, &form.current, &form.new, revoke_tokens).await {
        Ok(()) if revoke_tokens => Ok(see_other(
            "/account",
            "Your password was changed. Your other sessions were signed out and your API tokens revoked.",
        )),
        Ok(()) => Ok(see_other("/account", "Your password was changed. Your other sessions were signed out.")),
        Err(e) if e.status().is_client_error() && user.principal.account.password_change_required => {
            first_password_page(&user, Some(e.detail)).await
        }
        Err(e) if e.status().is_client_error() => account_page(&app, &user, None, None, Some(e.detail)).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
}

/// `POST /account/tokens`: shows the new token once, on this response only.
pub async fn create_token(State(app): State<AppState>, user: WebUser, Form(form): Form<TokenForm>) -> WebResult {
    let created = web(create_personal_token(&app, &user.principal, &form.name, None).await)?;
    account_page(&app, &user, None, Some((created.record.display_name, created.secret)), None).await
}

/// `POST /account/tokens/{id}/revoke`
pub async fn revoke_token(State(app): State<AppState>, user: WebUser, Path(id): Path<String>) -> WebResult {
    web(revoke(&app, &user.principal, &id).await)?;
    Ok(see_other("/account", "The token was revoked."))
}

#[derive(Deserialize, Default)]
pub struct NotificationForm {
    email: Option<String>,
    /// The kinds left ticked; the rest are opted out of.
    #[serde(default)]
    receive: Vec<String>,
}

/// `POST /account/notifications`
pub async fn notifications(
    State(app): State<AppState>,
    user: WebUser,
    Form(form): Form<NotificationForm>,
) -> WebResult {
    let opt_outs =
        optional_kinds().into_iter().filter(|k| !form.receive.iter().any(|r| r == k)).map(str::to_owned).collect();
    let settings = Settings { email: super::given(&form.email), opt_outs };
    web(set_my_settings(&app, &user.principal, &settings).await)?;
    Ok(see_other("/account", "Your notification settings were saved."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_sign_in_only_a_plain_local_path_is_followed() {
        for kept in ["/", "/requests", "/requests?view=all&status=approved", "/resources/app/0192-x", "/caf%C3%A9"] {
            assert_eq!(safe_next(Some(kept)), kept);
        }
        for refused in [
            "//evil.example",
            "/%09/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/%0d%0a/evil.example",
            "/\\evil.example",
            "/%5cevil.example",
            "/%2f/evil.example",
            "/%2F%2Fevil.example",
            "https://evil.example",
            "evil.example",
            "/a b",
            "/a%20b",
            "/x\u{1}",
            "/x\u{7f}",
            "/caf\u{e9}",
            "/%ff",
            "/a#b",
            "",
        ] {
            assert_eq!(safe_next(Some(refused)), "/", "{refused:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
