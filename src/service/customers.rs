//! What happened to each customer (SPEC §12): a job's customers with their
//! outcomes, and a customer's history across jobs, under the same
//! visibility as the jobs themselves (an operator sees their own).

use serde::{Deserialize, Serialize};

use super::jobs::{JobFilterParams, PageParams};
use super::{Actor, Service};
use crate::domain::job::{Job, JobId};
use crate::domain::outcome::{CustomerOutcome, HistoryEntry, Outcome};
use crate::domain::query::{HistoryFilter, JobCursor};
use crate::error::{Error, Result};

/// The filters of a customer's history, as sent.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::Args, utoipa::IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Only jobs on this cluster.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Only jobs of this action.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// ok, failed, unknown or pending: what the job did to this customer.
    #[arg(long)]
    #[param(value_type = Option<String>, pattern = "^(ok|failed|unknown|pending)?$")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// From this time (RFC 3339) or day (YYYY-MM-DD, UTC), inclusive.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Before this time (RFC 3339), or up to the end of this day, included.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// An outcome filter as sent, or `400 invalid_query`.
pub fn parse_outcome(value: Option<&str>) -> Result<Option<Outcome>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => Outcome::parse(v).map(Some).ok_or_else(|| {
            Error::InvalidQuery(format!(
                "outcome: {v:?} is not ok, failed, unknown or pending"
            ))
        }),
    }
}

impl HistoryParams {
    /// The typed filter, or `400 invalid_query`.
    pub fn parse(&self) -> Result<HistoryFilter> {
        // The times and names read exactly as the job filters read them.
        let jobs = JobFilterParams {
            cluster: self.cluster.clone(),
            action: self.action.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            ..JobFilterParams::default()
        }
        .parse()?;
        Ok(HistoryFilter {
            user: None,
            cluster: jobs.cluster,
            action: jobs.action,
            outcome: parse_outcome(self.outcome.as_deref())?,
            since: jobs.since,
            until: jobs.until,
        })
    }

    /// `name=value&...` of the filters that are set, for links that keep them.
    pub fn query_string(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }
}

/// One page of a customer's history, newest first.
#[derive(Clone, Debug)]
pub struct HistoryPage {
    pub cid: String,
    pub entries: Vec<HistoryEntry>,
    pub next_cursor: Option<String>,
}

impl Service {
    /// A job's customers in request order (only those with `outcome`, when
    /// given), if `actor` may see the job.
    #[tracing::instrument(skip_all)]
    pub async fn job_customers(
        &self,
        actor: &Actor,
        job_id: &str,
        outcome: Option<&str>,
    ) -> Result<(Job, Vec<CustomerOutcome>)> {
        let outcome = parse_outcome(outcome)?;
        let job = self.get_job(actor, job_id).await?;
        let customers = self.db.job_customers(job.job_id, outcome).await?;
        Ok((job, customers))
    }

    /// One page of what the jobs `actor` may see did to customer `cid`.
    /// The CID matches exactly; one that is not a valid CID is
    /// `400 invalid_query`.
    #[tracing::instrument(skip_all)]
    pub async fn customer_history(
        &self,
        actor: &Actor,
        cid: &str,
        params: &HistoryParams,
        page: &PageParams,
    ) -> Result<HistoryPage> {
        let cid = self
            .execution
            .cid_policy()
            .parse_one(cid.trim())
            .map_err(|bad| {
                Error::InvalidQuery(format!(
                    "cid: {:?} is not a customer ID ({})",
                    bad.value, bad.reason
                ))
            })?;
        let mut filter = params.parse()?;
        if let Actor::User(viewer) = actor {
            if !viewer.role.sees_all_jobs() {
                filter.user = Some(viewer.username.clone());
            }
        }
        let page = page.parse()?;
        let limit = page.limit.get() as usize;
        let mut entries = self
            .db
            .customer_history(cid.as_str(), &filter, page.cursor, page.limit.get() + 1)
            .await?;
        let next_cursor = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|e| {
                JobCursor {
                    created_at: e.created_at,
                    job_id: e.job_id.as_uuid(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(HistoryPage {
            cid: cid.as_str().to_owned(),
            entries,
            next_cursor,
        })
    }

    /// The jobs that retried `job_id` and that `actor` may see.
    pub async fn retries_of(&self, actor: &Actor, job_id: JobId) -> Result<Vec<Job>> {
        let retries = self.db.retries_of(job_id).await?;
        Ok(retries
            .into_iter()
            .filter(|j| actor.sees_all_jobs() || actor.user().is_some_and(|u| u.username == j.user))
            .collect())
    }
}
