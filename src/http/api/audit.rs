//! The duplicate audit through the API, for admins and auditors.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::error::Result;
use crate::http::auth::CurrentUser;
use crate::http::extract::QueryParams;
use crate::http::openapi::Problem;
use crate::http::AppState;
use crate::service::audit::{DuplicateReport, DuplicatesQuery};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit/duplicates", get(duplicates))
}

/// Groups of jobs that look like one click recorded twice (same user, cluster, action and set of CIDs, within the window).
#[utoipa::path(get, path = "/api/v1/audit/duplicates", tag = "audit", params(DuplicatesQuery),
    responses(
        (status = 200, description = "groups of jobs that look like one click recorded several times", body = DuplicateReport),
        (status = 400, description = "invalid_query", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "only admins and auditors see the duplicate audit", body = Problem),
    ))]
pub async fn duplicates(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<DuplicatesQuery>,
) -> Result<Json<DuplicateReport>> {
    let actor = current.actor();
    actor.require_sees_all()?;
    let params = query.parse()?;
    let include_confirmed = query.include_confirmed()?;
    Ok(Json(
        state
            .service
            .duplicate_report(&actor, &params, include_confirmed)
            .await?,
    ))
}
