//! `/api/v1/me/passkeys`, `/api/v1/auth/passkey/*` and `/api/v1/accounts/{id}/passkeys`:
//! passkeys (issue 17). The ceremonies' `options` go to `navigator.credentials.create/get`
//! (binary fields as base64url), and the browser's answer comes back as
//! `PublicKeyCredential.toJSON()` gives it.

use super::answers::{Account, SignedIn};
use super::{respond, JustificationBody};
use crate::auth::{client_address, device_cookie_header, refuse_cross_site, session_cookie_header, SESSION_TTL};
use crate::error::{ApiError, ApiResult};
use crate::extract::{justification, ApiJson, OptionalJson, Principal};
use crate::ops::passkeys as ops;
use crate::ops::Outcome;
use crate::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use countersign_store::PasskeyRecord;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::SocketAddr;
use utoipa::ToSchema;

/// One passkey (never the credential).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Passkey {
    pub id: String,
    pub name: String,
    /// base64url of the WebAuthn credential id.
    pub credential_id: String,
    /// The public key stored assertions verify against (`es256:<hex>` or `ed25519:<hex>`).
    pub public_key: String,
    pub created_at: String,
    /// R16: who registered it (absent: the owner).
    pub created_by: Option<String>,
    pub last_used_at: Option<String>,
}

impl From<&PasskeyRecord> for Passkey {
    fn from(p: &PasskeyRecord) -> Self {
        Passkey {
            id: p.id.clone(),
            name: p.name.clone(),
            credential_id: p.credential_id.clone(),
            public_key: p.public_key.clone(),
            created_at: crate::time::format(p.created_at),
            created_by: p.created_by.clone().filter(|by| by != &p.account_id),
            last_used_at: p.last_used_at.map(crate::time::format),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyList {
    pub value: Vec<Passkey>,
}

/// A ceremony begun: its id, to finish it with, and the options for the browser.
#[derive(Serialize, ToSchema)]
pub struct Ceremony {
    pub ceremony: String,
    #[schema(value_type = Object)]
    pub options: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BeginRegistrationBody {
    /// What to call the passkey ("YubiKey 5C", "laptop").
    name: String,
    /// The fresh check: the current password, unless this session signed in within 5 minutes.
    current_password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FinishBody {
    ceremony: String,
    /// The browser's `PublicKeyCredential`, as JSON.
    #[schema(value_type = Object)]
    credential: Value,
    /// For a passkey registered for another account, when the change is held (R9).
    justification: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RenameBody {
    name: String,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FreshCheckBody {
    /// The fresh check: the current password, unless this session signed in within 5 minutes.
    current_password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RemovePasswordBody {
    current_password: String,
}

fn credential<T: serde::de::DeserializeOwned>(value: Value) -> ApiResult<T> {
    serde_json::from_value(value).map_err(|e| ApiError::validation(format!("credential is not a WebAuthn answer: {e}")))
}

/// `GET /api/v1/me/passkeys`
#[utoipa::path(get, path = "/me/passkeys", tag = "passkeys", summary = "My passkeys",
    responses((status = 200, description = "my live passkeys", body = PasskeyList)))]
pub async fn list(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<PasskeyList>> {
    let passkeys = ops::list(&app, &principal).await?;
    Ok(Json(PasskeyList { value: passkeys.iter().map(Passkey::from).collect() }))
}

/// `POST /api/v1/me/passkeys/register`: begins a registration, after the fresh check.
#[utoipa::path(post, path = "/me/passkeys/register", tag = "passkeys",
    summary = "Begin registering a passkey for my account (fresh check: currentPassword, or a sign-in within 5 minutes)",
    request_body = BeginRegistrationBody,
    responses((status = 200, description = "options for navigator.credentials.create", body = Ceremony)))]
pub async fn begin_registration(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<BeginRegistrationBody>,
) -> ApiResult<Json<Ceremony>> {
    let begun = ops::begin_own_registration(&app, &principal, &body.name, body.current_password.as_deref()).await?;
    Ok(Json(Ceremony { ceremony: begun.ceremony, options: begun.options }))
}

/// `POST /api/v1/me/passkeys`: finishes a registration.
#[utoipa::path(post, path = "/me/passkeys", tag = "passkeys", summary = "Finish registering a passkey for my account",
    request_body = FinishBody,
    responses((status = 201, description = "registered", body = Passkey)))]
pub async fn finish_registration(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<FinishBody>,
) -> ApiResult<Response> {
    let response = credential(body.credential)?;
    let record = ops::finish_own_registration(&app, &principal, &body.ceremony, &response).await?;
    Ok((StatusCode::CREATED, Json(Passkey::from(&record))).into_response())
}

/// `PATCH /api/v1/me/passkeys/{id}`: renames one.
#[utoipa::path(patch, path = "/me/passkeys/{id}", tag = "passkeys", summary = "Rename one of my passkeys",
    params(("id" = String, Path, description = "the passkey's id")),
    request_body = RenameBody,
    responses((status = 200, description = "renamed", body = Passkey)))]
pub async fn rename(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenameBody>,
) -> ApiResult<Json<Passkey>> {
    let record = ops::rename(&app, &principal, &id, &body.name).await?;
    Ok(Json(Passkey::from(&record)))
}

/// `DELETE /api/v1/me/passkeys/{id}`: removes one, after the fresh check.
#[utoipa::path(delete, path = "/me/passkeys/{id}", tag = "passkeys",
    summary = "Remove one of my passkeys (fresh check: currentPassword, or a sign-in within 5 minutes)",
    params(("id" = String, Path, description = "the passkey's id")),
    request_body = Option<FreshCheckBody>,
    responses((status = 204, description = "removed")))]
