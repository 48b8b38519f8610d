//! Operations endpoints: liveness, readiness (the store answers), metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use crate::error::Error;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "Alive", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "Ready", body = Object,
        example = json!({"status": "ready", "store": "sqlite"}))))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, Error> {
    let db = state.service.db();
    if db.ping().await {
        Ok(Json(json!({"status": "ready", "store": db.backend_name()})))
    } else {
        Err(Error::Unavailable)
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format",
        content_type = "text/plain; version=0.0.4", body = String,
        example = "# TYPE tms_set_actions_total counter\ntms_set_actions_total 3\n")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
