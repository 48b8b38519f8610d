//! `POST /api/v1/actions`: the Set Action. The handler checks who may call
//! and that the request is well-formed; the execution service does the rest.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::error::{Error, Result};
use crate::execution::SetActionRequest;
use crate::http::auth::CurrentUser;
use crate::http::extract::{IdempotencyKeyHeader, JsonBody};
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/actions", post(set_action))
}

async fn set_action(
    State(state): State<AppState>,
    current: CurrentUser,
    key: Result<IdempotencyKeyHeader>,
    body: Result<JsonBody<SetActionRequest>>,
) -> Result<Response> {
    current.require(|role| role.can_execute())?;
    let JsonBody(request) = body?;
    let IdempotencyKeyHeader(key) = key?;
    let answer = state
        .execution
        .execute(&current.user, &key, request)
        .await?;
    let status = StatusCode::from_u16(answer.status).map_err(|e| Error::Internal(e.into()))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if answer.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok((status, headers, answer.body).into_response())
}
