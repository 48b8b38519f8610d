//! The job query, once for every adapter: the filter's parameters as a
//! person or a script sends them (one struct, read from query strings by
//! serde, from flags by clap, described to the OpenAPI document by utoipa),
//! parsed into the typed `JobFilter` in one place, and who may see which
//! jobs applied in one place. The API's listing and export, the Jobs page
//! and its export link, the chart and the command line all go through here.

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};

use super::audit::export::{export_stream, ExportFormat};
use super::{Actor, Service};
use crate::domain::job::{Job, JobId, JobStatus};
use crate::domain::query::{JobCursor, JobFilter, Limit, PageRequest};
use crate::error::{Error, Result};
use crate::store::stats::DayCount;

/// The filters of a job listing, as sent. Every one optional; an empty
/// value counts as absent.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::Args, utoipa::IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct JobFilterParams {
    /// Only this user's jobs (operators may name only themselves).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Only this action (by name, e.g. Trans-Begin).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Only this cluster (by name).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// pending, succeeded, partial, failed, timed_out or unknown.
    #[arg(long)]
    #[param(value_type = Option<String>, pattern = "^(pending|succeeded|partial|failed|timed_out|unknown)?$")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Jobs touching this customer ID (exact and case-sensitive).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// From this time (RFC 3339), inclusive, or from the start of this day
    /// (YYYY-MM-DD, UTC).
    #[arg(long)]
    #[param(value_type = Option<String>, example = "2026-11-29T00:00:00Z")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Before this time (RFC 3339), exclusive, or up to the end of this day
    /// (YYYY-MM-DD, UTC), the day included.
    #[arg(long)]
    #[param(value_type = Option<String>, example = "2026-11-30T00:00:00Z")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `true`: only jobs that answered repeated requests (double clicks,
    /// retries); `false`: only jobs that did not.
    #[arg(long)]
    #[param(value_type = Option<bool>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried: Option<String>,
    /// Jobs whose reason (ticket) contains this text, ignoring case.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where a page of a listing starts and how long it is, as sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1 to 500, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500, example = 50)]
    #[serde(default)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page: opaque, only cursors this server
    /// issued are accepted (`400 invalid_query` otherwise).
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    #[serde(default)]
    pub cursor: Option<String>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn owned(v: &Option<String>) -> Option<String> {
    present(v).map(str::to_owned)
}

/// A time as the filters take it: RFC 3339, or a day (`YYYY-MM-DD`, UTC),
/// which starts at midnight; `end_of_day` reads a day as the next midnight,
/// so `until` includes it.
fn parse_time(name: &str, v: &Option<String>, end_of_day: bool) -> Result<Option<DateTime<Utc>>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        Error::InvalidQuery(format!(
            "{name}: {s:?} is neither an RFC 3339 time nor a day (YYYY-MM-DD)"
        ))
    })?;
    let day = if end_of_day {
        day.succ_opt()
    } else {
        Some(day)
    };
    day.and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| Error::InvalidQuery(format!("{name}: {s:?} is out of range")))
}

fn parse_bool(name: &str, v: &Option<String>) -> Result<Option<bool>> {
    present(v)
        .map(|s| match s {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err(Error::InvalidQuery(format!(
                "{name}: {s:?} is not true or false"
            ))),
        })
        .transpose()
}

impl JobFilterParams {
    /// The typed filter, or `400 invalid_query` naming the parameter at fault.
    pub fn parse(&self) -> Result<JobFilter> {
        let status = present(&self.status)
            .map(|s| {
                JobStatus::parse(s).ok_or_else(|| {
                    Error::InvalidQuery(format!("status: {s:?} is not a job status"))
                })
            })
            .transpose()?;
        Ok(JobFilter {
            user: owned(&self.user),
            action: owned(&self.action),
            cluster: owned(&self.cluster),
            status,
            cid: owned(&self.cid),
            since: parse_time("since", &self.since, false)?,
            until: parse_time("until", &self.until, true)?,
            retried: parse_bool("retried", &self.retried)?,
            reason: owned(&self.reason),
        })
    }

