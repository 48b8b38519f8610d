//! The audit through the API: jobs listed with filters and a cursor, and one
//! job by id. Operators see only their own jobs.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::job::{Job, JobId, JobStatus};
use crate::domain::user::User;
use crate::error::{Error, Result};
use crate::http::auth::CurrentUser;
use crate::http::extract::QueryParams;
use crate::http::openapi::Problem;
use crate::http::AppState;
use crate::store::jobs::{JobCursor, JobFilter};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", get(list))
        .route("/api/v1/jobs/{job_id}", get(show))
}

/// The query parameters of a job listing, as sent.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// Only this user's jobs (operators may name only themselves).
    pub user: Option<String>,
    pub action: Option<String>,
    pub cluster: Option<String>,
    /// pending, succeeded, failed, timed_out or unknown.
    #[param(value_type = Option<JobStatus>)]
    pub status: Option<String>,
    /// Jobs touching this customer ID.
    pub cid: Option<String>,
    /// RFC 3339, inclusive.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-29T00:00:00Z")]
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-30T00:00:00Z")]
    pub until: Option<String>,
    /// 1 to 500, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page: opaque, only cursors this server
    /// issued are accepted (`400 invalid_query` otherwise).
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
    /// `true`: only jobs that answered repeated requests (double clicks,
    /// retries); `false`: only jobs that did not.
    #[param(value_type = Option<bool>)]
    pub retried: Option<String>,
    /// Jobs whose reason (ticket) contains this text, ignoring case.
    pub reason: Option<String>,
}

/// `{"job": Job}`.
#[derive(Serialize, ToSchema)]
pub struct JobEnvelope {
    pub job: Job,
}

/// One page of jobs, newest first.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A listing request after parsing and the visibility rule.
#[derive(Clone, Debug)]
pub struct JobsPage {
    pub filter: JobFilter,
    pub cursor: Option<JobCursor>,
    pub limit: u32,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn parse_time(name: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>> {
    non_empty(v)
        .map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Error::InvalidQuery(format!("{name}: {s:?} is not an RFC 3339 time")))
        })
        .transpose()
}

impl JobsQuery {
    /// Parses the parameters and applies who may see what: an operator's
    /// listing is always restricted to their own jobs.
    pub fn parse_for(&self, viewer: &User) -> Result<JobsPage> {
        let status = non_empty(&self.status)
            .map(|s| {
                JobStatus::parse(&s).ok_or_else(|| {
                    Error::InvalidQuery(format!("status: {s:?} is not a job status"))
                })
            })
            .transpose()?;
        let limit = match non_empty(&self.limit) {
            None => DEFAULT_LIMIT,
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    Error::InvalidQuery(format!(
                        "limit: {s:?} is not a number from 1 to {MAX_LIMIT}"
                    ))
                })?,
        };
        let cursor = non_empty(&self.cursor)
            .map(|c| {
                decode_cursor(&c).ok_or_else(|| {
                    Error::InvalidQuery("cursor: not a cursor this server issued".into())
                })
            })
            .transpose()?;
        let mut filter = JobFilter {
            user: non_empty(&self.user),
            action: non_empty(&self.action),
            cluster: non_empty(&self.cluster),
            status,
            cid: non_empty(&self.cid),
            since: parse_time("since", &self.since)?,
            until: parse_time("until", &self.until)?,
            retried: non_empty(&self.retried)
                .map(|v| match v.as_str() {
                    "true" | "yes" | "1" => Ok(true),
                    "false" | "no" | "0" => Ok(false),
                    _ => Err(Error::InvalidQuery(format!(
                        "retried: {v:?} is not true or false"
                    ))),
                })
                .transpose()?,
            reason: non_empty(&self.reason),
        };
        if !viewer.role.sees_all_jobs() {
            if filter.user.as_deref().is_some_and(|u| u != viewer.username) {
                return Err(Error::Forbidden("operators see only their own jobs"));
            }
            filter.user = Some(viewer.username.clone());
        }
        Ok(JobsPage {
            filter,
            cursor,
            limit,
        })
    }
}

/// Cursors are opaque to clients: base64 of the last job's time and id.
pub fn encode_cursor(c: &JobCursor) -> String {
    let raw = format!("{}.{}", c.created_at.timestamp_millis(), c.job_id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub fn decode_cursor(s: &str) -> Option<JobCursor> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (millis, id) = raw.split_once('.')?;
    Some(JobCursor {
        created_at: DateTime::from_timestamp_millis(millis.parse().ok()?)?,
        job_id: uuid::Uuid::parse_str(id).ok()?,
    })
}

/// One page of jobs and the cursor of the next (if there is one).
pub async fn fetch_page(state: &AppState, page: &JobsPage) -> Result<JobList> {
    let mut jobs = state
        .db
        .list_jobs(&page.filter, page.cursor, page.limit + 1)
        .await?;
    let next_cursor = if jobs.len() > page.limit as usize {
        jobs.truncate(page.limit as usize);
        jobs.last().map(|j| {
            encode_cursor(&JobCursor {
                created_at: j.created_at,
                job_id: j.job_id.as_uuid(),
            })
        })
    } else {
        None
    };
    Ok(JobList { jobs, next_cursor })
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobsQuery),
    responses(
        (status = 200, body = JobList),
        (status = 400, description = "invalid_query", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "an operator asked for another user's jobs", body = Problem),
    ))]
pub async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<JobsQuery>,
) -> Result<Json<JobList>> {
    let page = query.parse_for(&current.user)?;
    Ok(Json(fetch_page(&state, &page).await?))
}

#[utoipa::path(get, path = "/api/v1/jobs/{job_id}", tag = "jobs", params(("job_id" = String, Path)),
    responses(
        (status = 200, body = JobEnvelope),
        (status = 401, body = Problem),
        (status = 404, description = "not_found (also another user's job, for an operator)", body = Problem),
    ))]
pub async fn show(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(job_id): Path<String>,
) -> Result<Json<JobEnvelope>> {
    let job_id = JobId::parse(&job_id).ok_or(Error::NotFound)?;
    let stored = state.db.get_job(job_id).await?.ok_or(Error::NotFound)?;
    if !current.user.role.sees_all_jobs() && stored.job.user != current.user.username {
        // Existence of other users' jobs is not revealed.
        return Err(Error::NotFound);
    }
    Ok(Json(JobEnvelope { job: stored.job }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = JobCursor {
            created_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            job_id: uuid::Uuid::now_v7(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&c)), Some(c));
        assert_eq!(decode_cursor("not-a-cursor"), None);
        assert_eq!(decode_cursor(""), None);
    }
}
