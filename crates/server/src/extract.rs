//! Request extractors that answer bad input with problem+json: JSON bodies (unknown fields
//! refused), query strings, ids, and the authenticated caller.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use countersign_core::eligibility::{AccountKind, Candidate};
use countersign_core::error::ErrorCode;
use countersign_core::limits::{self, Unread};
use countersign_core::permission::{self, Permission, PermissionSet};
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::visibility::Viewer;
use countersign_core::DomainError;
use countersign_store::{AccountAccess, AccountRecord, Actor, ClientInfo};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// A JSON body. Malformed JSON is `malformed_json`; a body past the input limit (too deep, too
/// long, NUL; `core::limits`) is `input_limit`; a body that does not fit the shape (unknown or
/// missing fields, wrong types) is `validation_failed`; larger than `body_limit` is 413.
pub struct ApiJson<T>(pub T);

fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    // The limit is checked on the body as sent, whatever shape it is read into next, so that
    // every path (REST, Graph) refuses the same documents.
    limits::parse(bytes).map_err(|unread| match unread {
        Unread::Malformed(e) => {
            ApiError::new(ErrorCode::MalformedJson, format!("the request body is not valid JSON: {e}"))
        }
        Unread::Limit(limit) => limit.into(),
    })?;
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::validation(format!("the request body does not fit: {e}")),
        _ => ApiError::new(ErrorCode::MalformedJson, format!("the request body is not valid JSON: {e}")),
    })
}

async fn body_bytes(req: Request, state: &AppState) -> ApiResult<Bytes> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, "the request body is larger than the server accepts")
        } else {
            ApiError::new(ErrorCode::MalformedBody, rejection.body_text())
        }
    })
}