    /// `name=value&...` of the filters that are set, for links that keep
    /// them (the next page, the export).
    pub fn query_string(&self) -> String {
        serde_urlencoded::to_string(self.trimmed()).unwrap_or_default()
    }

    /// The same filters with blank values left out.
    pub fn trimmed(&self) -> JobFilterParams {
        JobFilterParams {
            user: owned(&self.user),
            action: owned(&self.action),
            cluster: owned(&self.cluster),
            status: owned(&self.status),
            cid: owned(&self.cid),
            since: owned(&self.since),
            until: owned(&self.until),
            retried: owned(&self.retried),
            reason: owned(&self.reason),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.trimmed() == JobFilterParams::default()
    }
}

impl PageParams {
    /// The typed page, or `400 invalid_query`.
    pub fn parse(&self) -> Result<PageRequest> {
        let limit = match present(&self.limit) {
            None => Limit::DEFAULT,
            Some(s) => s.parse::<u32>().ok().and_then(Limit::new).ok_or_else(|| {
                Error::InvalidQuery(format!(
                    "limit: {s:?} is not a number from 1 to {}",
                    Limit::MAX
                ))
            })?,
        };
        let cursor = present(&self.cursor)
            .map(|c| {
                JobCursor::decode(c).ok_or_else(|| {
                    Error::InvalidQuery("cursor: not a cursor this server issued".into())
                })
            })
            .transpose()?;
        Ok(PageRequest { cursor, limit })
    }

