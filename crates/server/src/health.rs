//! Liveness, readiness and Prometheus metrics.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use countersign_core::error::ErrorCode;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", summary = "Liveness", security(()),
    responses((status = 200, description = "the process answers", body = ref("#/components/schemas/Status"))))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers too.
#[utoipa::path(get, path = "/readyz", tag = "ops", summary = "Readiness: the database answers", security(()),
    responses((status = 200, description = "ready", body = ref("#/components/schemas/Status"))))]
pub async fn readyz(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    app.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "not ready");
        ApiError::new(ErrorCode::Unavailable, "the database is not reachable")
    })?;
    Ok(Json(json!({"status": "ready"})))
}

/// `GET /metrics`: Prometheus text format, on the main listener only for a scraper holding
/// `metrics_token` (the counts describe the tenant's approval traffic). Without a token set
/// the main listener does not serve it; a separate listener (`metrics_router`) does.
#[utoipa::path(get, path = "/metrics", tag = "ops", summary = "Prometheus metrics (bearer metrics_token)",
    security(("metricsToken" = [])),
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let Some(expected) = &app.config.metrics_token else {
        return Err(ApiError::not_found("metrics are served on the metrics listener, or here with a metrics token"));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
        return Err(ApiError::unauthenticated("/metrics needs the metrics token as a bearer token"));
    }
    exposition(&app).await
}

async fn exposition(app: &AppState) -> ApiResult<Response> {
    let counts = app.store.request_counts().await?;
    let mut behind = Vec::new();
    if !app.config.audit_sinks.is_empty() {
        let head = app.store.audit_head_seq().await?;
        let positions = app.store.audit_export_positions().await?;
        for sink in &app.config.audit_sinks {
            let accepted = positions.iter().find(|(name, _)| *name == sink.name).map_or(0, |(_, seq)| *seq);
            behind.push((sink.name.clone(), head - accepted));
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        app.metrics.render(&counts, &behind, app.store.writer_stats()),
    )
        .into_response())
}

/// The separate metrics listener (`metrics_listen`): only `/metrics`, without a token; bind it
/// where only the scraper reaches, as Teleport's diagnostic address is.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(|State(app): State<AppState>| async move { exposition(&app).await }))
        .fallback(|| async { ApiError::not_found("this listener serves only /metrics") })
        .with_state(state)
}

/// `/healthz`, `/readyz` and `/metrics`, outside every adapter.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}
