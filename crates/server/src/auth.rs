//! Sign-in, sessions, personal API tokens and password hashing (Argon2id).

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Credential, Principal, SESSION_COOKIE};
use crate::AppState;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use countersign_core::eligibility::AccountKind;
use countersign_core::{validate, Millis};
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::OnceLock;

pub const SESSION_TTL: Millis = 12 * 60 * 60 * 1000;
/// Sign-in rate limit: failures counted over this window...
pub const FAILURE_WINDOW: Millis = 15 * 60 * 1000;
/// ...at most this many per username...
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// ...and this many per client address.
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// 32 random bytes, URL-safe base64.
pub fn random_secret() -> String {
    let mut bytes = [0_u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new API token; `cs_` makes it recognisable to secret scanners.
pub fn new_token() -> String {
    format!("cs_{}", random_secret())
}

pub fn hash_password(password: &str) -> ApiResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::validation(format!("cannot hash this password: {e}")))
}

pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    // An unknown account still pays for one verification, so timing does not reveal it.
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default());
    let hash = hash.unwrap_or(dummy);
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_client_address_is_the_peer_unless_the_balancer_is_trusted() {
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let sent = headers(&["203.0.113.9, 198.51.100.7"]);
        assert_eq!(client_address(false, &sent, peer), "10.0.0.5", "forwarded headers are ignored by default");
        assert_eq!(client_address(true, &sent, peer), "198.51.100.7", "the entry the balancer appended");
        assert_eq!(client_address(true, &headers(&["1.1.1.1", "192.0.2.4"]), peer), "192.0.2.4");
        assert_eq!(client_address(true, &headers(&["not an address"]), peer), "10.0.0.5");
        assert_eq!(client_address(true, &HeaderMap::new(), peer), "10.0.0.5");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

fn session_cookie(value: String, secure: bool, max_age_seconds: i64) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(time::Duration::seconds(max_age_seconds))
        .build()
}

/// The client's address: the TCP peer, or, when the operator says a balancer sits in front
/// (`trust_forwarded_for`), the last `X-Forwarded-For` entry, the one that balancer appended.
/// Earlier entries are whatever the client sent and are never trusted.
pub fn client_address(trust_forwarded_for: bool, headers: &HeaderMap, peer: SocketAddr) -> String {
    let forwarded = trust_forwarded_for
        .then(|| {
            headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?.rsplit(',').next().map(str::trim)
        })
        .flatten()
        .and_then(|last| last.parse::<std::net::IpAddr>().ok());
    forwarded.unwrap_or(peer.ip()).to_string()
}

/// A new session: the account, the session id for the cookie, and the CSRF token.
pub struct SignedIn {
    pub account: countersign_store::AccountRecord,
    pub session_id: String,
    pub csrf_token: String,
}

/// Password sign-in, rate-limited per account and per address, audited either way (R13).
pub async fn sign_in(app: &AppState, username: &str, password: &str, address: &str) -> ApiResult<SignedIn> {
    let now = app.now();
    let (by_user, by_address) = app.store.recent_login_failures(username, address, now - FAILURE_WINDOW).await?;
    if by_user >= MAX_FAILURES_PER_ACCOUNT || by_address >= MAX_FAILURES_PER_ADDRESS {
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many failed sign-ins. Wait 15 minutes and try again.",
        );
        err.retry_after = Some((FAILURE_WINDOW / 1000) as u64);
        return Err(err);
    }
    let account = app.store.account_by_username(username).await?;
    let verified = verify_password(password, account.as_ref().and_then(|a| a.password_hash.as_deref()));
    let account = match account {
        Some(a) if verified && a.enabled && a.kind == AccountKind::Human => a,
        Some(a) if verified && !a.enabled => {
            app.store.record_login_failure(username, address, "disabled", now).await?;
            return Err(ApiError::unauthenticated("This account is disabled."));
        }
        _ => {
            app.store.record_login_failure(username, address, "bad credentials", now).await?;
            return Err(ApiError::unauthenticated("The username or password is wrong."));
        }
    };
    let session_id = random_secret();
    let csrf_token = random_secret();
    app.store.create_session(&account.id, &sha256_hex(&session_id), &csrf_token, now, now + SESSION_TTL).await?;
    app.store.record_login_success(&account, address, "password", now).await?;
    Ok(SignedIn { account, session_id, csrf_token })
}

