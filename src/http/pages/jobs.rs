//! `/jobs`: User Jobs Audit. Every filter lives in the URL (a GET form) as
//! the service's `JobFilterParams`, so the export link carries exactly the
//! same filters; pages follow the API's cursor, and "newer" walks back
//! through the cursors kept in `prev`. The chart counts jobs per day by status for the last 30
//! days of the filtered range.

use askama::Template;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::chart::{self, Chart};
use super::common::{
    render, show_duration, show_time, with_limit, Chrome, PageResult, PageUser, Paging,
};
use crate::domain::job::{format_time, Job, JobStatus};
use crate::http::extract::QueryParams;
use crate::http::AppState;
use crate::service::jobs::{JobFilterParams, PageParams};

/// The chart covers at most this many days.
pub const CHART_DAYS: i64 = 30;

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs", get(show))
}

/// The page's query: the service's filters (the form's dates are days,
/// which the filters take as they are), the page size, the cursor, and the
/// cursors of the pages before it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(flatten)]
    pub filters: JobFilterParams,
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
    /// Comma-separated cursors of the pages before this one (the first page has none).
    #[serde(default)]
    pub prev: Option<String>,
}

fn value(v: &Option<String>) -> String {
    v.as_deref().map(str::trim).unwrap_or_default().to_owned()
}

fn midnight(day: NaiveDate) -> chrono::DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// One row of the table.
pub struct JobRowView {
    pub id: String,
    pub short_id: String,
    pub created: String,
    pub created_iso: String,
    pub user: String,
    pub action: String,
    pub cluster: String,
    pub cid_count: i64,
    pub status: &'static str,
    pub duration: String,
    pub replay_count: i64,
    pub reason: Option<String>,
    pub duplicate_of: Option<String>,
    /// For a job some of whose customers did not end `ok`: "498 ok, 2 failed".
    pub counts: Option<String>,
    /// The CIDs of a small job, or the first of a larger one: which
    /// customers a row is about, without opening it.
    pub cids_preview: Option<String>,
}

/// The CIDs a row shows: all of them up to `PREVIEW_CIDS`, otherwise the
/// first few and how many more.
pub fn cids_preview(cids: &[String]) -> Option<String> {
    const PREVIEW_CIDS: usize = 4;
    match cids.len() {
        0 => None,
        n if n <= PREVIEW_CIDS => Some(cids.join(", ")),
        n => Some(format!(
            "{}, … +{}",
            cids[..PREVIEW_CIDS - 1].join(", "),
            super::common::thousands((n - (PREVIEW_CIDS - 1)) as i64)
        )),
    }
}

/// "498 ok, 2 failed, 1 unknown": the outcomes of a job whose customers
/// did not all end alike.
pub fn outcome_counts(job: &Job) -> Option<String> {
    let o = job.outcomes;
    let kinds = [o.ok, o.failed, o.unknown, o.pending]
        .iter()
        .filter(|n| **n > 0)
        .count();
    (kinds > 1).then(|| {
        [
            ("ok", o.ok),
            ("failed", o.failed),
            ("unknown", o.unknown),
            ("pending", o.pending),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect::<Vec<_>>()
        .join(", ")
    })
}

impl JobRowView {
    pub fn new(job: &Job) -> Self {
        let id = job.job_id.to_string();
        JobRowView {
            // Time-ordered ids share their first digits: keep the random tail.
            short_id: super::runs::short_id(&job.job_id.as_uuid()),
            id,
            created: show_time(&job.created_at),
            created_iso: format_time(&job.created_at),
            user: job.user.clone(),
            action: job.action.clone(),
            cluster: job.cluster.clone(),
            cid_count: job.cid_count,
            status: job.status.as_str(),
            duration: show_duration(job.duration_ms),
            replay_count: job.replay_count,
            reason: job.reason.clone(),
            duplicate_of: job.duplicate_of.map(|d| d.to_string()),
            counts: outcome_counts(job),
            cids_preview: cids_preview(&job.cids),
        }
    }
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    chrome: Chrome,
    sees_all: bool,
    /// The filters as typed, blank ones left out.
    filters: JobFilterParams,
    limit: String,
    users: Vec<String>,
    actions: Vec<String>,
    clusters: Vec<String>,
    statuses: Vec<&'static str>,
    rows: Vec<JobRowView>,
    page_number: usize,
    next_url: Option<String>,
    prev_url: Option<String>,
    export_url: String,
    chart: Chart,
    /// The phone's chart: the latest days, today on the right.
    chart_recent: Chart,
}

impl JobsPage {
    /// A filter's value for the form.
    fn v<'a>(&self, value: &'a Option<String>) -> &'a str {
        value.as_deref().unwrap_or_default()
    }
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn show(
    State(state): State<AppState>,
    page_user: PageUser,
    QueryParams(q): QueryParams<AuditQuery>,
) -> PageResult {
    let actor = page_user.actor();
    let sees_all = actor.sees_all_jobs();
    let mut filters = q.filters.trimmed();
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
    let list = state.service.list_jobs(&actor, &filters, &page).await?;

    // The chart: the last CHART_DAYS days of the range, today included when open-ended.
    let range = filters.parse()?;
    let end = range
        .until
        .unwrap_or_else(|| midnight(Utc::now().date_naive()) + Duration::days(1));
    let start = match range.since {
        Some(s) if s > end - Duration::days(CHART_DAYS) => s,
        _ => end - Duration::days(CHART_DAYS),
    };
    let counts = state
        .service
        .jobs_per_day(&actor, &filters, start, end)
        .await?;
    let chart = chart::build(start.date_naive(), end.date_naive(), &counts);
    let recent_start = (end - Duration::days(chart::NARROW_DAYS)).max(start);
    let chart_recent = chart::build_sized(
        recent_start.date_naive(),
        end.date_naive(),
        &counts,
        chart::NARROW_WIDTH,
    );

    let query = with_limit(filters.query_string(), &limit);
    let Paging {
        page_number,
        next_url,
        prev_url,
    } = Paging::new("/jobs", &query, &cursor, &prev, list.next_cursor.as_deref());

    // The export holds exactly the jobs the page filters: the same parameters.
    let mut export_url = "/api/v1/jobs/export?format=csv".to_owned();
    let filter_query = filters.query_string();
    if !filter_query.is_empty() {
        export_url.push('&');
        export_url.push_str(&filter_query);
    }
    let users = if sees_all {
        state.service.usernames(&actor).await?
    } else {
        Vec::new()
    };
    let execution = state.service.execution();
    render(&JobsPage {
        chrome: page_user.chrome("jobs"),
        sees_all,
        users,
        actions: execution.catalog().iter().map(|a| a.name.clone()).collect(),
        clusters: execution
            .clusters()
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        statuses: JobStatus::ALL.iter().map(|s| s.as_str()).collect(),
        rows: list.jobs.iter().map(JobRowView::new).collect(),
        page_number,
        next_url,
        prev_url,
        export_url,
        chart,
        chart_recent,
        filters,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::cids_preview;

    #[test]
    fn a_small_job_shows_its_cids_and_a_large_one_the_first_few() {
        let cids = |n: usize| (1..=n).map(|i| format!("C{i}")).collect::<Vec<_>>();
        assert_eq!(cids_preview(&[]), None);
        assert_eq!(cids_preview(&cids(2)).as_deref(), Some("C1, C2"));
        assert_eq!(cids_preview(&cids(4)).as_deref(), Some("C1, C2, C3, C4"));
        assert_eq!(
            cids_preview(&cids(1500)).as_deref(),
            Some("C1, C2, C3, … +1,497")
        );
    }
}
