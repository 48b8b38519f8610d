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

impl DuplicatesQuery {
    /// The typed parameters, or `400 invalid_query`.
    pub fn parse(&self) -> Result<DuplicateParams> {
        let window = match present(&self.window_s) {
            None => Window::DEFAULT,
            Some(s) => Window::from_secs_str(s)
                .map_err(|why| Error::InvalidQuery(format!("window_s: {why}")))?,
        };
        let include_marked = match present(&self.include_marked) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => {
                return Err(Error::InvalidQuery(format!(
                    "include_marked: {other:?} is not true or false"
                )))
            }
        };
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
    ) -> Result<DuplicateReport> {
        actor.require_sees_all()?;
        duplicates::find_duplicates(&self.db, params).await
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
