//! `GET /api/v1/jobs/export`: every job matching the listing's filters, as
//! CSV or NDJSON, streamed page by page (by `audit::export`, shared with
//! `tms-dashboard jobs export`) so memory stays flat however large the audit is.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::audit::export::{export_stream, ExportFormat};
use crate::domain::job::JobStatus;
use crate::error::{Error, Result};
use crate::http::api::jobs::JobsQuery;
use crate::http::auth::CurrentUser;
use crate::http::extract::QueryParams;
use crate::http::openapi::Problem;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/jobs/export", get(export))
}

/// The export's format and the listing's filters (`limit` and `cursor` are ignored).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ExportQuery {
    /// `csv` (the default) or `ndjson`.
    pub format: Option<String>,
    #[serde(flatten)]
    pub filters: JobsQuery,
}

/// The export formats, as the OpenAPI document names them.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only describes the `format` parameter.
pub enum ExportFormatName {
    Csv,
    Ndjson,
}

#[utoipa::path(get, path = "/api/v1/jobs/export", tag = "jobs", params(
        ("format" = Option<ExportFormatName>, Query, description = "csv (the default) or ndjson"),
        // The listing's filters; its `limit` and `cursor` do not apply to an export.
        ("user" = Option<String>, Query, description = "Only this user's jobs (operators may name only themselves)."),
        ("action" = Option<String>, Query),
        ("cluster" = Option<String>, Query),
        ("status" = Option<JobStatus>, Query),
        ("cid" = Option<String>, Query, description = "Jobs touching this customer ID."),
        ("since" = Option<String>, Query, format = DateTime, description = "RFC 3339, inclusive."),
        ("until" = Option<String>, Query, format = DateTime, description = "RFC 3339, exclusive."),
        ("retried" = Option<bool>, Query, description = "Only jobs that answered repeated requests, or only those that did not."),
        ("reason" = Option<String>, Query, description = "Jobs whose reason contains this text, ignoring case."),
    ),
    responses(
        (status = 200, description = "Every matching job, newest first, streamed", content(
            (String = "text/csv", example = "job_id,created_at,finished_at,user,cluster,action,action_code,status,cid_count,cids,upstream_status,duration_ms,error,duplicate_of\r\n"),
            (String = "application/x-ndjson", example = "{\"job_id\": \"0193f1c2-5a10-7c3e-9a51-2f4b8c1d0e11\", \"status\": \"succeeded\"}\n"),
        )),
        (status = 400, description = "invalid_query", body = Problem),
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
    let filters = JobsQuery {
        limit: None,
        cursor: None,
        ..query.filters
    };
    let page = filters.parse_for(&current.user)?;
    let disposition = format!("attachment; filename=\"jobs.{}\"", format.file_extension());
    let disposition = HeaderValue::from_str(&disposition).map_err(|e| Error::Internal(e.into()))?;
    let body = Body::from_stream(export_stream(&state.db, page.filter, format));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
