//! What the audit may be asked: the typed job filter every listing, export,
//! chart and command line reads jobs through, a position in the
//! newest-first order, and a page size. Parsed once from what a person or a
//! script sent (`service::jobs::JobFilterParams`); the store only ever sees
//! these types.

use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::job::JobStatus;

/// Filters of the audit; every one optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub user: Option<String>,
    pub action: Option<String>,
    pub cluster: Option<String>,
    pub status: Option<JobStatus>,
    /// Jobs touching this customer ID (exact, case-sensitive).
    pub cid: Option<String>,
    /// Inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
    /// Jobs that answered repeated requests (`true`) or none (`false`).
    pub retried: Option<bool>,
    /// Jobs whose reason contains this text, ignoring case.
    pub reason: Option<String>,
}

/// Filters of a customer's history; every one optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only this user's jobs (the visibility rule sets it for operators).
    pub user: Option<String>,
    pub cluster: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<super::outcome::Outcome>,
    /// Inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
}

/// A position in the newest-first order: the last job of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobCursor {
    pub created_at: DateTime<Utc>,
    pub job_id: Uuid,
}

impl JobCursor {
    /// Opaque to clients: base64 of the last job's time and id.
    pub fn encode(&self) -> String {
        let raw = format!("{}.{}", self.created_at.timestamp_millis(), self.job_id);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// A cursor this server issued; `None` for anything else.
    pub fn decode(s: &str) -> Option<Self> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (millis, id) = raw.split_once('.')?;
        Some(JobCursor {
            created_at: DateTime::from_timestamp_millis(millis.parse().ok()?)?,
            job_id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// How many jobs one page holds: 1 to `Limit::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub const DEFAULT: Limit = Limit(50);
    pub const MAX: u32 = 500;

    pub fn new(n: u32) -> Option<Self> {
        (1..=Self::MAX).contains(&n).then_some(Limit(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One page of a listing: where it starts and how long it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub cursor: Option<JobCursor>,
    pub limit: Limit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = JobCursor {
            created_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            job_id: Uuid::now_v7(),
        };
        assert_eq!(JobCursor::decode(&c.encode()), Some(c));
        assert_eq!(JobCursor::decode("not-a-cursor"), None);
        assert_eq!(JobCursor::decode(""), None);
    }

    #[test]
    fn a_limit_is_between_one_and_the_maximum() {
        assert_eq!(Limit::new(0), None);
        assert_eq!(Limit::new(1).map(Limit::get), Some(1));
        assert_eq!(Limit::new(500).map(Limit::get), Some(500));
        assert_eq!(Limit::new(501), None);
    }
}
