//! The event feed and its sinks through the API (SPEC §15).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::error::Result;
use crate::http::auth::CurrentUser;
use crate::http::extract::QueryParams;
use crate::http::openapi::Problem;
use crate::http::AppState;
use crate::service::events::{EventPage, EventsQuery, SinkList};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(events))
        .route("/api/v1/sinks", get(sinks))
}

/// The event feed after a sequence number, in order, each event chained to the one before.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventsQuery),
    responses(
        (status = 200, description = "events after `after`, in seq order", body = EventPage),
        (status = 400, description = "invalid_query: `after` negative or not a number, `limit` outside 1–1000", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "only admins and auditors read the feed", body = Problem),
    ))]
pub async fn events(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Json<EventPage>> {
    let actor = current.actor();
    actor.require_sees_all()?;
    let (after, limit) = query.parse()?;
    Ok(Json(state.service.events(&actor, after, limit).await?))
}

/// Where each configured event sink stands: delivered, pending, last error.
#[utoipa::path(get, path = "/api/v1/sinks", tag = "events",
    responses(
        (status = 200, description = "each configured sink's position and health", body = SinkList),
        (status = 401, body = Problem),
        (status = 403, description = "only admins see the sinks", body = Problem),
    ))]
pub async fn sinks(State(state): State<AppState>, current: CurrentUser) -> Result<Json<SinkList>> {
    Ok(Json(state.service.sink_statuses(&current.actor()).await?))
}
