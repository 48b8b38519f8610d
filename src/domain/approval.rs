//! Four-eyes approval (SPEC §14): a request for a dangerous action, frozen
//! exactly as it was checked, waits for a second person. What an approval
//! may be, who may decide it, which decision it takes from where, and what
//! a comment may be: pure rules, the store and the service follow them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::action::Action;
use super::cluster::Cluster;
use super::job::JobId;
use super::run::RunId;
use super::user::User;

/// An approval's id: a UUIDv7 (time-ordered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ApprovalId(Uuid);

impl ApprovalId {
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

    /// The key of the job or run an approval executes: it names the
    /// approval and has a space, which no client key may have, so nothing
    /// a client sends can take it.
    pub fn execution_key(&self) -> String {
        format!("approval {}", self.0.hyphenated())
    }
}

impl std::fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What an approval executes once approved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// One Set Action.
    Job,
    /// A run in batches.
    Run,
}

impl ApprovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Job => "job",
            Self::Run => "run",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "job" => Some(Self::Job),
            "run" => Some(Self::Run),
            _ => None,
        }
    }
}

/// Where an approval stands. Only `awaiting` may change, and only once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Awaiting,
    /// Approved, and its job or run created in the same write.
    Approved,
    Rejected,
    /// Withdrawn by its requester.
    Cancelled,
    /// Nobody decided before `expires_at`.
    Expired,
}

impl std::fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 5] = [
        Self::Awaiting,
        Self::Approved,
        Self::Rejected,
        Self::Cancelled,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Awaiting => "awaiting",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// What a person may do to an awaiting approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Cancel,
}

impl Decision {
    /// The status an awaiting approval takes.
    pub fn status(self) -> ApprovalStatus {
        match self {
            Self::Approve => ApprovalStatus::Approved,
            Self::Reject => ApprovalStatus::Rejected,
            Self::Cancel => ApprovalStatus::Cancelled,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Cancel => "cancel",
        }
    }
}

/// Why a person may not take a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The requester approving or rejecting their own request.
    SelfApproval,
    /// A role that may not decide (an auditor), or someone else's cancel.
    NotAllowed,
}

/// Who may take `decision` on a request of `requested_by`: approve and
/// reject take an admin or operator other than the requester; cancel takes
/// the requester alone.
pub fn may_decide(user: &User, requested_by: &str, decision: Decision) -> Result<(), Refusal> {
    let is_requester = user.username == requested_by;
    match decision {
        Decision::Cancel if is_requester => Ok(()),
        Decision::Cancel => Err(Refusal::NotAllowed),
        Decision::Approve | Decision::Reject if !user.role.can_execute() => {
            Err(Refusal::NotAllowed)
        }
        Decision::Approve | Decision::Reject if is_requester => Err(Refusal::SelfApproval),
        Decision::Approve | Decision::Reject => Ok(()),
    }
}

/// Whether a request needs four eyes: its action's or its cluster's
/// `approval_required`.
pub fn needs_approval(cluster: &Cluster, action: &Action) -> bool {
    cluster.approval_required || action.approval_required
}

/// The most characters a comment may have.
pub const MAX_COMMENT_CHARS: usize = 500;
/// The fewest characters a comment may have (a rejection needs one).
pub const MIN_COMMENT_CHARS: usize = 3;

/// A decision's comment, trimmed (blank is none): a rejection needs one of
/// 3 to 500 characters; an approval or cancel may give one, of the same
/// length. `Err` says what is wrong.
pub fn check_comment(decision: Decision, comment: Option<&str>) -> Result<Option<String>, String> {
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    let needed = decision == Decision::Reject;
    match comment {
        None if needed => Err(format!(
            "a rejection needs a comment of {MIN_COMMENT_CHARS} to {MAX_COMMENT_CHARS} characters saying why"
        )),
        None => Ok(None),
        Some(c) if (MIN_COMMENT_CHARS..=MAX_COMMENT_CHARS).contains(&c.chars().count()) => {
            Ok(Some(c.to_owned()))
        }
        Some(c) => Err(format!(
            "a comment is {MIN_COMMENT_CHARS} to {MAX_COMMENT_CHARS} characters; this one has {}",
            c.chars().count()
        )),
    }
}

/// An approval as the API shows it: the request exactly as it was checked,
/// and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub approval_id: ApprovalId,
    pub kind: ApprovalKind,
    pub status: ApprovalStatus,
    pub requested_by: String,
    pub cluster: String,
    pub action: String,
    pub action_code: i64,
    pub cids: Vec<String>,
    pub cid_count: i64,
    pub reason: Option<String>,
    /// For a run: its batch size; null for a job.
    pub batch_size: Option<i64>,
    /// For a run: when it starts; null to start once approved.
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub run_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub expires_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub job_id: Option<JobId>,
    pub run_id: Option<RunId>,
}

impl Approval {
    /// True while it awaits and its time has not run out at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.status == ApprovalStatus::Awaiting && now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::Role;

    fn user(name: &str, role: Role) -> User {
        User {
            username: name.into(),
            role,
            disabled: false,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn only_another_admin_or_operator_decides_and_only_the_requester_cancels() {
        let ana = user("ana", Role::Operator);
        let bob = user("bob", Role::Operator);
        let root = user("root", Role::Admin);
        let audrey = user("audrey", Role::Auditor);
        for decision in [Decision::Approve, Decision::Reject] {
            assert_eq!(
                may_decide(&ana, "ana", decision),
                Err(Refusal::SelfApproval)
            );
            assert_eq!(may_decide(&bob, "ana", decision), Ok(()));
            assert_eq!(may_decide(&bob, "root", decision), Ok(()));
            assert_eq!(may_decide(&root, "ana", decision), Ok(()));
            assert_eq!(
                may_decide(&audrey, "ana", decision),
                Err(Refusal::NotAllowed)
            );
        }
        assert_eq!(may_decide(&ana, "ana", Decision::Cancel), Ok(()));
        assert_eq!(
            may_decide(&root, "ana", Decision::Cancel),
            Err(Refusal::NotAllowed)
        );
    }

    #[test]
    fn a_rejection_needs_a_comment_of_three_to_five_hundred_characters() {
        assert!(check_comment(Decision::Reject, None).is_err());
        assert!(check_comment(Decision::Reject, Some("  ")).is_err());
        assert!(check_comment(Decision::Reject, Some("no")).is_err());
        assert_eq!(
            check_comment(Decision::Reject, Some(" not on a Friday ")),
            Ok(Some("not on a Friday".into()))
        );
        assert!(check_comment(Decision::Reject, Some(&"x".repeat(500))).is_ok());
        assert!(check_comment(Decision::Reject, Some(&"x".repeat(501))).is_err());
        assert_eq!(check_comment(Decision::Approve, None), Ok(None));
        assert!(check_comment(Decision::Approve, Some(&"é".repeat(501))).is_err());
    }

    #[test]
    fn statuses_read_back_as_written() {
        for s in ApprovalStatus::ALL {
            assert_eq!(ApprovalStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ApprovalKind::parse("run"), Some(ApprovalKind::Run));
        assert_eq!(ApprovalKind::parse("jobs"), None);
    }

    #[test]
    fn the_execution_key_is_one_no_client_can_send() {
        let id = ApprovalId::new_at(Utc::now());
        let key = id.execution_key();
        assert!(crate::domain::idempotency::IdempotencyKey::parse(Some(key.as_bytes())).is_err());
    }
}
