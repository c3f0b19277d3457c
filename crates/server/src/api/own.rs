//! `/api/v1/auth/*`, `/api/v1/me` and `/api/v1/tokens`: what every signed-in person does for
//! themselves.

use super::answers::{
    Account, CreatedToken, Identity, IdentityList, Me, Session, SessionList, SignedIn, Token, TokenList,
};
use crate::auth::{
    client_address, cookie, device_cookie_header, refuse_cross_site, session_cookie_header, DEVICE_COOKIE, SESSION_TTL,
};
use crate::error::ApiResult;
use crate::extract::{ApiJson, Principal};
use crate::ops::own as ops;
use crate::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoginBody {
    username: String,
    password: String,
    /// The `deviceToken` of an earlier sign-in as this account (or send the device cookie):
    /// it gives this client an attempt budget of its own, so guesses by others do not lock it out.
    device_token: Option<String>,
}

/// `POST /api/v1/auth/login`: `{username, password, deviceToken?}` → `{account, csrfToken,
/// deviceToken}`, the session cookie and the device cookie.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    summary = "Sign in with username and password; sets the session and device cookies and returns the CSRF and device tokens",
    request_body = LoginBody,
    security(()),
    responses(
        (status = 200, description = "signed in; the session cookie is set", body = SignedIn)
    )
)]
pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    refuse_cross_site(&app.config.public_url, &headers)?;
    let address = client_address(app.config.trust_forwarded_for, &headers, peer);
    let device = body.device_token.or_else(|| cookie(&headers, DEVICE_COOKIE));
    let attempt = ops::Attempt {
        username: &body.username,
        password: &body.password,
        address: &address,
        user_agent: crate::auth::user_agent(&headers),
        device: device.as_deref(),
    };
    let signed_in = ops::sign_in(&app, attempt).await?;
    let session = session_cookie_header(&app, signed_in.session_id, SESSION_TTL / 1000)?;
    let device = device_cookie_header(&app, signed_in.device_cookie.clone())?;
    let body = SignedIn {
        account: Account::from(&signed_in.account),
        csrf_token: signed_in.csrf_token,
        device_token: signed_in.device_cookie,
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session);
    response.headers_mut().append(header::SET_COOKIE, device);
    Ok(response)
}

/// `POST /api/v1/auth/logout`: ends this session.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    summary = "End this session",
    responses(
        (status = 204, description = "signed out; the cookie is cleared")
    )
)]
pub async fn logout(State(app): State<AppState>, principal: Principal) -> ApiResult<Response> {
    ops::sign_out(&app, &principal).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie_header(&app, String::new(), 0)?);
    Ok(response)
}

/// `GET /api/v1/me`: who am I, with my permissions and groups.
#[utoipa::path(
    get,
    path = "/me",
    tag = "auth",
    summary = "Who am I, with permissions and groups",
    responses(
        (status = 200, description = "the caller", body = Me)
    )
)]
pub async fn me(principal: Principal) -> Json<Me> {
    Json(Me {
        account: Account::from(&principal.account),
        permissions: principal.permissions.iter().collect(),
        group_ids: principal.group_ids,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
    /// Also revoke every API token of the account (default false). Other sessions always end.
    #[serde(default)]
    revoke_tokens: bool,
}

/// `POST /api/v1/me/password`
#[utoipa::path(
    post,
    path = "/me/password",
    tag = "auth",
    summary = "Change my own password (with the current one); ends my other sessions, and my API tokens if revokeTokens",
    request_body = PasswordBody,
    responses(
        (status = 204, description = "changed")
    )
)]
pub async fn change_password(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    ops::change_password(&app, &principal, &body.current_password, &body.new_password, body.revoke_tokens).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenBody {
    display_name: String,
    expires_at: Option<String>,
}

/// `GET /api/v1/tokens`: my API tokens (never the secrets).
#[utoipa::path(
    get,
    path = "/tokens",
    tag = "auth",
    summary = "My personal API tokens (never the secrets)",
    responses(
        (status = 200, description = "my tokens", body = TokenList)
    )
)]
pub async fn list_tokens(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<TokenList>> {
    let tokens = ops::tokens(&app, &principal).await?;
    Ok(Json(TokenList { value: tokens.iter().map(Token::from).collect() }))
}

/// `POST /api/v1/tokens`: a personal API token, shown this once.
#[utoipa::path(
    post,
    path = "/tokens",
    tag = "auth",
    summary = "Create a personal API token (shown once)",
    request_body = TokenBody,
    responses(
        (status = 201, description = "the token, shown this once", body = CreatedToken)
    )
)]
pub async fn create_token(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let expires_at = body.expires_at.as_deref().map(crate::time::parse).transpose()?;
    let created = ops::create_token(&app, &principal, &body.display_name, expires_at).await?;
    let body = CreatedToken {
        id: created.record.id,
        display_name: created.record.display_name,
        token: created.secret,
        expires_at: expires_at.map(crate::time::format),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// `DELETE /api/v1/tokens/{id}`: revokes one of my tokens.
#[utoipa::path(
    delete,
    path = "/tokens/{id}",
    tag = "auth",
    summary = "Revoke one of my tokens",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 204, description = "revoked")
    )
)]
pub async fn delete_token(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ops::revoke_token(&app, &principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me/sessions`: my live sessions, the current one marked.
#[utoipa::path(
    get,
    path = "/me/sessions",
    tag = "auth",
    summary = "My live sessions (where and with what each was opened, when last used)",
    responses(
        (status = 200, description = "my sessions", body = SessionList)
    )
)]
pub async fn list_sessions(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<SessionList>> {
    let sessions = ops::sessions(&app, &principal).await?;
    Ok(Json(SessionList { value: sessions.iter().map(Session::from).collect() }))
}

/// `DELETE /api/v1/me/sessions/{id}`: ends one of my sessions.
#[utoipa::path(
    delete,
    path = "/me/sessions/{id}",
    tag = "auth",
    summary = "End one of my sessions",
    params(("id" = String, Path, description = "the session's public id")),
    responses(
        (status = 204, description = "ended")
    )
)]
pub async fn end_session(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ops::end_session(&app, &principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me/identities`: the single sign-on identities linked to my account. (Linking is
/// a browser flow at the provider: *My account* → *Single sign-on*.)
#[utoipa::path(
    get,
    path = "/me/identities",
    tag = "auth",
    summary = "My linked single sign-on identities",
    responses(
        (status = 200, description = "my identities", body = IdentityList)
    )
)]
pub async fn list_identities(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<IdentityList>> {
    let identities = crate::ops::sso::identities(&app, &principal).await?;
    Ok(Json(IdentityList { value: identities.iter().map(Identity::from).collect() }))
}

/// `DELETE /api/v1/me/identities/{id}`: unlinks one of my identities.
#[utoipa::path(
    delete,
    path = "/me/identities/{id}",
    tag = "auth",
    summary = "Unlink one of my single sign-on identities",
    params(("id" = String, Path, description = "the linked identity's id")),
    responses(
        (status = 204, description = "unlinked")
    )
)]
pub async fn unlink_identity(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    crate::ops::sso::unlink(&app, &principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
