//! The JSON API under `/api/v1`, one module per resource.

use axum::Router;

use super::AppState;

pub mod actions;
pub mod approvals;
pub mod audit;
pub mod catalog;
pub mod customers;
pub mod events;
pub mod jobs;
pub mod runs;
pub mod session;
pub mod tokens;
pub mod users;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(session::router())
        .merge(catalog::router())
        .merge(actions::router())
        .merge(jobs::router())
        .merge(customers::router())
        .merge(runs::router())
        .merge(approvals::router())
        .merge(users::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(events::router())
}
