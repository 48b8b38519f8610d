//! What a user can pick: clusters (by name) and actions.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::http::auth::CurrentUser;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/catalog", get(catalog))
}

async fn catalog(State(state): State<AppState>, _current: CurrentUser) -> Json<Value> {
    let clusters: Vec<_> = state
        .execution
        .clusters()
        .iter()
        .map(|c| c.view())
        .collect();
    let actions: Vec<_> = state.execution.catalog().iter().map(|a| a.view()).collect();
    Json(json!({ "clusters": clusters, "actions": actions }))
}
