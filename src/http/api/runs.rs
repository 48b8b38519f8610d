//! Runs through the API (SPEC §13): queue one, read them, their customers,
//! and pause, resume, cancel or retry one. The rules are the service's
//! (`service::runs`); the dispatcher sends the batches.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::run::{Batch, Run, RunCommand};
use crate::error::{Error, Result};
use crate::http::api::customers::csv_response;
use crate::http::auth::CurrentUser;
use crate::http::extract::{IdempotencyKeyHeader, JsonBody, QueryParams};
use crate::http::openapi::Problem;
use crate::http::schema::{BatchSchema, RunCustomerSchema, RunSchema};
use crate::http::AppState;
use crate::service::jobs::PageParams;
use crate::service::runs::{
    parse_run_outcome, Queued, RunAnswer, RunCustomerView, RunFilterParams, RunRequest,
    RunRetryRequest,
};

/// Bodies of `POST /api/v1/runs` may be this large (100,000 CIDs and more);
/// the 256 KiB limit holds everywhere else.
pub const MAX_RUN_BODY_BYTES: usize = 4 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/runs",
            post(create)
                .layer(DefaultBodyLimit::max(MAX_RUN_BODY_BYTES))
                .get(list),
        )
        .route("/api/v1/runs/{run_id}", get(show))
        .route("/api/v1/runs/{run_id}/customers", get(customers))
        .route("/api/v1/runs/{run_id}/pause", post(pause))
        .route("/api/v1/runs/{run_id}/resume", post(resume))
        .route("/api/v1/runs/{run_id}/cancel", post(cancel))
        .route("/api/v1/runs/{run_id}/retry", post(retry))
}

/// `{"run": Run}`.
#[derive(Serialize, ToSchema)]
pub struct RunEnvelope {
    #[schema(value_type = RunSchema)]
    pub run: Run,
}

/// A run with its batches, as `GET /api/v1/runs/{run_id}` answers.
#[derive(Serialize, ToSchema)]
pub struct RunWithBatches {
    #[schema(value_type = RunSchema)]
    pub run: Run,
    /// Its batches in order, each with its job once sent.
    #[schema(value_type = Vec<BatchSchema>)]
    pub batches: Vec<Batch>,
}

/// A page of runs, newest first.
#[derive(Serialize, ToSchema)]
pub struct RunList {
    #[schema(value_type = Vec<RunSchema>)]
    pub runs: Vec<Run>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A run's customers, in the order of its request.
#[derive(Serialize, ToSchema)]
pub struct RunCustomers {
    pub run_id: uuid::Uuid,
    #[schema(value_type = Vec<RunCustomerSchema>)]
    pub customers: Vec<RunCustomerView>,
}

/// The listing's filters and page.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunListQuery {
    #[serde(flatten)]
    pub filters: RunFilterParams,
    #[serde(flatten)]
    pub page: PageParams,
}

/// `?outcome=` and `?format=` of a run's customers.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunCustomersQuery {
    /// Only customers with this outcome: ok, failed, unknown, pending or not_run.
    #[param(pattern = "^(ok|failed|unknown|pending|not_run)?$")]
    #[serde(default)]
    pub outcome: Option<String>,
    /// `json` (the default) or `csv` (columns `cid,outcome,error,job_id`).
    #[param(pattern = "^(json|csv)?$")]
    #[serde(default)]
    pub format: Option<String>,
}

fn accepted(answer: RunAnswer) -> Result<Response> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&match answer.created {
            Queued::Run(id) => format!("/api/v1/runs/{id}"),
            Queued::Approval(id) => format!("/api/v1/approvals/{id}"),
        })
        .map_err(|e| Error::Internal(e.into()))?,
    );
    if answer.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok((StatusCode::ACCEPTED, headers, answer.body).into_response())
}