pub async fn remove(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<FreshCheckBody>,
) -> ApiResult<StatusCode> {
    ops::remove(&app, &principal, &id, body.current_password.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/me/password`: makes my account passwordless (I must hold a passkey).
#[utoipa::path(delete, path = "/me/password", tag = "passkeys",
    summary = "Remove my password: sign in with passkeys only (needs a registered passkey)",
    request_body = RemovePasswordBody,
    responses((status = 204, description = "the account is passwordless")))]
pub async fn remove_password(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<RemovePasswordBody>,
) -> ApiResult<StatusCode> {
    ops::remove_password(&app, &principal, &body.current_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/auth/passkey`: begins a passkey sign-in (no username).
#[utoipa::path(post, path = "/auth/passkey", tag = "auth", summary = "Begin a passkey sign-in (discoverable credentials)",
    security(()),
    responses((status = 200, description = "options for navigator.credentials.get", body = Ceremony)))]
pub async fn begin_sign_in(State(app): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Ceremony>> {
    refuse_cross_site(&app.config.public_url, &headers)?;
    let begun = ops::begin_sign_in(&app).await?;
    let options = serde_json::to_value(&begun.options).map_err(|e| ApiError::validation(e.to_string()))?;
    Ok(Json(Ceremony { ceremony: begun.ceremony, options }))
}

/// `POST /api/v1/auth/passkey/finish`: signs in with the browser's assertion.
#[utoipa::path(post, path = "/auth/passkey/finish", tag = "auth", summary = "Finish a passkey sign-in; sets the session cookie",
    security(()),
    request_body = FinishBody,
    responses((status = 200, description = "signed in; the session cookie is set", body = SignedIn)))]
pub async fn finish_sign_in(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<FinishBody>,
) -> ApiResult<Response> {
    refuse_cross_site(&app.config.public_url, &headers)?;
    let address = client_address(app.config.trust_forwarded_for, &headers, peer);
    let response = credential(body.credential)?;
    let signed_in =
        ops::finish_sign_in(&app, &body.ceremony, &response, &address, crate::auth::user_agent(&headers)).await?;
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

/// `GET /api/v1/accounts/{id}/passkeys`
#[utoipa::path(get, path = "/accounts/{id}/passkeys", tag = "directory", summary = "An account's passkeys",
    params(("id" = String, Path, description = "the account's id")),
    responses((status = 200, description = "its live passkeys", body = PasskeyList)))]
pub async fn list_for(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<PasskeyList>> {
    let passkeys = ops::list_for(&app, &principal, &id).await?;
    Ok(Json(PasskeyList { value: passkeys.iter().map(Passkey::from).collect() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BeginForBody {
    name: String,
}

/// `POST /api/v1/accounts/{id}/passkeys/register`: begins registering a passkey for another
/// account (the caller holds the authenticator).
#[utoipa::path(post, path = "/accounts/{id}/passkeys/register", tag = "directory",
    summary = "Begin registering a passkey for another account (finished through the gate: R9, R19)",
    params(("id" = String, Path, description = "the account's id")),
    request_body = BeginForBody,
    responses((status = 200, description = "options for navigator.credentials.create", body = Ceremony)))]
pub async fn begin_registration_for(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BeginForBody>,
) -> ApiResult<Json<Ceremony>> {
    let begun = ops::begin_registration_for(&app, &principal, &id, &body.name).await?;
    Ok(Json(Ceremony { ceremony: begun.ceremony, options: begun.options }))
}

/// `POST /api/v1/accounts/{id}/passkeys`: finishes it; held if the account is an approver (R9).
#[utoipa::path(post, path = "/accounts/{id}/passkeys", tag = "directory",
    summary = "Finish registering a passkey for another account; held if it is an approver (R9)",
    params(("id" = String, Path, description = "the account's id")),
    request_body = FinishBody,
    responses(
        (status = 204, description = "registered"),
        (status = 202, description = "held for approval (R1): the request", body = super::answers::Request)
    ))]
pub async fn finish_registration_for(
    State(app): State<AppState>,
    principal: Principal,
    Path(_id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<FinishBody>,
) -> ApiResult<Response> {
    let response = credential(body.credential)?;
    let justification = justification(body.justification, &headers);
    match ops::finish_registration_for(&app, &principal, &body.ceremony, &response, justification).await? {
        Outcome::Applied { .. } | Outcome::Unchanged { .. } => Ok(StatusCode::NO_CONTENT.into_response()),
        held => respond(&app, &principal, held).await,
    }
}

/// `DELETE /api/v1/accounts/{id}/passkeys/{passkeyId}`: held if the account is an approver (R9).
#[utoipa::path(delete, path = "/accounts/{id}/passkeys/{passkeyId}", tag = "directory",
    summary = "Remove another account's passkey; held if it is an approver (R9)",
    params(("id" = String, Path, description = "the account's id"), ("passkeyId" = String, Path, description = "the passkey's id")),
    request_body = Option<JustificationBody>,
    responses(
        (status = 204, description = "removed"),
        (status = 202, description = "held for approval (R1): the request", body = super::answers::Request)
    ))]
pub async fn remove_for(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, passkey_id)): Path<(String, String)>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification, &headers);
    match ops::remove_for(&app, &principal, &id, &passkey_id, justification).await? {
        Outcome::Applied { .. } | Outcome::Unchanged { .. } => Ok(StatusCode::NO_CONTENT.into_response()),
        held => respond(&app, &principal, held).await,
    }
}
