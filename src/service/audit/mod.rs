//! The audit tooling: the duplicate report, the marking of duplicates, the
//! import of the old dashboard's jobs and the export of the audit. Shared by
//! the command line, the API and the pages. Only `retention`, when configured,
//! ever deletes a job.

pub mod dedupe;
pub mod duplicates;
pub mod export;
pub mod legacy;
pub mod retention;
pub mod seal;

pub use duplicates::{
    DuplicateGroup, DuplicateParams, DuplicateReport, DuplicateScan, ScanStep, Window,
};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Actor, Service};
use crate::domain::job::JobId;
use crate::error::{Error, Result};
use dedupe::{DedupeSummary, DEFAULT_BATCH};

/// The duplicate report's parameters, as sent (the API's query, the page's).
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DuplicatesQuery {
    /// Seconds between two jobs of a group, fractions allowed; default 2.
    #[param(value_type = Option<f64>, minimum = 0, maximum = 86400, example = 2)]
    #[serde(default)]
    pub window_s: Option<String>,
    /// RFC 3339, inclusive; all history when absent.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(default)]
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(default)]
    pub until: Option<String>,
    /// `true`: also the groups already marked by `audit dedupe`.
    #[param(value_type = Option<bool>)]
    #[serde(default)]
    pub include_marked: Option<String>,
    /// `true`: also the jobs created with `confirm_duplicate: true` (run
    /// again on purpose after the recent-duplicate warning), which are left
    /// out otherwise.
    #[param(value_type = Option<bool>)]
    #[serde(default)]
    pub include_confirmed: Option<String>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_time(name: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>> {
    present(v)
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Error::InvalidQuery(format!("{name}: {s:?} is not an RFC 3339 time")))
        })
        .transpose()
}

fn parse_flag(name: &str, v: &Option<String>) -> Result<bool> {
    match present(v) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(Error::InvalidQuery(format!(
            "{name}: {other:?} is not true or false"
        ))),
    }
}

impl DuplicatesQuery {
    /// Whether the jobs run again on purpose (`confirm_duplicate`) are
    /// included, or `400 invalid_query`.
    pub fn include_confirmed(&self) -> Result<bool> {
        parse_flag("include_confirmed", &self.include_confirmed)
    }

    /// The typed parameters, or `400 invalid_query`.
    pub fn parse(&self) -> Result<DuplicateParams> {
        let window = match present(&self.window_s) {
            None => Window::DEFAULT,
            Some(s) => Window::from_secs_str(s)
                .map_err(|why| Error::InvalidQuery(format!("window_s: {why}")))?,
        };
        let include_marked = parse_flag("include_marked", &self.include_marked)?;
        Ok(DuplicateParams {
            window,
            since: parse_time("since", &self.since)?,
            until: parse_time("until", &self.until)?,
            include_marked,
        })
    }
}

impl Service {
    /// The duplicate groups (admins, auditors and the command line).
    pub async fn duplicate_report(
        &self,
        actor: &Actor,
        params: &DuplicateParams,
        include_confirmed: bool,
    ) -> Result<DuplicateReport> {
        actor.require_sees_all()?;
        duplicates::find_duplicates(&self.db, params, include_confirmed).await
    }

    /// Marks the later jobs of one group, the one whose first job is
    /// `first` in the report of these parameters (admins); `404` when the
    /// report has no such group.
    pub async fn mark_duplicate_group(
        &self,
        actor: &Actor,
        params: &DuplicateParams,
        include_confirmed: bool,
        first: JobId,
    ) -> Result<DedupeSummary> {
        actor.require_admin()?;
        let summary = dedupe::dedupe_group(&self.db, params, include_confirmed, first)
            .await?
            .ok_or(Error::NotFound)?;
        tracing::info!(
            by = actor.user().map_or("command line", |u| u.username.as_str()),
            first = %first,
            marked = summary.marked,
            "a duplicate group marked"
        );
        Ok(summary)
    }

    /// Marks the later jobs of every group (admins and the command line).
    pub async fn mark_duplicates(
        &self,
        actor: &Actor,
        params: &DuplicateParams,
    ) -> Result<DedupeSummary> {
        actor.require_admin()?;
        let summary = dedupe::dedupe(&self.db, params, true, DEFAULT_BATCH, |_| {}).await?;
        tracing::info!(
            by = actor.user().map_or("command line", |u| u.username.as_str()),
            marked = summary.marked,
            groups = summary.groups,
            "duplicates marked"
        );
        Ok(summary)
    }
}