/// Queues a run once per `Idempotency-Key`; the same key replays the first
/// answer with `Idempotent-Replayed: true`. The run, its batches and their
/// CIDs are committed before the answer.
#[utoipa::path(post, path = "/api/v1/runs", tag = "runs",
    request_body = crate::http::schema::RunRequestSchema,
    params(("Idempotency-Key" = String, Header, example = "8e03978e-40d5-43e8-bc93-6894a57f9324",
        pattern = r#"^(?!""$)(?:[!-~]{1,255}|"[!-~]{1,255}")$"#,
        description = "1-255 visible ASCII characters: a fresh UUID per confirmed run, re-sent on retries")),
    responses(
        (status = 202, description = "Queued (or scheduled); `Location` names the run", body = RunEnvelope),
        (status = 400, description = "invalid_body (also batch_size or run_at out of range), missing_idempotency_key, invalid_idempotency_key", body = Problem),
        (status = 403, description = "forbidden (an auditor), csrf_failed", body = Problem),
        (status = 409, description = "recent_duplicate (with run_id, user, created_at)", body = Problem),
        (status = 413, description = "payload_too_large: a body over 4 MiB", body = Problem),
        (status = 422, description = "unknown_cluster, unknown_action, no_cids, too_many_cids (max = max_run_cids), invalid_cids (at most 1,000 listed, invalid_count their total), token_required, reason_required, idempotency_key_reused", body = Problem),
    ))]
pub async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    key: Result<IdempotencyKeyHeader>,
    body: Result<JsonBody<RunRequest>>,
) -> Result<Response> {
    let answer = state
        .service
        .runs()
        .create(&current.user, key.map(|k| k.0), body.map(|b| b.0))
        .await?;
    accepted(answer)
}

/// Runs newest first, filtered; operators see their own.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs",
    params(RunFilterParams, PageParams),
    responses(
        (status = 200, body = RunList),
        (status = 400, description = "invalid_query", body = Problem),
        (status = 403, description = "forbidden (an operator naming another user)", body = Problem),
    ))]
pub async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<RunListQuery>,
) -> Result<Json<RunList>> {
    let page = state
        .service
        .runs()
        .list(&current.actor(), &query.filters, &query.page)
        .await?;
    Ok(Json(RunList {
        runs: page.runs,
        next_cursor: page.next_cursor,
    }))
}

/// One run with its batches and where each customer stands.
#[utoipa::path(get, path = "/api/v1/runs/{run_id}", tag = "runs",
    params(("run_id" = String, Path)),
    responses(
        (status = 200, body = RunWithBatches),
        (status = 404, description = "not_found (also another user's run, for an operator)", body = Problem),
    ))]
pub async fn show(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(run_id): Path<String>,
) -> Result<Json<RunWithBatches>> {
    let detail = state.service.runs().get(&current.actor(), &run_id).await?;
    Ok(Json(RunWithBatches {
        run: detail.run,
        batches: detail.batches,
    }))
}

/// A run's customers as CSV: `cid,outcome,error,job_id`, CRLF line ends.
pub fn run_customers_csv(customers: &[RunCustomerView]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let csv_error = |e: csv::Error| Error::Internal(anyhow::anyhow!("Failed to write CSV: {e}"));
    w.write_record(["cid", "outcome", "error", "job_id"])
        .map_err(csv_error)?;
    for c in customers {
        let job_id = c.job_id.map(|j| j.to_string()).unwrap_or_default();
        w.write_record([
            c.cid.as_str(),
            c.outcome.as_str(),
            c.error.as_deref().unwrap_or_default(),
            job_id.as_str(),
        ])
        .map_err(csv_error)?;
    }
    w.into_inner()
        .map_err(|e| Error::Internal(anyhow::anyhow!("Failed to write CSV: {e}")))
}

/// Each customer of the run with its outcome and job (JSON or CSV).
#[utoipa::path(get, path = "/api/v1/runs/{run_id}/customers", tag = "runs",
    params(("run_id" = String, Path), RunCustomersQuery),
    responses(
        (status = 200, description = "Each customer's outcome, in request order", content(
            (RunCustomers = "application/json"),
            (String = "text/csv", example = "cid,outcome,error,job_id\r\nC1001,ok,,01a23be6-3992-7f0c-a005-fb3634c6ea8d\r\nC1002,not_run,,\r\n"),
        )),
        (status = 400, description = "invalid_query", body = Problem),
        (status = 404, description = "not_found (also another user's run, for an operator)", body = Problem),
    ))]
