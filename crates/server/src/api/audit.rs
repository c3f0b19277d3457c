//! `/api/v1/audit`: the audit log and its chain check (R13).

use super::answers::{AuditEntry, CheckpointPage, VerifyReport};
use super::Page;
use crate::error::ApiResult;
use crate::extract::{ApiQuery, Principal};
use crate::ops::audit::{self as ops, AuditQuery};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    category: Option<String>,
    /// An account id or username.
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/audit?category=&actor=&action=&target=&since=&until=&cursor=&limit=`, newest first.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    summary = "The audit log, newest first",
    params(AuditParams),
    responses(
        (status = 200, description = "a page of entries", body = Page<AuditEntry>)
    )
)]
pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let query = AuditQuery {
        category: q.category,
        actor: q.actor,
        action: q.action,
        target: q.target,
        since: q.since.as_deref().map(crate::time::parse).transpose()?,
        until: q.until.as_deref().map(crate::time::parse).transpose()?,
        cursor: q.cursor,
        limit: q.limit,
    };
    let paged = ops::entries(&app, &principal, query).await?;
    Ok(Json(Page::of(paged, |e| AuditEntry::from(e))))
}

/// `GET /api/v1/audit/verify`: walks the chain; names the first broken entry.
#[utoipa::path(
    get,
    path = "/audit/verify",
    tag = "audit",
    summary = "Verify the audit log's hash chain",
    responses(
        (status = 200, description = "the chain check; names the first broken entry", body = VerifyReport)
    )
)]
pub async fn verify(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<VerifyReport>> {
    Ok(Json(VerifyReport::from(ops::verify(&app, &principal).await?)))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckpointParams {
    /// Only checkpoints made after this time (RFC 3339): the `at` of the last one you hold.
    after: Option<String>,
    /// At most this many, oldest first (1–500, 500 by default).
    limit: Option<i64>,
}

/// `GET /api/v1/audit/checkpoints?after=&limit=`: the signed checkpoints and the public key
/// that verifies them, for `countersign audit verify --public-key … --checkpoints FILE`.
#[utoipa::path(
    get,
    path = "/audit/checkpoints",
    tag = "audit",
    summary = "Signed checkpoints of the audit chain, and the key that verifies them",
    params(CheckpointParams),
    responses(
        (status = 200, description = "checkpoints, oldest first", body = CheckpointPage)
    )
)]
pub async fn checkpoints(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<CheckpointParams>,
) -> ApiResult<Json<CheckpointPage>> {
    let after = q.after.as_deref().map(crate::time::parse).transpose()?;
    let (public_key, checkpoints) = ops::checkpoints(&app, &principal, after, q.limit).await?;
    Ok(Json(CheckpointPage::new(public_key, &checkpoints)))
}
