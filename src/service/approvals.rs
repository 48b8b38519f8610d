//! Four-eyes approval (SPEC §14). A Set Action or run whose action or
//! cluster has `approval_required` passes every check of its kind, then is
//! frozen as an approval instead of executed (`request`, called by the
//! execution and the runs). A second person approves it, and it executes
//! once, as its requester, with the approver as `approved_by`: the approval
//! leaves `awaiting` in the same write that claims its job or commits its
//! run, so the database, not a lock in memory, decides who was first.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::execution::{ExecutionService, SetActionResponse};
use super::jobs::PageParams;
use super::runs::Runs;
use super::Service;
use crate::domain::approval::{
    check_comment, may_decide, Approval, ApprovalId, ApprovalKind, ApprovalStatus, Decision,
    Refusal,
};
use crate::domain::job::{now_millis, JobId};
use crate::domain::query::JobCursor;
use crate::domain::user::User;
use crate::error::{Error, Result};
use crate::store::approvals::{
    ApprovalClaim, Decided, DecisionRecord, Execution, NewApproval, StoredApproval,
};
use crate::store::jobs::NewJob;
use crate::store::Db;

/// The body of `approve`, `reject` and `cancel`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DecisionRequest {
    /// Required to reject (3 to 500 characters); optional otherwise.
    #[serde(default)]
    pub comment: Option<String>,
}

/// The filter of the approvals' listing, as sent.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::Args, utoipa::IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct ApprovalFilterParams {
    /// awaiting, approved, rejected, cancelled or expired.
    #[arg(long)]
    #[param(value_type = Option<String>, pattern = "^(awaiting|approved|rejected|cancelled|expired)?$")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl ApprovalFilterParams {
    /// The typed status, or `400 invalid_query`.
    pub fn parse(&self) -> Result<Option<ApprovalStatus>> {
        match self
            .status
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => Ok(None),
            Some(s) => ApprovalStatus::parse(s).map(Some).ok_or_else(|| {
                Error::InvalidQuery(format!(
                    "status: {s:?} is not awaiting, approved, rejected, cancelled or expired"
                ))
            }),
        }
    }
}

/// One page of approvals, newest first.
#[derive(Clone, Debug)]
pub struct ApprovalsPage {
    pub approvals: Vec<Approval>,
    pub next_cursor: Option<String>,
}

/// A request that passed every check and needs four eyes, as the job's or
/// the run's checks leave it.
pub(super) struct ApprovalRequest {
    pub kind: ApprovalKind,
    pub requested_by: String,
    pub key: String,
    pub cluster: String,
    pub action: String,
    pub action_code: i64,
    pub cids: Vec<String>,
    pub reason: Option<String>,
    pub batch_size: Option<i64>,
    pub run_at: Option<DateTime<Utc>>,
    /// What a replay under the key must match (the kind's own hash).
    pub payload_hash: String,
    pub intent_hash: String,
    pub confirm_duplicate: bool,
    pub retry_of: Option<Uuid>,
    pub duplicate_guard_since: Option<DateTime<Utc>>,
}

/// The answer to a request that waits: `202 {"approval"}` as first sent, or
/// its replay.
#[derive(Clone, Debug)]
pub struct ApprovalAnswer {
    pub approval_id: ApprovalId,
    pub body: String,
    pub replayed: bool,
}

/// `{"approval": Approval}`.
pub fn approval_body(approval: &Approval) -> Result<String> {
    Ok(
        serde_json::to_string(&serde_json::json!({ "approval": approval }))
            .map_err(anyhow::Error::from)?,
    )
}

/// Freezes a checked request as an approval awaiting a second person, or
/// answers from the approval already holding the key.
pub(super) async fn request(
    db: &Db,
    ttl: Duration,
    request: ApprovalRequest,
) -> Result<ApprovalAnswer> {
    let created_at = now_millis();
    let ttl = chrono::Duration::from_std(ttl).map_err(anyhow::Error::from)?;
    let approval = Approval {
        approval_id: ApprovalId::new_at(created_at),
        kind: request.kind,
        status: ApprovalStatus::Awaiting,
        requested_by: request.requested_by,
        cluster: request.cluster,
        action: request.action,
        action_code: request.action_code,
        cid_count: request.cids.len() as i64,
        cids: request.cids,
        reason: request.reason,
        batch_size: request.batch_size,
        run_at: request.run_at,
        created_at,
        expires_at: created_at + ttl,
        decided_by: None,
        decided_at: None,
        comment: None,
        job_id: None,
        run_id: None,
    };
    let new = NewApproval {
        response_body: approval_body(&approval)?,
        key: request.key,
        payload_hash: request.payload_hash,
        intent_hash: request.intent_hash,
        confirm_duplicate: request.confirm_duplicate,
        retry_of: request.retry_of,
        duplicate_guard_since: request.duplicate_guard_since,
        approval,
    };
    match db.claim_approval(&new).await? {
        ApprovalClaim::Existing(existing) => answer_existing(*existing, &new.payload_hash),
        ApprovalClaim::Created => {
            let a = &new.approval;
            tracing::info!(
                approval_id = %a.approval_id, user = %a.requested_by, kind = a.kind.as_str(),
                cluster = %a.cluster, action = %a.action, cid_count = a.cid_count,
                "[APPROVAL] Requested: approval_id={}, user={}, kind={}, cluster={}, action={}, cid_count={}",
                a.approval_id, a.requested_by, a.kind.as_str(), a.cluster, a.action, a.cid_count
            );
            metrics::counter!("tms_approvals_total", "status" => "awaiting").increment(1);
            Ok(ApprovalAnswer {
                approval_id: a.approval_id,
                body: new.response_body,
                replayed: false,
            })
        }
    }
}

