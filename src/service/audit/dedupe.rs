//! Marking duplicates: every later job of a group gets `duplicate_of` = the
//! group's first job. Nothing is deleted; a job already marked is left as it
//! is, so a second run changes nothing. Writes go in transactions of bounded
//! size while the scan goes on, so memory stays flat on any store.

use chrono::{DateTime, Utc};

use super::duplicates::{DuplicateParams, DuplicateScan, ScanStep};
use crate::domain::job::JobId;
use crate::error::Result;
use crate::store::Db;

/// How many marks one transaction carries.
pub const DEFAULT_BATCH: usize = 500;

/// One job to mark, with what a person needs to recognise it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub job_id: JobId,
    pub duplicate_of: JobId,
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub created_at: DateTime<Utc>,
}

/// What happened, as it happens (for listings and progress bars).
#[derive(Debug)]
pub enum DedupeEvent<'a> {
    /// A job that is (or, in a dry run, would be) marked.
    Mark(&'a Mark),
    /// Jobs read so far.
    Progress(u64),
}

/// The totals of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DedupeSummary {
    pub jobs_scanned: u64,
    /// Groups that had at least one job to mark.
    pub groups: u64,
    /// Jobs to mark (the dry run's answer).
    pub to_mark: u64,
    /// Jobs this run marked (0 in a dry run).
    pub marked: u64,
    /// Later jobs of a group that carried a mark already.
    pub already_marked: u64,
}

/// Finds the groups and marks their later jobs when `apply`, else only
/// reports what it would mark. `on_event` sees each mark and the progress.
pub async fn dedupe(
    db: &Db,
    params: &DuplicateParams,
    apply: bool,
    batch: usize,
    mut on_event: impl FnMut(DedupeEvent<'_>),
) -> Result<DedupeSummary> {
    // Resolved groups too, so the summary can count what was marked before.
    let params = DuplicateParams {
        include_marked: true,
        ..params.clone()
    };
    let batch = batch.max(1);
    let mut scan = DuplicateScan::new(db, &params);
    let mut summary = DedupeSummary::default();
    let mut pending: Vec<(JobId, JobId)> = Vec::with_capacity(batch);
    while let Some(step) = scan.next_step().await? {
        let group = match step {
            ScanStep::Group(group) => group,
            ScanStep::Progress(n) => {
                on_event(DedupeEvent::Progress(n));
                continue;
            }
        };
        let first = group.members[0].job_id;
        let mut any = false;
        for member in &group.members[1..] {
            if member.duplicate_of.is_some() {
                summary.already_marked += 1;
                continue;
            }
            any = true;
            summary.to_mark += 1;
            let mark = Mark {
                job_id: member.job_id,
                duplicate_of: first,
                user: group.user.clone(),
                cluster: group.cluster.clone(),
                action: group.action.clone(),
                created_at: member.created_at,
            };
            on_event(DedupeEvent::Mark(&mark));
            if apply {
                pending.push((mark.job_id, first));
                if pending.len() >= batch {
                    summary.marked += db.mark_duplicates(&pending).await?;
                    pending.clear();
                }
            }
        }
        summary.groups += u64::from(any);
    }
    if !pending.is_empty() {
        summary.marked += db.mark_duplicates(&pending).await?;
    }
    summary.jobs_scanned = scan.rows_seen();
    on_event(DedupeEvent::Progress(summary.jobs_scanned));
    Ok(summary)
}

/// Marks the later jobs of the one group whose first job is `first`, as
/// the report with these parameters shows it; `None` when there is no such
/// group (any more).
pub async fn dedupe_group(
    db: &Db,
    params: &DuplicateParams,
    include_confirmed: bool,
    first: JobId,
) -> Result<Option<DedupeSummary>> {
    let params = DuplicateParams {
        include_marked: true,
        ..params.clone()
    };
    let mut scan = DuplicateScan::new(db, &params).including_confirmed(include_confirmed);
    while let Some(group) = scan.next_group().await? {
        if group.members[0].job_id != first {
            continue;
        }
        let mut summary = DedupeSummary {
            groups: 1,
            ..DedupeSummary::default()
        };
        let marks: Vec<(JobId, JobId)> = group.members[1..]
            .iter()
            .filter(|m| {
                let unmarked = m.duplicate_of.is_none();
                if !unmarked {
                    summary.already_marked += 1;
                }
                unmarked
            })
            .map(|m| (m.job_id, first))
            .collect();
        summary.to_mark = marks.len() as u64;
        if !marks.is_empty() {
            summary.marked = db.mark_duplicates(&marks).await?;
        }
        summary.jobs_scanned = scan.rows_seen();
        return Ok(Some(summary));
    }
    Ok(None)
}
