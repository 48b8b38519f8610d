//! A job: the record of one executed Set Action request, as the audit and the
//! API show it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::outcome::OutcomeCounts;

/// A job's id: a UUIDv7 for jobs this product creates (time-ordered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    /// A fresh, time-ordered id for a job created at `at`.
    pub fn new_at(at: DateTime<Utc>) -> Self {
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            at.timestamp() as u64,
            at.timestamp_subsec_nanos(),
        );
        Self(Uuid::new_v7(ts))
    }

    pub fn parse(s: &str) -> Option<Self> {
        Uuid::parse_str(s).ok().map(Self)
    }

    pub fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }

    /// The ids that start with `prefix` (hex digits, hyphens ignored, at
    /// least 4 of them) as the smallest and largest such id: a range an
    /// index serves. `None` when it is not such a prefix.
    pub fn prefix_range(prefix: &str) -> Option<(Uuid, Uuid)> {
        let hex: String = prefix.trim().chars().filter(|c| *c != '-').collect();
        if !(4..=32).contains(&hex.len()) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let pad = |with: char| {
            let mut full = hex.to_ascii_lowercase();
            full.extend(std::iter::repeat_n(with, 32 - hex.len()));
            Uuid::parse_str(&full).ok()
        };
        Some((pad('0')?, pad('f')?))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Where a job stands. Only `pending` may change, and only once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Succeeded,
    /// Some customers `ok`, some not (the cluster listed them).
    Partial,
    Failed,
    TimedOut,
    /// The instance running it stopped before the outcome was recorded.
    Unknown,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        Self::Pending,
        Self::Succeeded,
        Self::Partial,
        Self::Failed,
        Self::TimedOut,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The HTTP status that answers a request whose job ended this way.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Succeeded => 201,
            Self::Partial => 207,
            Self::Failed | Self::Unknown => 502,
            Self::TimedOut => 504,
            Self::Pending => 202,
        }
    }
}

pub use crate::time::{format_time, now_millis, truncate_millis};

/// `response_summary` keeps at most this much of the cluster's body.
pub const SUMMARY_BYTES: usize = 4 * 1024;

/// The body as text, cut to 4 KiB on a character boundary; `None` if empty.
pub fn summarize(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(SUMMARY_BYTES + 4)]);
    let mut end = text.len().min(SUMMARY_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_owned())
}

/// A job as the API returns it.
#[derive(Clone, Debug, Serialize)]
pub struct Job {
    pub job_id: JobId,
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub action_code: i64,
    pub cids: Vec<String>,
    pub cid_count: i64,
    pub status: JobStatus,
    pub upstream_status: Option<i64>,
    pub response_summary: Option<String>,
    pub error: Option<String>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub duplicate_of: Option<JobId>,
    pub reason: Option<String>,
    pub confirm_duplicate: bool,
    pub replay_count: i64,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub last_replay_at: Option<DateTime<Utc>>,
    pub phases: Phases,
    /// Links the job to the previously sealed one; null until sealed.
    pub audit_hash: Option<String>,
    /// Brought in from the old dashboard by `import legacy`.
    pub imported: bool,
    /// The old dashboard's id, when it was not a UUID and a new one was given.
    pub legacy_id: Option<String>,
    /// How many customers ended each way; they add up to `cid_count`.
    pub outcomes: OutcomeCounts,
    /// The job whose failed customers this one runs again.
    pub retry_of: Option<JobId>,
    /// The run this job is a batch of, and which one (0-based); both null
    /// for a job outside runs.
    pub run_id: Option<super::run::RunId>,
    pub batch_index: Option<i64>,
    /// Who approved the request, and the approval, for an action that
    /// needs four eyes; both null otherwise.
    pub approved_by: Option<String>,
    pub approval_id: Option<super::approval::ApprovalId>,
}

/// When a job passed each phase of its run; phases not reached are null.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Phases {
    /// The claim transaction: the job's creation.
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub claimed_at: Option<DateTime<Utc>>,
    /// The request left for the cluster.
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub sent_at: Option<DateTime<Utc>>,
    /// The cluster's answer arrived (null on timeouts and connection errors).
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub answered_at: Option<DateTime<Utc>>,
    /// The outcome was recorded.
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub finalized_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_names_the_range_of_ids_it_starts() {
        let (lo, hi) = JobId::prefix_range("01a237f5").unwrap();
        assert_eq!(lo.to_string(), "01a237f5-0000-0000-0000-000000000000");
        assert_eq!(hi.to_string(), "01a237f5-ffff-ffff-ffff-ffffffffffff");
        let (lo, _) = JobId::prefix_range("01A2-37f5-9").unwrap();
        assert_eq!(lo.to_string(), "01a237f5-9000-0000-0000-000000000000");
        for bad in ["01a", "xyz12345", "", &"0".repeat(33)] {
            assert!(JobId::prefix_range(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn new_ids_are_version_7_and_ordered_by_time() {
        let t = now_millis();
        let a = JobId::new_at(t);
        let b = JobId::new_at(t + chrono::Duration::milliseconds(1));
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b);
    }

    #[test]
    fn statuses_round_trip() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobStatus::parse("completed"), None);
    }
}
