//! What a user can pick: clusters (by name) and actions.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::action::ActionView;
use crate::domain::cluster::ClusterView;
use crate::http::auth::CurrentUser;
use crate::http::openapi::Problem;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/catalog", get(catalog))
}

/// What a user can pick.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"clusters": [{"name": "sandbox", "label": "Sandbox (simulated)", "needs_token": false}],
    "actions": [{"name": "Trans-Begin", "code": 1, "description": "Begin the customer's transition",
        "max_cids": 500, "reason_required": false}]}))]
pub struct Catalog {
    pub clusters: Vec<ClusterView>,
    pub actions: Vec<ActionView>,
}

#[utoipa::path(get, path = "/api/v1/catalog", tag = "catalog",
    responses((status = 200, body = Catalog), (status = 401, body = Problem)))]
pub async fn catalog(State(state): State<AppState>, _current: CurrentUser) -> Json<Catalog> {
    let execution = state.service.execution();
    let clusters = execution.clusters().iter().map(|c| c.view()).collect();
    let actions = execution.catalog().iter().map(|a| a.view()).collect();
    Json(Catalog { clusters, actions })
}
