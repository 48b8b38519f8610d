//! `GET /api/v1/jobs/export`: every job matching the listing's filters, as
//! CSV or NDJSON, streamed page by page so memory stays flat however large
//! the audit is.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::stream;
use serde::Deserialize;

use crate::domain::job::{format_time, Job};
use crate::error::{Error, Result};
use crate::http::api::jobs::{JobsPage, JobsQuery};
use crate::http::auth::CurrentUser;
use crate::http::extract::QueryParams;
use crate::http::openapi::Problem;
use crate::http::AppState;
use crate::store::jobs::JobCursor;

/// Jobs fetched from the store per chunk of the stream.
const PAGE: u32 = 500;

/// The CSV header, in the order of the specification.
pub const CSV_COLUMNS: [&str; 14] = [
    "job_id",
    "created_at",
    "finished_at",
    "user",
    "cluster",
    "action",
    "action_code",
    "status",
    "cid_count",
    "cids",
    "upstream_status",
    "duration_ms",
    "error",
    "duplicate_of",
];

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

/// The two formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    fn parse(s: Option<&str>) -> Result<Self> {
        match s.map(str::trim).unwrap_or("") {
            "" | "csv" => Ok(Self::Csv),
            "ndjson" => Ok(Self::Ndjson),
            other => Err(Error::InvalidQuery(format!(
                "format: {other:?} is not csv or ndjson"
            ))),
        }
    }
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
    let format = Format::parse(query.format.as_deref())?;
    let filters = JobsQuery {
        limit: None,
        cursor: None,
        ..query.filters
    };
    let page = filters.parse_for(&current.user)?;
    let (content_type, filename) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "jobs.csv"),
        Format::Ndjson => ("application/x-ndjson", "jobs.ndjson"),
    };
    let body = Body::from_stream(job_stream(state, page, format));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .map_err(|e| Error::Internal(e.into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Where the stream stands: the header still to send, the next cursor, done.
struct Progress {
    state: AppState,
    page: JobsPage,
    format: Format,
    header_sent: bool,
    cursor: Option<JobCursor>,
    done: bool,
}

/// One chunk per page of the store, newest job first.
fn job_stream(
    state: AppState,
    page: JobsPage,
    format: Format,
) -> impl futures::Stream<Item = Result<Bytes, Error>> {
    let start = Progress {
        state,
        page,
        format,
        header_sent: false,
        cursor: None,
        done: false,
    };
    stream::unfold(start, |mut p| async move {
        if p.done {
            return None;
        }
        let mut chunk = String::new();
        if !p.header_sent {
            p.header_sent = true;
            if p.format == Format::Csv {
                chunk.push_str(&CSV_COLUMNS.join(","));
                chunk.push_str("\r\n");
            }
        }
        let jobs = match p.state.db.list_jobs(&p.page.filter, p.cursor, PAGE).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(error = %e, "export stopped: the store failed");
                p.done = true;
                return Some((Err(e), p));
            }
        };
        if jobs.len() < PAGE as usize {
            p.done = true;
        }
        p.cursor = jobs.last().map(|j| JobCursor {
            created_at: j.created_at,
            job_id: j.job_id.as_uuid(),
        });
        for job in &jobs {
            match p.format {
                Format::Csv => push_csv_row(&mut chunk, job),
                Format::Ndjson => {
                    if let Ok(line) = serde_json::to_string(job) {
                        chunk.push_str(&line);
                        chunk.push('\n');
                    }
                }
            }
        }
        Some((Ok(Bytes::from(chunk)), p))
    })
}

/// One CSV record (RFC 4180: fields quoted when needed, CRLF); a null is an
/// empty field and CIDs are separated by spaces.
pub fn push_csv_row(out: &mut String, job: &Job) {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let fields = [
        job.job_id.to_string(),
        format_time(&job.created_at),
        opt(job.finished_at.as_ref().map(format_time)),
        job.user.clone(),
        job.cluster.clone(),
        job.action.clone(),
        job.action_code.to_string(),
        job.status.as_str().to_owned(),
        job.cid_count.to_string(),
        job.cids.join(" "),
        opt(job.upstream_status.map(|s| s.to_string())),
        opt(job.duration_ms.map(|d| d.to_string())),
        opt(job.error.clone()),
        opt(job.duplicate_of.map(|d| d.to_string())),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_csv_field(out, field);
    }
    out.push_str("\r\n");
}

fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_separators_or_quotes_are_quoted() {
        let mut out = String::new();
        push_csv_field(&mut out, "plain");
        out.push('|');
        push_csv_field(&mut out, "a, \"b\"\nc");
        assert_eq!(out, "plain|\"a, \"\"b\"\"\nc\"");
    }

    #[test]
    fn the_format_defaults_to_csv_and_refuses_others() {
        assert_eq!(Format::parse(None).unwrap(), Format::Csv);
        assert_eq!(Format::parse(Some("ndjson")).unwrap(), Format::Ndjson);
        assert!(Format::parse(Some("xml")).is_err());
    }
}
