//! `POST /api/v1/actions`: the Set Action. The handler checks who may call
//! and that the request is well-formed; the execution service does the rest.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::error::{Error, Result};
use crate::http::api::jobs::JobEnvelope;
use crate::http::auth::CurrentUser;
use crate::http::extract::{IdempotencyKeyHeader, JsonBody};
use crate::http::openapi::Problem;
use crate::http::AppState;
use crate::service::execution::{RetryRequest, SetActionRequest, SetActionResponse};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/actions", post(set_action))
        .route("/api/v1/jobs/{job_id}/retry", post(retry))
}

/// The answer of an execution, as first sent (or replayed).
pub fn answer(answer: SetActionResponse) -> Result<Response> {
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

/// Runs an action once per `Idempotency-Key`; the same key replays the
/// first answer with `Idempotent-Replayed: true`.
#[utoipa::path(post, path = "/api/v1/actions", tag = "actions",
    request_body(content = crate::http::schema::SetActionRequestSchema, example = json!({"cluster": "sandbox", "action": "Trans-Begin",
        "cids": ["C1001", "C1002"], "confirm_duplicate": false})),
    params(("Idempotency-Key" = String, Header, example = "8e03978e-40d5-43e8-bc93-6894a57f9324",
        pattern = r#"^(?!""$)(?:[!-~]{1,255}|"[!-~]{1,255}")$"#,
        description = "1-255 visible ASCII characters: a fresh UUID per confirmed click, re-sent on retries")),
    responses(
        (status = 201, description = "Executed; the cluster said success", body = JobEnvelope),
        (status = 207, description = "Executed; the cluster applied it to some customers and not others (see the job's outcomes)", body = JobEnvelope),
        (status = 502, description = "Executed; the cluster failed, was unreachable, applied it to no customer, or the outcome is unknown", body = JobEnvelope),
        (status = 504, description = "Executed; no answer in time", body = JobEnvelope),
        (status = 400, description = "invalid_body, missing_idempotency_key, invalid_idempotency_key", body = Problem),
        (status = 401, description = "unauthenticated", body = Problem),
        (status = 403, description = "forbidden, csrf_failed", body = Problem),
        (status = 409, description = "request_in_progress (with job_id), recent_duplicate (with job_id or run_id or approval_id, user, created_at), cids_busy (with job_id, busy: the busy CIDs, and user and created_at of the job holding them)", body = Problem),
        (status = 413, description = "payload_too_large", body = Problem),
        (status = 422, description = "unknown_cluster, unknown_action, no_cids, too_many_cids, invalid_cids, \
            token_required, reason_required, idempotency_key_reused", body = Problem),
    ))]
pub async fn set_action(
    State(state): State<AppState>,
    current: CurrentUser,
    key: Result<IdempotencyKeyHeader>,
    body: Result<JsonBody<SetActionRequest>>,
) -> Result<Response> {
    let executed = state
        .service
        .execution()
        .execute(&current.user, key.map(|k| k.0), body.map(|b| b.0))
        .await?;
    answer(executed)
}

/// Runs the job's cluster and action again on its `failed` customers (and
/// its `unknown` ones with `include_unknown`), in their order, as a new job
/// with `retry_of` set: under the same key rules as `POST /api/v1/actions`,
/// without the recent-duplicate guard.
#[utoipa::path(post, path = "/api/v1/jobs/{job_id}/retry", tag = "actions",
    request_body(content = crate::http::schema::RetryRequestSchema),
    params(("job_id" = String, Path),
        ("Idempotency-Key" = String, Header, example = "8e03978e-40d5-43e8-bc93-6894a57f9324",
        pattern = r#"^(?!""$)(?:[!-~]{1,255}|"[!-~]{1,255}")$"#,
        description = "1-255 visible ASCII characters: a fresh UUID per confirmed retry")),
    responses(
        (status = 201, description = "Executed; the cluster said success", body = JobEnvelope),
        (status = 207, description = "Executed; some customers ok, some not", body = JobEnvelope),
        (status = 502, description = "Executed; the cluster failed or applied it to none", body = JobEnvelope),
        (status = 504, description = "Executed; no answer in time", body = JobEnvelope),
        (status = 400, description = "invalid_body, missing_idempotency_key, invalid_idempotency_key", body = Problem),
        (status = 403, description = "forbidden (an auditor), csrf_failed", body = Problem),
        (status = 404, description = "not_found (also another user's job, for an operator)", body = Problem),
        (status = 409, description = "request_in_progress (with job_id), cids_busy (with job_id, busy: the busy CIDs, and user and created_at of the job holding them)", body = Problem),
        (status = 422, description = "nothing_to_retry, reason_required, token_required, idempotency_key_reused", body = Problem),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(job_id): Path<String>,
    key: Result<IdempotencyKeyHeader>,
    body: Result<JsonBody<RetryRequest>>,
) -> Result<Response> {
    let executed = state
        .service
        .execution()
        .retry(&current.user, &job_id, key.map(|k| k.0), body.map(|b| b.0))
        .await?;
    answer(executed)
}
