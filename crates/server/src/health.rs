//! Liveness, readiness and Prometheus metrics.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use countersign_core::error::ErrorCode;
use serde_json::{json, Value};

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers too.
pub async fn readyz(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    app.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "not ready");
        ApiError::new(ErrorCode::Unavailable, "the database is not reachable")
    })?;
    Ok(Json(json!({"status": "ready"})))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(app): State<AppState>) -> ApiResult<impl IntoResponse> {
    let counts = app.store.request_counts().await?;
    Ok((
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        app.metrics.render(&counts, app.store.writer_stats()),
    ))
}

/// `/healthz`, `/readyz` and `/metrics`, outside every adapter.
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}