/// A key used before for an approval: a replay of its `202`, or `422` for
/// another request.
pub(super) fn answer_existing(
    existing: StoredApproval,
    payload_hash: &str,
) -> Result<ApprovalAnswer> {
    if existing.payload_hash != payload_hash {
        return Err(Error::IdempotencyKeyReused);
    }
    let id = existing.approval.approval_id;
    tracing::info!(approval_id = %id, "[APPROVAL] Replay: approval_id={}", id);
    Ok(ApprovalAnswer {
        approval_id: id,
        body: existing.response_body,
        replayed: true,
    })
}

/// Approvals: their reads, decisions and expiry.
pub struct Approvals {
    db: Db,
    execution: Arc<ExecutionService>,
    runs: Arc<Runs>,
}

fn refused(refusal: Refusal) -> Error {
    match refusal {
        Refusal::SelfApproval => Error::SelfApproval,
        Refusal::NotAllowed => Error::Forbidden(
            "only an admin or operator other than the requester may approve or reject, and only the requester may cancel",
        ),
    }
}

impl Approvals {
    pub fn new(db: Db, execution: Arc<ExecutionService>, runs: Arc<Runs>) -> Self {
        Self {
            db,
            execution,
            runs,
        }
    }

    /// One approval. Everyone who may sign in sees every approval: a second
    /// person must be able to find what waits for them.
    pub async fn get(&self, approval_id: &str) -> Result<Approval> {
        Ok(self.stored(approval_id).await?.approval)
    }

    async fn stored(&self, approval_id: &str) -> Result<StoredApproval> {
        let id = ApprovalId::parse(approval_id).ok_or(Error::NotFound)?;
        self.db.get_approval(id).await?.ok_or(Error::NotFound)
    }

