//! `/customers/{cid}`: a customer's history, newest first, with its filters
//! in the URL and pages along the cursor (as the Jobs Audit's); `/customers`
//! takes the Jobs Audit's search box and goes there.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::common::{enc, render, see_other, show_time, Chrome, PageResult, PageUser, Paging};
use crate::http::extract::QueryParams;
use crate::http::AppState;
use crate::service::customers::HistoryParams;
use crate::service::jobs::PageParams;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/customers", get(search))
        .route("/customers/{cid}", get(show))
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    cid: String,
}

/// The search box's answer: the customer's page.
async fn search(_user: PageUser, QueryParams(q): QueryParams<SearchQuery>) -> PageResult {
    let cid = q.cid.trim();
    if cid.is_empty() {
        return Ok(see_other("/jobs"));
    }
    Ok(see_other(&format!("/customers/{}", path_segment(cid))))
}

/// A CID in a path: everything but the unreserved characters escaped.
fn path_segment(cid: &str) -> String {
    enc(cid).replace('+', "%20")
}

/// The page's query: the filters, the cursor, the cursors before it.
#[derive(Clone, Debug, Default, Deserialize)]
struct HistoryQuery {
    #[serde(flatten)]
    filters: HistoryParams,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    prev: Option<String>,
}

/// One row of the history.
struct EntryRow {
    job_id: String,
    created: String,
    user: String,
    cluster: String,
    action: String,
    job_status: &'static str,
    outcome: &'static str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "customer.html")]
struct CustomerPage {
    chrome: Chrome,
    cid: String,
    filters: HistoryParams,
    actions: Vec<String>,
    clusters: Vec<String>,
    outcomes: [&'static str; 4],
    rows: Vec<EntryRow>,
    page_number: usize,
    next_url: Option<String>,
    prev_url: Option<String>,
}

impl CustomerPage {
    /// A filter's value for the form.
    fn v<'a>(&self, value: &'a Option<String>) -> &'a str {
        value.as_deref().unwrap_or_default()
    }
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn show(
    State(state): State<AppState>,
    page_user: PageUser,
    Path(cid): Path<String>,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> PageResult {
    let cursor = q.cursor.unwrap_or_default();
    let prev: Vec<String> = q
        .prev
        .unwrap_or_default()
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    let page = PageParams {
        limit: None,
        cursor: Some(cursor.clone()),
    };
    let history = state
        .service
        .customer_history(&page_user.actor(), &cid, &q.filters, &page)
        .await?;
    let base = format!("/customers/{}", path_segment(&history.cid));
    let paging = Paging::new(
        &base,
        &q.filters.query_string(),
        &cursor,
        &prev,
        history.next_cursor.as_deref(),
    );
    let execution = state.service.execution();
    let rows = history
        .entries
        .iter()
        .map(|e| EntryRow {
            job_id: e.job_id.to_string(),
            created: show_time(&e.created_at),
            user: e.user.clone(),
            cluster: e.cluster.clone(),
            action: e.action.clone(),
            job_status: e.job_status.as_str(),
            outcome: e.outcome.as_str(),
            error: e.error.clone(),
        })
        .collect();
    Ok(render(&CustomerPage {
        chrome: page_user.chrome("jobs"),
        cid: history.cid,
        filters: q.filters,
        actions: execution.catalog().iter().map(|a| a.name.clone()).collect(),
        clusters: execution
            .clusters()
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        outcomes: ["ok", "failed", "unknown", "pending"],
        rows,
        page_number: paging.page_number,
        next_url: paging.next_url,
        prev_url: paging.prev_url,
    })?
    .into_response())
}
