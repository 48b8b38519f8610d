//! `/jobs`: User Jobs Audit. Every filter lives in the URL (a GET form);
//! pages follow the API's cursor, and "newer" walks back through the cursors
//! kept in `prev`. The chart counts jobs per day by status for the last 30
//! days of the filtered range.

use askama::Template;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::chart::{self, Chart};
use super::common::{enc, render, show_duration, show_time, Chrome, PageResult, PageUser};
use crate::domain::job::{format_time, Job, JobStatus};
use crate::error::Error;
use crate::http::api::jobs::{fetch_page, JobsQuery};
use crate::http::extract::QueryParams;
use crate::http::AppState;

/// The chart covers at most this many days.
pub const CHART_DAYS: i64 = 30;

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs", get(show))
}

/// The page's query: the API's filters with dates instead of times, the
/// cursor, and the cursors of the pages before it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuditQuery {
    pub user: Option<String>,
    pub action: Option<String>,
    pub cluster: Option<String>,
    pub status: Option<String>,
    pub cid: Option<String>,
    /// First day shown (`YYYY-MM-DD`, UTC).
    pub since: Option<String>,
    /// Last day shown, inclusive (`YYYY-MM-DD`, UTC).
    pub until: Option<String>,
    pub limit: Option<String>,
    pub retried: Option<String>,
    pub reason: Option<String>,
    pub cursor: Option<String>,
    /// Comma-separated cursors of the pages before this one (the first page has none).
    pub prev: Option<String>,
}

fn value(v: &Option<String>) -> String {
    v.as_deref().map(str::trim).unwrap_or_default().to_owned()
}

fn parse_day(name: &str, v: &str) -> Result<Option<NaiveDate>, Error> {
    if v.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| Error::InvalidQuery(format!("{name}: {v:?} is not a date (YYYY-MM-DD)")))
}

fn midnight(day: NaiveDate) -> chrono::DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The filters as typed, for the form and for links.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub user: String,
    pub action: String,
    pub cluster: String,
    pub status: String,
    pub cid: String,
    pub since: String,
    pub until: String,
    pub limit: String,
    pub retried: String,
    pub reason: String,
}

impl Filters {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("user", self.user.as_str()),
            ("action", &self.action),
            ("cluster", &self.cluster),
            ("status", &self.status),
            ("cid", &self.cid),
            ("since", &self.since),
            ("until", &self.until),
            ("limit", &self.limit),
            ("retried", &self.retried),
            ("reason", &self.reason),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }

    /// `name=value&...` of the non-empty filters.
    pub fn query_string(&self) -> String {
        self.pairs()
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }
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
}

impl JobRowView {
    fn new(job: &Job) -> Self {
        let id = job.job_id.to_string();
        JobRowView {
            short_id: id.chars().take(8).collect(),
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
        }
    }
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    chrome: Chrome,
    sees_all: bool,
    filters: Filters,
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
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn show(
    State(state): State<AppState>,
    page_user: PageUser,
    QueryParams(q): QueryParams<AuditQuery>,
) -> PageResult {
    let viewer = &page_user.user;
    let sees_all = viewer.role.sees_all_jobs();
    let filters = Filters {
        user: if sees_all {
            value(&q.user)
        } else {
            String::new()
        },
        action: value(&q.action),
        cluster: value(&q.cluster),
        status: value(&q.status),
        cid: value(&q.cid),
        since: value(&q.since),
        until: value(&q.until),
        limit: value(&q.limit),
        retried: value(&q.retried),
        reason: value(&q.reason),
    };
    let since_day = parse_day("since", &filters.since)?;
    let until_day = parse_day("until", &filters.until)?;
    let since = since_day.map(midnight);
    let until = until_day.map(|d| midnight(d) + Duration::days(1));
    let cursor = value(&q.cursor);
    let prev: Vec<String> = value(&q.prev)
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();

    let api_query = JobsQuery {
        user: Some(filters.user.clone()),
        action: Some(filters.action.clone()),
        cluster: Some(filters.cluster.clone()),
        status: Some(filters.status.clone()),
        cid: Some(filters.cid.clone()),
        since: since.as_ref().map(format_time),
        until: until.as_ref().map(format_time),
        limit: Some(filters.limit.clone()),
        cursor: Some(cursor.clone()),
        retried: Some(filters.retried.clone()),
        reason: Some(filters.reason.clone()),
    };
    let page = api_query.parse_for(viewer)?;
    let list = fetch_page(&state, &page).await?;

    // The chart: the last CHART_DAYS days of the range, today included when open-ended.
    let end = until.unwrap_or_else(|| midnight(Utc::now().date_naive()) + Duration::days(1));
    let start = match since {
        Some(s) if s > end - Duration::days(CHART_DAYS) => s,
        _ => end - Duration::days(CHART_DAYS),
    };
    let mut chart_filter = page.filter.clone();
    chart_filter.since = Some(start);
    chart_filter.until = Some(end);
    let counts = if start < end {
        state.db.jobs_per_day(&chart_filter).await?
    } else {
        Vec::new()
    };
    let chart = chart::build(start.date_naive(), end.date_naive(), &counts);

    let base = filters.query_string();
    let link = |cursor: Option<&str>, prev: &[String]| {
        let mut parts: Vec<String> = Vec::new();
        if !base.is_empty() {
            parts.push(base.clone());
        }
        if let Some(c) = cursor {
            parts.push(format!("cursor={}", enc(c)));
        }
        if !prev.is_empty() {
            parts.push(format!("prev={}", enc(&prev.join(","))));
        }
        if parts.is_empty() {
            "/jobs".to_owned()
        } else {
            format!("/jobs?{}", parts.join("&"))
        }
    };
    let next_url = list.next_cursor.as_deref().map(|next| {
        let mut stack = prev.clone();
        if !cursor.is_empty() {
            stack.push(cursor.clone());
        }
        link(Some(next), &stack)
    });
    let prev_url = (!cursor.is_empty()).then(|| match prev.split_last() {
        Some((last, rest)) => link(Some(last), rest),
        None => link(None, &[]),
    });
    let page_number = if cursor.is_empty() { 1 } else { prev.len() + 2 };

    let mut export_params = vec!["format=csv".to_owned()];
    for (k, v) in [
        ("user", filters.user.clone()),
        ("action", filters.action.clone()),
        ("cluster", filters.cluster.clone()),
        ("status", filters.status.clone()),
        ("cid", filters.cid.clone()),
        ("since", since.as_ref().map(format_time).unwrap_or_default()),
        ("until", until.as_ref().map(format_time).unwrap_or_default()),
    ] {
        if !v.is_empty() {
            export_params.push(format!("{k}={}", enc(&v)));
        }
    }
    let users = if sees_all {
        state
            .db
            .list_users()
            .await?
            .into_iter()
            .map(|u| u.username)
            .collect()
    } else {
        Vec::new()
    };
    render(&JobsPage {
        chrome: page_user.chrome("jobs"),
        sees_all,
        users,
        actions: state
            .execution
            .catalog()
            .iter()
            .map(|a| a.name.clone())
            .collect(),
        clusters: state
            .execution
            .clusters()
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        statuses: JobStatus::ALL.iter().map(|s| s.as_str()).collect(),
        rows: list.jobs.iter().map(JobRowView::new).collect(),
        page_number,
        next_url,
        prev_url,
        export_url: format!("/api/v1/jobs/export?{}", export_params.join("&")),
        chart,
        filters,
    })
}