pub async fn customers(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(run_id): Path<String>,
    QueryParams(query): QueryParams<RunCustomersQuery>,
) -> Result<Response> {
    let csv = match query.format.as_deref().map(str::trim) {
        None | Some("" | "json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(Error::InvalidQuery(format!(
                "format: {other:?} is not json or csv"
            )))
        }
    };
    let outcome = parse_run_outcome(query.outcome.as_deref())?;
    let runs = state.service.runs();
    let customers = runs.customers(&current.actor(), &run_id, outcome).await?;
    let run_id = crate::domain::run::RunId::parse(&run_id).ok_or(Error::NotFound)?;
    if csv {
        return csv_response(
            &format!("run-{run_id}-customers.csv"),
            run_customers_csv(&customers)?,
        );
    }
    Ok(Json(RunCustomers {
        run_id: run_id.as_uuid(),
        customers,
    })
    .into_response())
}

async fn command(
    state: AppState,
    current: CurrentUser,
    run_id: String,
    command: RunCommand,
) -> Result<Json<RunEnvelope>> {
    let run = state
        .service
        .runs()
        .command(&current.actor(), &run_id, command)
        .await?;
    Ok(Json(RunEnvelope { run }))
}

/// Sends no new batch until resumed; batches already sent finish.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/pause", tag = "runs",
    params(("run_id" = String, Path)),
    responses(
        (status = 200, body = RunEnvelope),
        (status = 403, description = "forbidden (not the run's user or an admin), csrf_failed", body = Problem),
        (status = 404, description = "not_found (also another user's run, for an operator)", body = Problem),
        (status = 409, description = "invalid_state: only a queued or running run pauses", body = Problem),
    ))]
pub async fn pause(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(run_id): Path<String>,
) -> Result<Json<RunEnvelope>> {
    command(state, current, run_id, RunCommand::Pause).await
}

/// Sends the batches of a paused run again.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/resume", tag = "runs",
    params(("run_id" = String, Path)),
    responses(
        (status = 200, body = RunEnvelope),
        (status = 403, description = "forbidden (not the run's user or an admin), csrf_failed", body = Problem),
        (status = 404, description = "not_found (also another user's run, for an operator)", body = Problem),
        (status = 409, description = "invalid_state: only a paused run resumes", body = Problem),
    ))]
pub async fn resume(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(run_id): Path<String>,
) -> Result<Json<RunEnvelope>> {
    command(state, current, run_id, RunCommand::Resume).await
}

/// Sends no new batch again: the unsent batches are `cancelled`, their
/// customers `not_run`; batches already sent finish.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/cancel", tag = "runs",
    params(("run_id" = String, Path)),
    responses(
        (status = 200, body = RunEnvelope),
        (status = 403, description = "forbidden (not the run's user or an admin), csrf_failed", body = Problem),
        (status = 404, description = "not_found (also another user's run, for an operator)", body = Problem),
        (status = 409, description = "invalid_state: a cancelled or finished run", body = Problem),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(run_id): Path<String>,
) -> Result<Json<RunEnvelope>> {
    command(state, current, run_id, RunCommand::Cancel).await
}

/// A new run over the run's failed customers (with `include_unknown`, also
/// its unknown and not run ones), `retry_of` set.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/retry", tag = "runs",
    request_body = crate::http::schema::RunRetryRequestSchema,
    params(("run_id" = String, Path),
        ("Idempotency-Key" = String, Header, example = "8e03978e-40d5-43e8-bc93-6894a57f9324",
            pattern = r#"^(?!""$)(?:[!-~]{1,255}|"[!-~]{1,255}")$"#,
            description = "1-255 visible ASCII characters: a fresh UUID per confirmed retry")),
    responses(
        (status = 202, description = "The new run, queued", body = RunEnvelope),
        (status = 400, description = "invalid_body, missing_idempotency_key, invalid_idempotency_key", body = Problem),
        (status = 403, description = "forbidden (not the run's user or an admin), csrf_failed", body = Problem),
        (status = 404, description = "not_found (also another user's run, for an operator)", body = Problem),
        (status = 422, description = "nothing_to_retry, reason_required, token_required, idempotency_key_reused", body = Problem),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(run_id): Path<String>,
    key: Result<IdempotencyKeyHeader>,
    body: Result<JsonBody<RunRetryRequest>>,
) -> Result<Response> {
    let answer = state
        .service
        .runs()
        .retry(&current.user, &run_id, key.map(|k| k.0), body.map(|b| b.0))
        .await?;
    accepted(answer)
}
