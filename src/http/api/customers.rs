//! Customers through the API: what a job did to each of its customers, and
//! a customer's history across jobs. The rules are the service's
//! (`service::customers`).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::job::JobId;
use crate::domain::outcome::{CustomerOutcome, HistoryEntry};
use crate::error::{Error, Result};
use crate::http::auth::CurrentUser;
use crate::http::extract::QueryParams;
use crate::http::openapi::Problem;
use crate::http::schema::{CustomerOutcomeSchema, HistoryEntrySchema, JobIdSchema};
use crate::http::AppState;
use crate::service::customers::HistoryParams;
use crate::service::jobs::PageParams;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs/{job_id}/customers", get(job_customers))
        .route("/api/v1/customers/{cid}/jobs", get(history))
}

/// A job's customers, in the order of its request.
#[derive(Serialize, ToSchema)]
pub struct JobCustomers {
    #[schema(value_type = JobIdSchema)]
    pub job_id: JobId,
    #[schema(value_type = Vec<CustomerOutcomeSchema>)]
    pub customers: Vec<CustomerOutcome>,
}

/// `?outcome=` and `?format=` of a job's customers.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomersQuery {
    /// Only customers with this outcome: ok, failed, unknown or pending.
    #[param(pattern = "^(ok|failed|unknown|pending)?$")]
    #[serde(default)]
    pub outcome: Option<String>,
    /// `json` (the default) or `csv` (columns `cid,outcome,error`).
    #[param(pattern = "^(json|csv)?$")]
    #[serde(default)]
    pub format: Option<String>,
}

/// The customers of a job as CSV: `cid,outcome,error`, CRLF line ends.
pub fn customers_csv(customers: &[CustomerOutcome]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let csv_error = |e: csv::Error| Error::Internal(anyhow::anyhow!("Failed to write CSV: {e}"));
    w.write_record(["cid", "outcome", "error"])
        .map_err(csv_error)?;
    for c in customers {
        w.write_record([
            c.cid.as_str(),
            c.outcome.as_str(),
            c.error.as_deref().unwrap_or_default(),
        ])
        .map_err(csv_error)?;
    }
    w.into_inner()
        .map_err(|e| Error::Internal(anyhow::anyhow!("Failed to write CSV: {e}")))
}

fn wants_csv(format: Option<&str>) -> Result<bool> {
    match format.map(str::trim) {
        None | Some("" | "json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(Error::InvalidQuery(format!(
            "format: {other:?} is not json or csv"
        ))),
    }
}

/// A CSV download named `name`.
pub fn csv_response(name: &str, body: Vec<u8>) -> Result<Response> {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(|e| Error::Internal(e.into()))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// What the job did to each of its customers, in request order (JSON or CSV).
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}/customers", tag = "customers",
    params(("job_id" = String, Path), CustomersQuery),
    responses(
        (status = 200, description = "Each customer's outcome, in request order", content(
            (JobCustomers = "application/json"),
            (String = "text/csv", example = "cid,outcome,error\r\nC1001,ok,\r\nC1002,failed,customer is locked\r\n"),
        )),
        (status = 400, description = "invalid_query", body = Problem),
        (status = 404, description = "not_found (also another user's job, for an operator)", body = Problem),
    ))]
pub async fn job_customers(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(job_id): Path<String>,
    QueryParams(query): QueryParams<CustomersQuery>,
) -> Result<Response> {
    let csv = wants_csv(query.format.as_deref())?;
    let (job, customers) = state
        .service
        .job_customers(&current.actor(), &job_id, query.outcome.as_deref())
        .await?;
    let job_id = job.job_id;
    if csv {
        return csv_response(
            &format!("job-{job_id}-customers.csv"),
            customers_csv(&customers)?,
        );
    }
    Ok(Json(JobCustomers { job_id, customers }).into_response())
}

/// A customer's history: the jobs that touched it, newest first.
#[derive(Serialize, ToSchema)]
pub struct CustomerHistory {
    pub cid: String,
    #[schema(value_type = Vec<HistoryEntrySchema>)]
    pub entries: Vec<HistoryEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The history's filters and page.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct HistoryQuery {
    #[serde(flatten)]
    pub filters: HistoryParams,
    #[serde(flatten)]
    pub page: PageParams,
}

/// Everything done to one customer, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{cid}/jobs", tag = "customers",
    params(("cid" = String, Path, description = "The customer ID, exactly (case-sensitive)"), HistoryParams, PageParams),
    responses(
        (status = 200, body = CustomerHistory),
        (status = 400, description = "invalid_query (also a value that is not a customer ID)", body = Problem),
    ))]
pub async fn history(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(cid): Path<String>,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<Json<CustomerHistory>> {
    let page = state
        .service
        .customer_history(&current.actor(), &cid, &query.filters, &query.page)
        .await?;
    Ok(Json(CustomerHistory {
        cid: page.cid,
        entries: page.entries,
        next_cursor: page.next_cursor,
    }))
}