    /// One page of approvals, newest first.
    pub async fn list(
        &self,
        params: &ApprovalFilterParams,
        page: &PageParams,
    ) -> Result<ApprovalsPage> {
        let status = params.parse()?;
        let page = page.parse()?;
        let limit = page.limit.get() as usize;
        let mut approvals = self
            .db
            .list_approvals(status, page, page.limit.get() + 1)
            .await?;
        let next_cursor = if approvals.len() > limit {
            approvals.truncate(limit);
            approvals.last().map(|a| {
                JobCursor {
                    created_at: a.created_at,
                    job_id: a.approval_id.as_uuid(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(ApprovalsPage {
            approvals,
            next_cursor,
        })
    }

    /// How many approvals wait for a decision (the navigation shows it).
    pub async fn count_awaiting(&self) -> Result<i64> {
        self.db.count_awaiting_approvals(now_millis()).await
    }

    /// The checks every decision makes, in order: the approval exists, the
    /// person may take this decision, the comment fits.
    async fn check(
        &self,
        user: &User,
        approval_id: &str,
        decision: Decision,
        request: Result<DecisionRequest>,
    ) -> Result<(StoredApproval, DecisionRecord)> {
        let request = request?;
        let stored = self.stored(approval_id).await?;
        may_decide(user, &stored.approval.requested_by, decision).map_err(refused)?;
        let comment =
            check_comment(decision, request.comment.as_deref()).map_err(Error::CommentRequired)?;
        let record = DecisionRecord {
            before: stored.approval.clone(),
            approval_id: stored.approval.approval_id,
            decision,
            by: user.username.clone(),
            at: now_millis(),
            comment,
        };
        Ok((stored, record))
    }

    /// Approves and executes the request once: for a job, the answer of its
    /// execution (`201` / `207` / `502` / `504`, `{"job"}`); for a run,
    /// `202 {"run"}`. An approval no longer awaiting (or whose time ran
    /// out) is `409 already_decided`; busy customers are `409 cids_busy`
    /// and the approval keeps waiting.
    #[tracing::instrument(skip_all, fields(user = %user.username))]
    pub async fn approve(
        &self,
        user: &User,
        approval_id: &str,
        request: Result<DecisionRequest>,
    ) -> Result<SetActionResponse> {
        let (stored, record) = self
            .check(user, approval_id, Decision::Approve, request)
            .await?;
        let a = &stored.approval;
        if a.status != ApprovalStatus::Awaiting {
            return Err(Error::AlreadyDecided { status: a.status });
        }
        if !a.is_open(record.at) {
            // Refused at once; marked expired now rather than by the next round.
            self.expire_due().await?;
            return Err(Error::AlreadyDecided {
                status: ApprovalStatus::Expired,
            });
        }
        match a.kind {
            ApprovalKind::Job => {
                let valid =
                    self.execution
                        .revalidate(&a.cluster, &a.action, &a.cids, a.reason.clone())?;
                let job = NewJob {
                    job_id: JobId::new_at(record.at),
                    user: a.requested_by.clone(),
                    key: a.approval_id.execution_key(),
                    payload_hash: stored.payload_hash.clone(),
                    intent_hash: stored.intent_hash.clone(),
                    cluster: a.cluster.clone(),
                    action: a.action.clone(),
                    action_code: a.action_code,
                    cids: a.cids.clone(),
                    reason: a.reason.clone(),
                    created_at: record.at,
                    deadline_at: self.execution.deadline_for(record.at)?,
                    confirm_duplicate: stored.confirm_duplicate,
                    // The approval was the guard: nothing of its intent
                    // could start while it waited.
                    duplicate_guard_since: None,
                    retry_of: stored.retry_of.map(JobId::from_uuid),
                    batch: None,
                    approval: Some((a.approval_id, user.username.clone())),
                };
                let pending = job.pending_job();
                self.decide(&record, Some(Execution::Job(job))).await?;
                tracing::info!(
                    approval_id = %a.approval_id, by = %user.username, job_id = %pending.job_id,
                    "[APPROVAL] Approved: approval_id={}, by={}, job_id={}",
                    a.approval_id, user.username, pending.job_id
                );
                self.execution.run_claimed(pending, valid).await
            }
            ApprovalKind::Run => {
                let run = self.runs.approved_run(&stored, &user.username, record.at)?;
                let run_id = run.run.run_id;
                let body = run.response_body.clone();
                self.decide(&record, Some(Execution::Run(run))).await?;
                tracing::info!(
                    approval_id = %a.approval_id, by = %user.username, %run_id,
                    "[APPROVAL] Approved: approval_id={}, by={}, run_id={}",
                    a.approval_id, user.username, run_id
                );
                self.runs.wake().notify_one();
                Ok(SetActionResponse {
                    status: 202,
                    body,
                    replayed: false,
                })
            }
        }
    }

    /// Rejects the request (a comment saying why is required).
    #[tracing::instrument(skip_all, fields(user = %user.username))]
    pub async fn reject(
        &self,
        user: &User,
        approval_id: &str,
        request: Result<DecisionRequest>,
    ) -> Result<Approval> {
        self.close(user, approval_id, Decision::Reject, request)
            .await
    }

    /// Withdraws the request: its requester alone.
    #[tracing::instrument(skip_all, fields(user = %user.username))]
    pub async fn cancel(
        &self,
        user: &User,
        approval_id: &str,
        request: Result<DecisionRequest>,
    ) -> Result<Approval> {
        self.close(user, approval_id, Decision::Cancel, request)
            .await
    }

    async fn close(
        &self,
        user: &User,
        approval_id: &str,
        decision: Decision,
        request: Result<DecisionRequest>,
    ) -> Result<Approval> {
        let (stored, record) = self.check(user, approval_id, decision, request).await?;
        if stored.approval.status != ApprovalStatus::Awaiting {
            return Err(Error::AlreadyDecided {
                status: stored.approval.status,
            });
        }
        self.decide(&record, None).await?;
        tracing::info!(
            approval_id = %record.approval_id, by = %user.username, decision = decision.as_str(),
            "[APPROVAL] {}: approval_id={}, by={}",
            match decision {
                Decision::Reject => "Rejected",
                _ => "Cancelled",
            },
            record.approval_id, user.username
        );
        Ok(self
            .db
            .get_approval(record.approval_id)
            .await?
            .ok_or(Error::NotFound)?
            .approval)
    }

    /// One transition out of `awaiting`, or `409 already_decided` with
    /// where the approval stands.
    async fn decide(&self, record: &DecisionRecord, execution: Option<Execution>) -> Result<()> {
        match self.db.decide_approval(record, execution).await? {
            Decided::Done => {
                metrics::counter!("tms_approvals_total", "status" => record.decision.status().as_str())
                    .increment(1);
                Ok(())
            }
            Decided::NotAwaiting(status) => Err(Error::AlreadyDecided { status }),
        }
    }

    /// Marks approvals whose time ran out as `expired`, on any instance,
    /// each once. Returns how many.
    pub async fn expire_due(&self) -> Result<usize> {
        let now = now_millis();
        let mut expired = 0;
        for approval in self.db.due_approvals(now).await? {
            if self.db.expire_approval(&approval, now).await? {
                expired += 1;
                let id = approval.approval_id;
                tracing::info!(approval_id = %id, "[APPROVAL] Expired: approval_id={}", id);
                metrics::counter!("tms_approvals_total", "status" => "expired").increment(1);
            }
        }
        Ok(expired)
    }
}

impl Service {
    /// Four-eyes approvals: their reads, decisions and expiry.
    pub fn approvals(&self) -> &Arc<Approvals> {
        &self.approvals
    }
}
