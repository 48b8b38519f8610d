//! Runs (SPEC §13): one confirmed request over thousands of customers,
//! split in order into batches, each batch one job when it is sent. What a
//! run and its batches may be, which transitions a person may ask for, and
//! how the counters add up: pure rules, the dispatcher and the store follow
//! them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::job::{JobId, JobStatus};
use super::outcome::{Outcome, OutcomeCounts};

/// A run's id: a UUIDv7 (time-ordered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RunId(Uuid);

impl RunId {
    pub fn new_at(at: DateTime<Utc>) -> Self {
        Self(JobId::new_at(at).as_uuid())
    }

    pub fn parse(s: &str) -> Option<Self> {
        Uuid::parse_str(s).ok().map(Self)
    }

    pub fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waits for its `run_at`.
    Scheduled,
    /// No batch sent yet.
    Queued,
    Running,
    /// Sends no new batch until resumed.
    Paused,
    /// Sends no new batch again; its unsent batches are `cancelled`.
    Cancelled,
    /// Every batch ended.
    Finished,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        Self::Scheduled,
        Self::Queued,
        Self::Running,
        Self::Paused,
        Self::Cancelled,
        Self::Finished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
            Self::Finished => "finished",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the run is over: no batch of it will start again.
    pub fn is_over(self) -> bool {
        matches!(self, Self::Cancelled | Self::Finished)
    }
}

/// What a person may ask of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunCommand {
    Pause,
    Resume,
    Cancel,
}

impl RunCommand {
    /// The statuses the command applies to, and the status it leads to.
    pub fn transition(self) -> (&'static [RunStatus], RunStatus) {
        use RunStatus::*;
        match self {
            Self::Pause => (&[Queued, Running], Paused),
            Self::Resume => (&[Paused], Running),
            Self::Cancel => (&[Scheduled, Queued, Running, Paused], Cancelled),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
        }
    }
}

/// Where a batch stands: waiting, being sent, ended as its job, or
/// cancelled with its run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Queued,
    Running,
    Succeeded,
    Partial,
    Failed,
    TimedOut,
    Unknown,
    Cancelled,
}

impl BatchStatus {
    pub const ALL: [BatchStatus; 8] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Partial,
        Self::Failed,
        Self::TimedOut,
        Self::Unknown,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Unknown => "unknown",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The batch's status once its job ended so.
    pub fn of_job(status: JobStatus) -> Self {
        match status {
            JobStatus::Pending => Self::Running,
            JobStatus::Succeeded => Self::Succeeded,
            JobStatus::Partial => Self::Partial,
            JobStatus::Failed => Self::Failed,
            JobStatus::TimedOut => Self::TimedOut,
            JobStatus::Unknown => Self::Unknown,
        }
    }
}

/// How many batches stand each way; they add up to `batch_count`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchCounts {
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub partial: i64,
    pub failed: i64,
    pub timed_out: i64,
    pub unknown: i64,
    pub cancelled: i64,
}

impl BatchCounts {
    pub fn add(&mut self, status: BatchStatus, n: i64) {
        let slot = match status {
            BatchStatus::Queued => &mut self.queued,
            BatchStatus::Running => &mut self.running,
            BatchStatus::Succeeded => &mut self.succeeded,
            BatchStatus::Partial => &mut self.partial,
            BatchStatus::Failed => &mut self.failed,
            BatchStatus::TimedOut => &mut self.timed_out,
            BatchStatus::Unknown => &mut self.unknown,
            BatchStatus::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }
}

/// How many of a run's customers ended each way; they add up to
/// `cid_count`. A CID of a queued, running or cancelled batch is `not_run`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunCustomerCounts {
    pub ok: i64,
    pub failed: i64,
    pub unknown: i64,
    pub not_run: i64,
}

impl RunCustomerCounts {
    /// Adds a batch: an ended one by its job's outcomes, any other as not run.
    pub fn add(&mut self, status: BatchStatus, cid_count: i64, outcomes: Option<OutcomeCounts>) {
        match (status, outcomes) {
            (
                BatchStatus::Succeeded
                | BatchStatus::Partial
                | BatchStatus::Failed
                | BatchStatus::TimedOut
                | BatchStatus::Unknown,
                Some(o),
            ) => {
                self.ok += o.ok;
                self.failed += o.failed;
                self.unknown += o.unknown + o.pending;
            }
            _ => self.not_run += cid_count,
        }
    }
}

/// A run as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Run {
    pub run_id: RunId,
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub action_code: i64,
    pub reason: Option<String>,
    pub cid_count: i64,
    pub batch_size: i64,
    pub batch_count: i64,
    pub status: RunStatus,
    pub batches: BatchCounts,
    pub customers: RunCustomerCounts,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub run_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    pub retry_of: Option<RunId>,
    pub approved_by: Option<String>,
    pub approval_id: Option<super::approval::ApprovalId>,
}

/// One batch of a run, as the run's page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Batch {
    pub batch_index: i64,
    pub cid_count: i64,
    pub status: BatchStatus,
    pub job_id: Option<JobId>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub started_at: Option<DateTime<Utc>>,
}

/// What a run did to one customer: its batch's job's outcome, or `not_run`
/// while its batch is queued or after it was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Ok,
    Failed,
    Unknown,
    /// Its batch is being sent.
    Pending,
    NotRun,
}

impl RunOutcome {
    pub const ALL: [RunOutcome; 5] = [
        Self::Ok,
        Self::Failed,
        Self::Unknown,
        Self::Pending,
        Self::NotRun,
    ];

    /// A sent customer's outcome, or `not_run` for one never sent.
    pub fn of(sent: Option<Outcome>) -> Self {
        match sent {
            Some(Outcome::Ok) => Self::Ok,
            Some(Outcome::Failed) => Self::Failed,
            Some(Outcome::Unknown) => Self::Unknown,
            Some(Outcome::Pending) => Self::Pending,
            None => Self::NotRun,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::Pending => "pending",
            Self::NotRun => "not_run",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The batches of `cids`, in order: `batch_size` CIDs each, the last one
/// holding what is left.
pub fn split<T: Clone>(cids: &[T], batch_size: usize) -> Vec<Vec<T>> {
    cids.chunks(batch_size.max(1)).map(<[T]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_the_order_and_the_last_holds_the_rest() {
        let cids: Vec<u32> = (0..1203).collect();
        let batches = split(&cids, 500);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [500, 500, 203]
        );
        assert_eq!(batches.concat(), cids);
    }

    #[test]
    fn each_command_applies_only_where_the_contract_says() {
        use RunStatus::*;
        let applies = |c: RunCommand, s: RunStatus| c.transition().0.contains(&s);
        for s in RunStatus::ALL {
            assert_eq!(applies(RunCommand::Pause, s), matches!(s, Queued | Running));
            assert_eq!(applies(RunCommand::Resume, s), s == Paused);
            assert_eq!(
                applies(RunCommand::Cancel, s),
                matches!(s, Scheduled | Queued | Running | Paused)
            );
        }
    }

    #[test]
    fn customer_counts_add_up_with_unsent_batches_not_run() {
        let mut c = RunCustomerCounts::default();
        c.add(
            BatchStatus::Partial,
            3,
            Some(OutcomeCounts {
                ok: 1,
                failed: 1,
                unknown: 1,
                pending: 0,
            }),
        );
        c.add(BatchStatus::Queued, 5, None);
        c.add(BatchStatus::Cancelled, 2, None);
        c.add(BatchStatus::Running, 4, Some(OutcomeCounts::pending(4)));
        assert_eq!((c.ok, c.failed, c.unknown, c.not_run), (1, 1, 1, 11));
    }
}