    /// Refuses paging parameters where none apply (the export streams
    /// every matching job).
    pub fn refuse(&self, what: &str) -> Result<()> {
        for (name, value) in [("limit", &self.limit), ("cursor", &self.cursor)] {
            if present(value).is_some() {
                return Err(Error::InvalidQuery(format!(
                    "{name}: {what} has no pages; it streams every matching job"
                )));
            }
        }
        Ok(())
    }
}

/// One page of jobs, newest first.
#[derive(Clone, Debug)]
pub struct JobsPage {
    pub jobs: Vec<Job>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl Service {
    /// The filter `actor` may read: the parameters parsed, and an operator's
    /// listing restricted to their own jobs (naming anyone else is
    /// `403 forbidden`).
    pub fn visible_filter(&self, actor: &Actor, params: &JobFilterParams) -> Result<JobFilter> {
        let mut filter = params.parse()?;
        if let Actor::User(viewer) = actor {
            if !viewer.role.sees_all_jobs() {
                if filter.user.as_deref().is_some_and(|u| u != viewer.username) {
                    return Err(Error::Forbidden("operators see only their own jobs"));
                }
                filter.user = Some(viewer.username.clone());
            }
        }
        Ok(filter)
    }

    /// One page of the jobs `actor` may see, and the cursor of the next.
    #[tracing::instrument(skip_all)]
    pub async fn list_jobs(
        &self,
        actor: &Actor,
        params: &JobFilterParams,
        page: &PageParams,
    ) -> Result<JobsPage> {
        let filter = self.visible_filter(actor, params)?;
        let page = page.parse()?;
        let limit = page.limit.get() as usize;
        let mut jobs = self
            .db
            .list_jobs(&filter, page.cursor, page.limit.get() + 1)
            .await?;
        let next_cursor = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last().map(|j| {
                JobCursor {
                    created_at: j.created_at,
                    job_id: j.job_id.as_uuid(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(JobsPage { jobs, next_cursor })
    }

    /// One job, if `actor` may see it: an operator asking for another
    /// user's job gets `404` (existence is not revealed).
    #[tracing::instrument(skip_all)]
    pub async fn get_job(&self, actor: &Actor, job_id: &str) -> Result<Job> {
        let job_id = JobId::parse(job_id).ok_or(Error::NotFound)?;
        let stored = self.db.get_job(job_id).await?.ok_or(Error::NotFound)?;
        if !actor.sees_all_jobs() && actor.user().map(|u| &u.username) != Some(&stored.job.user) {
            return Err(Error::NotFound);
        }
        Ok(stored.job)
    }

    /// The job a full id or a unique prefix of one names, if `actor` may
    /// see it (the command line takes prefixes; ids shown shortened stay
    /// usable). A prefix matching several jobs is `400 invalid_query`.
    pub async fn find_job(&self, actor: &Actor, id_or_prefix: &str) -> Result<Job> {
        if JobId::parse(id_or_prefix).is_some() {
            return self.get_job(actor, id_or_prefix).await;
        }
        let (lo, hi) = JobId::prefix_range(id_or_prefix).ok_or(Error::NotFound)?;
        let found = self.db.job_ids_between(lo, hi, 2).await?;
        match found.as_slice() {
            [] => Err(Error::NotFound),
            [one] => self.get_job(actor, &one.to_string()).await,
            _ => Err(Error::InvalidQuery(format!(
                "{id_or_prefix:?} starts more than one job id: give more of it"
            ))),
        }
    }

    /// Every job `actor` may see under `params`, encoded page by page.
    pub fn export(
        &self,
        actor: &Actor,
        params: &JobFilterParams,
        format: ExportFormat,
    ) -> Result<impl Stream<Item = Result<Bytes>> + Send + 'static> {
        let filter = self.visible_filter(actor, params)?;
        Ok(export_stream(&self.db, filter, format))
    }

    /// The visible jobs under `params` created in `[start, end)`, counted
    /// per day and status (the Jobs page's chart).
    #[tracing::instrument(skip_all)]
    pub async fn jobs_per_day(
        &self,
        actor: &Actor,
        params: &JobFilterParams,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<DayCount>> {
        let mut filter = self.visible_filter(actor, params)?;
        filter.since = Some(start);
        filter.until = Some(end);
        if start >= end {
            return Ok(Vec::new());
        }
        self.db.jobs_per_day(&filter).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> JobFilterParams {
        let query = serde_urlencoded::to_string(pairs).unwrap();
        serde_urlencoded::from_str(&query).unwrap()
    }

    #[test]
    fn days_and_times_are_both_accepted_and_until_includes_its_day() {
        let f = params(&[("since", "2026-11-29"), ("until", "2026-11-30")])
            .parse()
            .unwrap();
        assert_eq!(f.since.unwrap().to_rfc3339(), "2026-11-29T00:00:00+00:00");
        assert_eq!(f.until.unwrap().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        let f = params(&[("until", "2026-11-30T12:00:00+01:00")])
            .parse()
            .unwrap();
        assert_eq!(f.until.unwrap().to_rfc3339(), "2026-11-30T11:00:00+00:00");
        assert!(matches!(
            params(&[("since", "yesterday")]).parse(),
            Err(Error::InvalidQuery(m)) if m.starts_with("since:")
        ));
    }

    #[test]
    fn blank_values_are_absent_and_bad_ones_name_their_parameter() {
        assert_eq!(
            params(&[("user", " "), ("status", "")]).parse().unwrap(),
            JobFilter::default()
        );
        for (name, value) in [("status", "done"), ("retried", "maybe")] {
            let err = params(&[(name, value)]).parse().unwrap_err();
            assert!(
                matches!(&err, Error::InvalidQuery(m) if m.starts_with(name)),
                "{err}"
            );
        }
    }

    #[test]
    fn the_query_string_keeps_every_filter_that_is_set() {
        let p = params(&[
            ("status", "failed"),
            ("reason", "INC 42"),
            ("retried", "true"),
            ("cid", ""),
        ]);
        assert_eq!(p.query_string(), "status=failed&retried=true&reason=INC+42");
        let back: JobFilterParams = serde_urlencoded::from_str(&p.query_string()).unwrap();
        assert_eq!(back, p.trimmed());
    }

    #[test]
    fn paging_parameters_are_checked() {
        let page = |limit: &str| PageParams {
            limit: Some(limit.into()),
            cursor: None,
        };
        assert_eq!(page("10").parse().unwrap().limit.get(), 10);
        assert!(page("0").parse().is_err());
        assert!(page("501").parse().is_err());
        assert!(page("").parse().is_ok());
        assert!(page("0").refuse("the export").is_err());
        assert!(PageParams::default().refuse("the export").is_ok());
    }
}
