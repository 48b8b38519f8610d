//! What a user can pick: clusters (by name) and actions. The views are the
//! wire shape, built here from the configured `Cluster` and `Action`: the
//! domain types carry no wire concerns, and a view has no field for a
//! cluster's URL or token.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::action::Action;
use crate::domain::cluster::Cluster;
use crate::http::auth::CurrentUser;
use crate::http::openapi::Problem;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/catalog", get(catalog))
}

/// What `GET /api/v1/catalog` shows of an action.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ActionView {
    pub name: String,
    pub code: i64,
    pub description: String,
    pub max_cids: usize,
    pub reason_required: bool,
}

impl From<&Action> for ActionView {
    fn from(action: &Action) -> Self {
        ActionView {
            name: action.name.clone(),
            code: action.code,
            description: action.description.clone(),
            max_cids: action.max_cids,
            reason_required: action.reason_required,
        }
    }
}

/// What `GET /api/v1/catalog` shows of a cluster (never the URL or token).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClusterView {
    pub name: String,
    pub label: String,
    pub needs_token: bool,
}

impl From<&Cluster> for ClusterView {
    fn from(cluster: &Cluster) -> Self {
        ClusterView {
            name: cluster.name.clone(),
            label: cluster.label.clone(),
            needs_token: cluster.token.is_none(),
        }
    }
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

/// The clusters and actions this server is configured with.
#[utoipa::path(get, path = "/api/v1/catalog", tag = "catalog",
    responses((status = 200, body = Catalog), (status = 401, body = Problem)))]
pub async fn catalog(State(state): State<AppState>, _current: CurrentUser) -> Json<Catalog> {
    let execution = state.service.execution();
    let clusters = execution.clusters().iter().map(ClusterView::from).collect();
    let actions = execution.catalog().iter().map(ActionView::from).collect();
    Json(Catalog { clusters, actions })
}
