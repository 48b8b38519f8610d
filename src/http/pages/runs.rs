//! `/runs`: the runs a person may see, newest first (operators: their own,
//! as the service decides). The filters live in the URL as the service's
//! `RunFilterParams`; pages follow the API's cursor, and "newer" walks back
//! through the cursors kept in `prev`, as on the Jobs Audit.

use askama::Template;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::common::{
    render, show_time, thousands, with_limit, Chrome, PageResult, PageUser, Paging,
};
use crate::domain::job::format_time;
use crate::domain::run::{Run, RunId, RunStatus};
use crate::http::extract::QueryParams;
use crate::http::AppState;
use crate::service::jobs::PageParams;
use crate::service::runs::RunFilterParams;

pub fn router() -> Router<AppState> {
    Router::new().route("/runs", get(show))
}

/// The page's query: the service's filters, the page size, the cursor, and
/// the cursors of the pages before it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunsQuery {
    #[serde(flatten)]
    pub filters: RunFilterParams,
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
    /// Comma-separated cursors of the pages before this one.
    #[serde(default)]
    pub prev: Option<String>,
}

fn value(v: &Option<String>) -> String {
    v.as_deref().map(str::trim).unwrap_or_default().to_owned()
}

fn owned(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The filters with blank values left out.
fn trimmed(f: &RunFilterParams) -> RunFilterParams {
    RunFilterParams {
        user: owned(&f.user),
        cluster: owned(&f.cluster),
        action: owned(&f.action),
        status: owned(&f.status),
    }
}

/// A run's id as a list shows it.
pub fn short_run_id(id: &RunId) -> String {
    short_id(&id.as_uuid())
}

/// An id as a list shows it: the first 8 and the last 4 hex digits.
/// Time-ordered ids share their first digits; their random tail tells ids
/// of the same minute apart.
pub fn short_id(id: &uuid::Uuid) -> String {
    let hex = id.simple().to_string();
    format!("{}…{}", &hex[..8], &hex[hex.len() - 4..])
}

/// Customers done (whatever their outcome) out of the run's total.
pub fn customers_done(run: &Run) -> i64 {
    run.customers.ok + run.customers.failed + run.customers.unknown
}

/// One row of the table.
pub struct RunRowView {
    pub id: String,
    pub short_id: String,
    pub created: String,
    pub created_iso: String,
    pub user: String,
    pub action: String,
    pub cluster: String,
    pub status: &'static str,
    pub done: i64,
    pub total: i64,
    pub progress: String,
    pub batches: String,
    pub reason: Option<String>,
}

impl RunRowView {
    fn new(run: &Run) -> Self {
        let done = customers_done(run);
        RunRowView {
            id: run.run_id.to_string(),
            short_id: short_run_id(&run.run_id),
            created: show_time(&run.created_at),
            created_iso: format_time(&run.created_at),
            user: run.user.clone(),
            action: run.action.clone(),
            cluster: run.cluster.clone(),
            status: run.status.as_str(),
            done,
            total: run.cid_count,
            progress: format!("{} / {}", thousands(done), thousands(run.cid_count)),
            batches: format!(
                "{} batch{}",
                thousands(run.batch_count),
                if run.batch_count == 1 { "" } else { "es" }
            ),
            reason: run.reason.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    chrome: Chrome,
    sees_all: bool,
    filters: RunFilterParams,
    filtered: bool,
    limit: String,
    users: Vec<String>,
    actions: Vec<String>,
    clusters: Vec<String>,
    statuses: Vec<&'static str>,
    rows: Vec<RunRowView>,
    page_number: usize,
    next_url: Option<String>,
    prev_url: Option<String>,
}

impl RunsPage {
    /// A filter's value for the form.
    fn v<'a>(&self, value: &'a Option<String>) -> &'a str {
        value.as_deref().unwrap_or_default()
    }
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn show(
    State(state): State<AppState>,
    page_user: PageUser,
    QueryParams(q): QueryParams<RunsQuery>,
) -> PageResult {
    let actor = page_user.actor();
    let sees_all = actor.sees_all_jobs();
    let mut filters = trimmed(&q.filters);
    if !sees_all {
        // Operators have no user filter: theirs is implied.
        filters.user = None;
    }
    let limit = value(&q.limit);
    let cursor = value(&q.cursor);
    let prev: Vec<String> = value(&q.prev)
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    let page = PageParams {
        limit: Some(limit.clone()),
        cursor: Some(cursor.clone()),
    };
    let runs = state.service.runs();
    let list = runs.list(&actor, &filters, &page).await?;

    let query = with_limit(
        serde_urlencoded::to_string(&filters).unwrap_or_default(),
        &limit,
    );
    let Paging {
        page_number,
        next_url,
        prev_url,
    } = Paging::new("/runs", &query, &cursor, &prev, list.next_cursor.as_deref());
    let users = if sees_all {
        state.service.usernames(&actor).await?
    } else {
        Vec::new()
    };
    let execution = state.service.execution();
    render(&RunsPage {
        chrome: page_user.chrome("runs"),
        sees_all,
        users,
        actions: execution.catalog().iter().map(|a| a.name.clone()).collect(),
        clusters: execution
            .clusters()
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        statuses: RunStatus::ALL.iter().map(|s| s.as_str()).collect(),
        rows: list.runs.iter().map(RunRowView::new).collect(),
        page_number,
        next_url,
        prev_url,
        filtered: filters != RunFilterParams::default() || !limit.is_empty(),
        filters,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_keep_the_random_tail() {
        let id = RunId::parse("0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b").expect("id");
        assert_eq!(short_run_id(&id), "0193a1b2…1a2b");
    }
}
