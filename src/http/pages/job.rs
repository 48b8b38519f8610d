//! `/jobs/{job_id}`: everything about one job — the CIDs, the request sent
//! upstream with its secret redacted, the answer, the error and the timings.
//! An operator gets the same 404 for another user's job as for no job.

use askama::Template;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;

use serde::Deserialize;

use super::common::{render, show_duration, show_time, Chrome, PageResult, PageUser};
use crate::domain::job::{format_time, Job};
use crate::domain::outcome::Outcome;
use crate::http::extract::QueryParams;
use crate::http::AppState;
use crate::service::customers;
use crate::service::execution::may_retry;

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs/{job_id}", get(show))
}

/// `?outcome=` of the customers table.
#[derive(Deserialize)]
struct JobQuery {
    #[serde(default)]
    outcome: Option<String>,
}

/// Beyond this many customers in view, those that ended `ok` without an
/// error flow as a wrapped list instead of a row each (a 500-CID job's page
/// stays a few screens long).
pub const ROWS_UP_TO: usize = 50;

/// One customer row.
pub struct CustomerRow {
    pub cid: String,
    pub outcome: &'static str,
    pub error: Option<String>,
}

/// A link of the outcome filter: label, href, whether it is the current one.
pub struct OutcomeLink {
    pub label: String,
    pub href: String,
    pub current: bool,
}

/// A related job (the one retried, or a retry of this one).
pub struct RelatedJob {
    pub id: String,
    pub status: &'static str,
    pub created: String,
}

