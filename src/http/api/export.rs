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

#[utoipa::path(get, path = "/api/v1/jobs/export", tag = "jobs", params(("format" = Option<String>, Query, description = "csv (the default) or ndjson"), JobsQuery),
    responses(
        (status = 200, description = "text/csv or application/x-ndjson, streamed", content_type = "text/csv"),
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
