//! The web console: server-rendered pages over the same state and rules as the
//! JSON API. Templates are compile-time checked and escape everything; the
//! few scripts and the stylesheet are embedded in the binary.

use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::AppState;
use crate::error::Error;

pub mod account;
pub mod approvals;
pub mod assets;
mod chart;
pub mod common;
pub mod customer_set;
pub mod customers;
pub mod duplicates;
pub mod job;
pub mod jobs;
pub mod login;
pub mod run;
pub mod runs;
pub mod shown_once;
pub mod sso;
pub mod users;

/// Every page, and the embedded assets under `/static/`.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(login::router())
        .merge(sso::router())
        .merge(customer_set::router())
        .merge(jobs::router())
        .merge(duplicates::router())
        .merge(job::router())
        .merge(runs::router())
        .merge(run::router())
        .merge(approvals::router())
        .merge(customers::router())
        .merge(account::router())
        .merge(users::router())
        .merge(assets::router())
}

/// `Content-Security-Policy` of every response: no inline script or style,
/// no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Unknown paths: an HTML page for a browser, the problem document for the API.
pub async fn fallback(uri: Uri, headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html && !uri.path().starts_with("/api/") {
        common::PageError(Error::NotFound).into_response()
    } else {
        Error::NotFound.into_response()
    }
}