/// The upstream request as it was sent (the token is never shown).
pub struct SentRequest {
    pub method: String,
    pub path: String,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A time with its machine-readable form.
pub struct Shown {
    pub text: String,
    pub iso: String,
}

fn shown(t: &chrono::DateTime<chrono::Utc>) -> Shown {
    Shown {
        text: show_time(t),
        iso: format_time(t),
    }
}

/// One stretch of the job's run on the timeline.
pub struct Segment {
    pub label: &'static str,
    pub class: &'static str,
    pub ms: i64,
    /// Position and width in the SVG's 0–1000 coordinate space.
    pub x: i64,
    pub width: i64,
}

/// The phases as a horizontal bar: time in the console, time at the
/// cluster, time recording the outcome; phases not reached are left out.
pub struct Timeline {
    pub phases: Vec<(&'static str, Option<Shown>)>,
    pub segments: Vec<Segment>,
    pub total_ms: i64,
    /// The cluster's share of the whole run, when it answered.
    pub upstream_percent: Option<i64>,
}

fn timeline(job: &Job) -> Timeline {
    let p = &job.phases;
    let points = [p.claimed_at, p.sent_at, p.answered_at, p.finalized_at];
    let stretches = [
        ("in the console", "seg-console", points[0], points[1]),
        ("at the cluster", "seg-cluster", points[1], points[2]),
        ("recording the outcome", "seg-record", points[2], points[3]),
    ];
    let total_ms = match (points[0], points[3]) {
        (Some(a), Some(b)) => (b - a).num_milliseconds().max(0),
        _ => 0,
    };
    let mut x = 0;
    let mut segments = Vec::new();
    for (label, class, from, to) in stretches {
        if let (Some(from), Some(to)) = (from, to) {
            let ms = (to - from).num_milliseconds().max(0);
            let width = if total_ms > 0 {
                (ms * 1000 / total_ms).max(2)
            } else {
                0
            };
            segments.push(Segment {
                label,
                class,
                ms,
                x,
                width,
            });
            x += width;
        }
    }
    let upstream_percent = match (points[1], points[2]) {
        (Some(sent), Some(answered)) if total_ms > 0 => {
            Some((answered - sent).num_milliseconds().max(0) * 100 / total_ms)
        }
        _ => None,
    };
    Timeline {
        phases: vec![
            ("Claimed", p.claimed_at.as_ref().map(shown)),
            ("Sent to the cluster", p.sent_at.as_ref().map(shown)),
            ("Cluster answered", p.answered_at.as_ref().map(shown)),
            ("Finalised", p.finalized_at.as_ref().map(shown)),
        ],
        segments,
        total_ms,
        upstream_percent,
    }
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    chrome: Chrome,
    job: Job,
    id: String,
    status: &'static str,
    created: Shown,
    finished: Option<Shown>,
    last_replay: Option<Shown>,
    duration: String,
    request: SentRequest,
    duplicate_of: Option<String>,
    timeline: Timeline,
    customers: Vec<CustomerRow>,
    /// The `ok` customers of a large job, as a wrapped list.
    flowing: Vec<String>,
    /// The request is long: it is folded.
    fold_request: bool,
    outcome_links: Vec<OutcomeLink>,
    /// The filter's outcome, when one is chosen.
    filtered: Option<&'static str>,
    /// Offered to who may retry, when some customer failed.
    can_retry: bool,
    retry_of: Option<RelatedJob>,
    retries: Vec<RelatedJob>,
}

fn related(job: &Job) -> RelatedJob {
    RelatedJob {
        id: job.job_id.to_string(),
        status: job.status.as_str(),
        created: show_time(&job.created_at),
    }
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn show(
    State(state): State<AppState>,
    page_user: PageUser,
    Path(job_id): Path<String>,
    QueryParams(query): QueryParams<JobQuery>,
) -> PageResult {
    let actor = page_user.actor();
    let (job, customers) = state
        .service
        .job_customers(&actor, &job_id, query.outcome.as_deref())
        .await?;
    let filtered = customers::parse_outcome(query.outcome.as_deref())?.map(|o| o.as_str());
    let base = format!("/jobs/{}", job.job_id);
    let counts = job.outcomes;
    let mut outcome_links = vec![OutcomeLink {
        label: format!("All {}", job.cid_count),
        href: format!("{base}#customers"),
        current: filtered.is_none(),
    }];
    for (outcome, n) in [
        (Outcome::Ok, counts.ok),
        (Outcome::Failed, counts.failed),
        (Outcome::Unknown, counts.unknown),
        (Outcome::Pending, counts.pending),
    ] {
        if n > 0 {
            outcome_links.push(OutcomeLink {
                label: format!("{n} {}", outcome.as_str()),
                href: format!("{base}?outcome={}#customers", outcome.as_str()),
                current: filtered == Some(outcome.as_str()),
            });
        }
    }
    let retry_of = match job.retry_of {
        Some(id) => state
            .service
            .get_job(&actor, &id.to_string())
            .await
            .ok()
            .map(|j| related(&j)),
        None => None,
    };
    let retries = state
        .service
        .retries_of(&actor, job.job_id)
        .await?
        .iter()
        .map(related)
        .collect();
    let can_retry = counts.failed + counts.unknown > 0 && may_retry(&page_user.user, &job);
    let execution = state.service.execution();
    let action = execution.catalog().get(&job.action);
    let cluster = execution.clusters().get(&job.cluster);
    let request = SentRequest {
        method: action.map_or("POST", |a| a.method.as_str()).to_owned(),
        path: action.map_or_else(
            || "(this action is no longer configured)".to_owned(),
            |a| a.path.clone(),
        ),
        cluster: match cluster {
            Some(c) => super::customer_set::cluster_option_text(&c.label, &c.name),
            None => format!("{} (no longer configured)", job.cluster),
        },
        headers: vec![
            ("Authorization".into(), "Bearer [redacted]".into()),
            ("Idempotency-Key".into(), job.job_id.to_string()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: request_body(&job),
    };
    let (customers, flowing) = split_customers(
        customers
            .into_iter()
            .map(|c| CustomerRow {
                cid: c.cid,
                outcome: c.outcome.as_str(),
                error: c.error,
            })
            .collect(),
    );
    render(&JobPage {
        chrome: page_user.chrome("jobs"),
        id: job.job_id.to_string(),
        status: job.status.as_str(),
        created: shown(&job.created_at),
        finished: job.finished_at.as_ref().map(shown),
        last_replay: job.last_replay_at.as_ref().map(shown),
        duration: show_duration(job.duration_ms),
        duplicate_of: job.duplicate_of.map(|d| d.to_string()),
        timeline: timeline(&job),
        customers,
        flowing,
        fold_request: job.cids.len() > FOLD_REQUEST_AFTER,
        outcome_links,
        filtered,
        can_retry,
        retry_of,
        retries,
        request,
        job,
    })
}

/// Requests with more CIDs than this are folded on the page.
const FOLD_REQUEST_AFTER: usize = 20;

/// The JSON body sent upstream, indented, with its CIDs on one wrapped line
/// rather than one line each.
fn request_body(job: &Job) -> String {
    let json = |v: serde_json::Value| v.to_string();
    let cids: Vec<String> = job.cids.iter().map(|c| json(c.as_str().into())).collect();
    format!(
        "{{\n  \"action\": {},\n  \"action_code\": {},\n  \"cids\": [{}]\n}}",
        json(job.action.as_str().into()),
        job.action_code,
        cids.join(", ")
    )
}

/// Rows for every customer of a small view; for a large one, rows only for
/// those that did not simply end `ok`, and the rest as a list.
fn split_customers(rows: Vec<CustomerRow>) -> (Vec<CustomerRow>, Vec<String>) {
    if rows.len() <= ROWS_UP_TO {
        return (rows, Vec::new());
    }
    let (flowing, rows): (Vec<CustomerRow>, Vec<CustomerRow>) = rows
        .into_iter()
        .partition(|c| c.outcome == Outcome::Ok.as_str() && c.error.is_none());
    (rows, flowing.into_iter().map(|c| c.cid).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cid: &str, outcome: Outcome) -> CustomerRow {
        CustomerRow {
            cid: cid.to_owned(),
            outcome: outcome.as_str(),
            error: None,
        }
    }

    #[test]
    fn a_large_job_lists_its_ok_customers_and_keeps_rows_for_the_rest() {
        let small: Vec<_> = (0..3).map(|i| row(&format!("S{i}"), Outcome::Ok)).collect();
        let (rows, flowing) = split_customers(small);
        assert_eq!((rows.len(), flowing.len()), (3, 0));
        let mut large: Vec<_> = (0..499)
            .map(|i| row(&format!("L{i}"), Outcome::Ok))
            .collect();
        large.push(row("NOPE-1", Outcome::Failed));
        let (rows, flowing) = split_customers(large);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cid, "NOPE-1");
        assert_eq!(flowing.len(), 499);
        assert_eq!(flowing[0], "L0");
    }
}