/// The `Set-Cookie` value for a session (an empty value with max-age 0 ends it).
pub fn session_cookie_header(
    app: &AppState,
    session_id: String,
    max_age_seconds: i64,
) -> ApiResult<axum::http::HeaderValue> {
    session_cookie(session_id, app.config.secure_cookies, max_age_seconds)
        .to_string()
        .parse()
        .map_err(|_| ApiError::validation("bad cookie"))
}

/// `POST /api/v1/auth/login`: `{username, password}` → `{account, csrfToken}` and the cookie.
pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let address = client_address(app.config.trust_forwarded_for, &headers, peer);
    let signed_in = sign_in(&app, &body.username, &body.password, &address).await?;
    let cookie = session_cookie_header(&app, signed_in.session_id, SESSION_TTL / 1000)?;
    let mut response = Json(json!({ "account": signed_in.account, "csrfToken": signed_in.csrf_token })).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// `POST /api/v1/auth/logout`: ends this session.
pub async fn logout(State(app): State<AppState>, principal: Principal) -> ApiResult<Response> {
    if let Credential::Session { id_hash } = &principal.credential {
        app.store.delete_session(id_hash).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie_header(&app, String::new(), 0)?);
    Ok(response)
}

/// `GET /api/v1/me`: who am I, with my permissions and groups.
pub async fn me(principal: Principal) -> Json<serde_json::Value> {
    Json(json!({
        "account": principal.account,
        "permissions": principal.permissions.iter().collect::<Vec<_>>(),
        "groupIds": principal.group_ids,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// R9's exception: the caller changes their own password, proving they know the current one.
pub async fn change_own_password(app: &AppState, principal: &Principal, current: &str, new: &str) -> ApiResult<()> {
    if !verify_password(current, principal.account.password_hash.as_deref()) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "wrong_password", "The current password is wrong."));
    }
    validate::password(new)?;
    let hash = hash_password(new)?;
    app.store.change_own_password(&principal.actor(), &hash, app.now()).await?;
    Ok(())
}

/// `POST /api/v1/me/password`
pub async fn change_password(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    change_own_password(&app, &principal, &body.current_password, &body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A personal API token for the caller; the secret is returned this once.
pub async fn create_personal_token(
    app: &AppState,
    principal: &Principal,
    display_name: &str,
    expires_at: Option<countersign_core::Millis>,
) -> ApiResult<(countersign_store::TokenRecord, String)> {
    if !principal.is_human() {
        return Err(ApiError::forbidden("service accounts cannot create tokens"));
    }
    let display_name = validate::display_name("displayName", display_name)?;
    let now = app.now();
    if expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::validation("expiresAt must be in the future"));
    }
    let token = new_token();
    let record =
        app.store.create_token(&principal.actor(), &display_name, &sha256_hex(&token), expires_at, now).await?;
    Ok((record, token))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenBody {
    display_name: String,
    expires_at: Option<String>,
}

/// `GET /api/v1/tokens`: my API tokens (never the secrets).
pub async fn list_tokens(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<serde_json::Value>> {
    let tokens = app.store.tokens_of(&principal.account.id).await?;
    Ok(Json(json!({ "value": tokens })))
}

/// `POST /api/v1/tokens`: a personal API token, shown this once.
pub async fn create_token(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let expires_at = body.expires_at.as_deref().map(crate::time::parse).transpose()?;
    let (record, token) = create_personal_token(&app, &principal, &body.display_name, expires_at).await?;
    let body = json!({
        "id": record.id,
        "displayName": record.display_name,
        "token": token,
        "expiresAt": expires_at.map(crate::time::format),
    });
    Ok((StatusCode::CREATED, Json(body)))
}

/// `DELETE /api/v1/tokens/{id}`: revokes one of my tokens.
pub async fn delete_token(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = crate::extract::parse_id(&id)?;
    app.store.delete_token(&principal.actor(), &principal.account.id, &id, app.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
