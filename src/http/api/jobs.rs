//! The audit through the API: jobs listed with filters and a cursor, one
//! job by id, and every matching job exported. The filters, their parsing
//! and who sees what are the service's (`service::jobs`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::job::Job;
use crate::error::{Error, Result};
use crate::http::auth::CurrentUser;
use crate::http::extract::QueryParams;
use crate::http::openapi::Problem;
use crate::http::schema::JobSchema;
use crate::http::AppState;
use crate::service::audit::export::ExportFormat;
use crate::service::jobs::{JobFilterParams, PageParams};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", get(list))
        .route("/api/v1/jobs/export", get(export))
        .route("/api/v1/jobs/{job_id}", get(show))
}

/// `{"job": Job}`.
#[derive(Serialize, ToSchema)]
pub struct JobEnvelope {
    #[schema(value_type = JobSchema)]
    pub job: Job,
}

/// One page of jobs, newest first.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    #[schema(value_type = Vec<JobSchema>)]
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The query of a listing: the filters and the page.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(flatten)]
    pub filters: JobFilterParams,
    #[serde(flatten)]
    pub page: PageParams,
}

/// Jobs newest first, filtered; operators see their own.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobFilterParams, PageParams),
    responses(
        (status = 200, body = JobList),
        (status = 400, description = "invalid_query", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "an operator asked for another user's jobs", body = Problem),
    ))]
pub async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<JobList>> {
    let page = state
        .service
        .list_jobs(&current.actor(), &query.filters, &query.page)
        .await?;
    Ok(Json(JobList {
        jobs: page.jobs,
        next_cursor: page.next_cursor,
    }))
}

/// One job with every field.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}", tag = "jobs", params(("job_id" = String, Path)),
    responses(
        (status = 200, body = JobEnvelope),
        (status = 401, body = Problem),
        (status = 404, description = "not_found (also another user's job, for an operator)", body = Problem),
    ))]
pub async fn show(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(job_id): Path<String>,
) -> Result<Json<JobEnvelope>> {
    let job = state.service.get_job(&current.actor(), &job_id).await?;
    Ok(Json(JobEnvelope { job }))
}

/// The export's format, the listing's filters, and the paging parameters,
/// which the export refuses (it streams every matching job).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ExportQuery {
    /// `csv` (the default) or `ndjson`.
    pub format: Option<String>,
    #[serde(flatten)]
    pub filters: JobFilterParams,
    #[serde(flatten)]
    pub page: PageParams,
}

/// The export formats, as the OpenAPI document names them.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only describes the `format` parameter.
pub enum ExportFormatName {
    Csv,
    Ndjson,
}

/// Every job matching the filters, streamed as CSV or NDJSON.
#[utoipa::path(get, path = "/api/v1/jobs/export", tag = "jobs", params(
        ("format" = Option<ExportFormatName>, Query, description = "csv (the default) or ndjson"),
        JobFilterParams,
    ),
    responses(
        (status = 200, description = "Every matching job, newest first, streamed", content(
            (String = "text/csv", example = "job_id,created_at,finished_at,user,cluster,action,action_code,status,cid_count,cids,upstream_status,duration_ms,error,duplicate_of\r\n"),
            (String = "application/x-ndjson", example = "{\"job_id\": \"0193f1c2-5a10-7c3e-9a51-2f4b8c1d0e11\", \"status\": \"succeeded\"}\n"),
        )),
        (status = 400, description = "invalid_query (also `limit` or `cursor`: the export has no pages)", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "an operator asked for another user's jobs", body = Problem),
    ))]
#[tracing::instrument(skip_all, fields(user = %current.user.username))]
pub async fn export(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<ExportQuery>,
) -> Result<Response> {
    let format = match query.format.as_deref().map(str::trim) {
        None | Some("") => ExportFormat::Csv,
        Some(other) => ExportFormat::parse(other).ok_or_else(|| {
            Error::InvalidQuery(format!("format: {other:?} is not csv or ndjson"))
        })?,
    };
    query.page.refuse("the export")?;
    let stream = state
        .service
        .export(&current.actor(), &query.filters, format)?;
    let disposition = format!("attachment; filename=\"jobs.{}\"", format.file_extension());
    let disposition = HeaderValue::from_str(&disposition).map_err(|e| Error::Internal(e.into()))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
