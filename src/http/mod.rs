//! The HTTP surface: the JSON API, the web console, operations endpoints and
//! the sandbox, assembled into one router over one shared state.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::error::InternalErrorReport;
use crate::service::Service;

pub mod api;
pub mod auth;
pub mod extract;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod schema;

/// Request bodies above this are refused with `413`.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Settings the HTTP layer needs.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Mark cookies `Secure` (behind a TLS proxy).
    pub secure_cookies: bool,
}

/// Everything a handler may use; cheap to clone. Handlers parse, call the
/// service and render.
#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub settings: Arc<HttpSettings>,
    pub metrics: PrometheusHandle,
    /// New tokens and generated passwords waiting for their page (shown
    /// after a redirect, never in a URL).
    pub shown_once: Arc<pages::shown_once::ShownOnce>,
}

/// The whole application: API, operations endpoints, and the sandbox when given.
pub fn router(state: AppState, sandbox: Option<Router>) -> Router {
    let mut app = Router::new()
        .merge(api::router())
        .merge(ops::router())
        .merge(openapi::router())
        .merge(pages::router())
        .fallback(pages::fallback)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            pages::common::keep_navigation,
        ))
        .with_state(state);
    if let Some(sandbox) = sandbox {
        app = app.nest("/sandbox", sandbox);
    }
    app.layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(log_internal_errors))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cache-control"),
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(pages::CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(TraceLayer::new_for_http().on_failure(log_transport_failure))
}

/// What the request trace logs as a failure: only a response that broke
/// on the way (its body failed). A 5xx answer is logged once where it is
/// decided: an internal error by `log_internal_errors`, a job the cluster
/// failed or did not answer by the Set Action's own `FAILED` / `TIMED_OUT`
/// line (with its job, cluster, action and error), the sandbox's simulated
/// failures not at all. Without this each failed action logged the same
/// failure three times (its 502, the sandbox's 500, and its own line).
fn log_transport_failure(
    class: ServerErrorsFailureClass,
    latency: std::time::Duration,
    _span: &tracing::Span,
) {
    if let ServerErrorsFailureClass::Error(error) = class {
        tracing::error!(%error, latency_ms = latency.as_millis() as u64, "response failed");
    }
}

/// Logs each internal error once, inside the request's span; the client saw
/// only "internal error".
async fn log_internal_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(InternalErrorReport(message)) = response.extensions().get::<InternalErrorReport>() {
        tracing::error!(%method, %path, error = %message, "internal error");
    }
    response.into_response()
}