/// A JSON endpoint takes only `application/json` (or a `+json` type): a cross-site form can send
/// `text/plain` without asking, but never JSON (issue 15, finding 5: login CSRF).
fn require_json(headers: &HeaderMap) -> ApiResult<()> {
    let media = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some(m) if m == "application/json" || (m.starts_with("application/") && m.ends_with("+json")) => Ok(()),
        _ => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "this endpoint takes a JSON body: send it with Content-Type: application/json",
        )),
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> ApiResult<Self> {
        require_json(req.headers())?;
        let bytes = body_bytes(req, state).await?;
        parse_body(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be absent (DELETE and the request actions): empty means `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> ApiResult<Self> {
        let json = require_json(req.headers());
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        json?;
        parse_body(&bytes).map(OptionalJson)
    }
}

/// A query string; unknown parameters are refused.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        let query = parts.uri.query().unwrap_or_default();
        // A parameter's text reaches the database as a bound value: no NUL (PostgreSQL cannot
        // hold one) nor other control character.
        for (name, value) in serde_urlencoded_compat::<Vec<(String, String)>>(query)? {
            limits::text("query string", &name)?;
            limits::text(&format!("query parameter '{}'", countersign_core::text::shown(&name)), &value)?;
        }
        serde_urlencoded_compat(query).map(ApiQuery)
    }
}

fn serde_urlencoded_compat<T: DeserializeOwned>(query: &str) -> ApiResult<T> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}").parse().map_err(|_| ApiError::validation("bad query string"))?,
    )
    .map(|q| q.0)
    .map_err(|e| ApiError::validation(format!("bad query parameter: {}", e.body_text())))
}

/// Ids are UUIDs; anything else is refused before it reaches the database.
pub fn parse_id(raw: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::new(ErrorCode::InvalidId, format!("'{raw}' is not a valid id")))
}

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    Session { id_hash: String },
    Token { hash: String },
}

/// The authenticated caller, with the permissions and groups they hold right now.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: AccountRecord,
    pub permissions: PermissionSet,
    pub group_ids: Vec<String>,
    pub credential: Credential,
    /// R16: who controls the credential the caller is using.
    pub via: Vec<String>,
}

impl Principal {
    /// The caller with the groups and permissions they hold now (read with the credential).
    pub fn new(access: AccountAccess, credential: Credential) -> Principal {
        for unknown in access.permissions.unknown() {
            tracing::warn!(
                account = %access.account.id,
                permission = unknown,
                "a role grants a permission this version does not know; it is ignored"
            );
        }
        Principal {
            account: access.account,
            permissions: access.permissions,
            group_ids: access.group_ids,
            credential,
            via: access.via,
        }
    }

    /// The caller as the store's actor, carrying who controls the credential in use (R16).
    pub fn actor(&self) -> Actor {
        Actor { via: self.via.clone(), ..self.account.actor() }
    }

    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.has(permission)
    }

    /// Permission checks come before MAA: without the permission, 403, not a request.
    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        Ok(self.permissions.require(permission).map_err(DomainError::from)?)
    }

    /// What proposing `operation` on `resource_type` needs (core's `may_propose`), as a 403.
    pub fn require_may_propose(&self, resource_type: ResourceType, operation: Operation) -> ApiResult<()> {
        Ok(permission::may_propose(&self.permissions, resource_type, operation).map_err(DomainError::from)?)
    }

    /// The caller as a viewer of requests (who sees which request).
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer { id: &self.account.id, permissions: &self.permissions, group_ids: &self.group_ids }
    }

    pub fn candidate(&self) -> Candidate {
        Candidate {
            id: self.account.id.clone(),
            kind: self.account.kind,
            enabled: self.account.enabled,
            password_change_required: self.account.password_change_required,
            group_ids: self.group_ids.clone(),
            permissions: self.permissions.clone(),
        }
    }

    pub fn is_human(&self) -> bool {
        self.account.kind == AccountKind::Human
    }
}

pub const SESSION_COOKIE: &str = "countersign_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    let jar = axum_extra::extract::CookieJar::from_headers(headers);
    jar.get(SESSION_COOKIE).map(|c| c.value().to_owned())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> ApiResult<Self> {
        let now = app.now();
        let (access, credential) = if let Some(token) = bearer(&parts.headers) {
            let hash = crate::auth::sha256_hex(token);
            let client = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| {
                let address = crate::auth::client_address(app.config.trust_forwarded_for, &parts.headers, *peer);
                ClientInfo::new(&address, crate::auth::user_agent(&parts.headers))
            });
            let access = app
                .store
                .account_for_token(&hash, client.as_ref(), now)
                .await?
                .ok_or_else(|| ApiError::unauthenticated("the bearer token is not valid"))?;
            (access, Credential::Token { hash })
        } else if let Some(cookie) = session_cookie(&parts.headers) {
            let id_hash = crate::auth::sha256_hex(&cookie);
            let session = app
                .store
                .session(&id_hash, now)
                .await?
                .ok_or_else(|| ApiError::unauthenticated("your session has ended; sign in again"))?;
            // CSRF: a cookie-authenticated write must echo the session's token in a header,
            // which a cross-site form cannot do.
            if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
                let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
                if !bool::from(sent.as_bytes().ct_eq(session.csrf_token.as_bytes())) {
                    return Err(ApiError::new(
                        ErrorCode::CsrfFailed,
                        "this write needs the X-CSRF-Token header from sign-in",
                    ));
                }
            }
            (session.access, Credential::Session { id_hash })
        } else {
            return Err(ApiError::unauthenticated("sign in, or send Authorization: Bearer <token>"));
        };
        let path = parts.extensions.get::<OriginalUri>().map_or(parts.uri.path(), |uri| uri.path());
        if access.account.password_change_required && !ALLOWED_BEFORE_PASSWORD_CHANGE.contains(&path) {
            return Err(DomainError::PasswordChangeRequired.into());
        }
        Ok(Principal::new(access, credential))
    }
}

/// R16: what an account whose password someone else set may do before choosing its own: see
/// who it is, change the password, sign out.
const ALLOWED_BEFORE_PASSWORD_CHANGE: [&str; 3] = ["/api/v1/me", "/api/v1/me/password", "/api/v1/auth/logout"];

/// The justification of a change: the body's `justification`, else the `X-Justification` header.
pub fn justification(body: Option<String>, headers: &HeaderMap) -> Option<String> {
    body.or_else(|| headers.get("x-justification").and_then(|v| v.to_str().ok()).map(str::to_owned))
}

/// What a JSON body extractor ([`ApiJson`]) makes of `bytes`, without a request around them:
/// for the fuzz targets (`fuzz/`), which hold that it never answers a 5xx.
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    parse_body(bytes)
}
