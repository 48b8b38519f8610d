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
    let body = serde_json::json!({
        "action": job.action,
        "action_code": job.action_code,
        "cids": job.cids,
    });
    let request = SentRequest {
        method: action.map_or("POST", |a| a.method.as_str()).to_owned(),
        path: action.map_or_else(
            || "(this action is no longer configured)".to_owned(),
            |a| a.path.clone(),
        ),
        cluster: match cluster {
            Some(c) => format!("{} ({})", c.label, c.name),
            None => format!("{} (no longer configured)", job.cluster),
        },
        headers: vec![
            ("Authorization".into(), "Bearer [redacted]".into()),
            ("Idempotency-Key".into(), job.job_id.to_string()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: serde_json::to_string_pretty(&body).unwrap_or_default(),
    };
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
        customers: customers
            .into_iter()
            .map(|c| CustomerRow {
                cid: c.cid,
                outcome: c.outcome.as_str(),
                error: c.error,
            })
            .collect(),
        outcome_links,
        filtered,
        can_retry,
        retry_of,
        retries,
        request,
        job,
    })
}
