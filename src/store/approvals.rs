//! Approvals (SPEC §14): a request frozen as it was checked, committed with
//! its key in one write; each decision one transition out of `awaiting`,
//! decided by the database; an approval's job or run created in the same
//! write as the transition, so two approvers at once make one execution.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::events::NewEvent;
use super::jobs::{claim, NewJob};
use super::runs::{insert_run, key_lock_name, NewRun};
use super::tx::{args, write_tx, Backend, Tx};
use super::{with_pool, Db};
use crate::domain::approval::{Approval, ApprovalId, ApprovalKind, ApprovalStatus, Decision};
use crate::domain::event::EventType;
use crate::domain::job::JobId;
use crate::domain::query::PageRequest;
use crate::domain::run::RunId;
use crate::error::{Error, Holder, Result};

const APPROVAL_COLUMNS: &str = "approval_id, kind, status, requested_by, cluster, action, action_code, \
     cids, cid_count, reason, batch_size, run_at, created_at, expires_at, decided_by, decided_at, comment, \
     job_id, run_id, payload_hash, intent_hash, confirm_duplicate, retry_of, response_body";

#[derive(sqlx::FromRow)]
struct ApprovalRow {
    approval_id: Uuid,
    kind: String,
    status: String,
    requested_by: String,
    cluster: String,
    action: String,
    action_code: i64,
    cids: String,
    cid_count: i64,
    reason: Option<String>,
    batch_size: Option<i64>,
    run_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    comment: Option<String>,
    job_id: Option<Uuid>,
    run_id: Option<Uuid>,
    payload_hash: String,
    intent_hash: String,
    confirm_duplicate: bool,
    retry_of: Option<Uuid>,
    response_body: String,
}

/// An approval with what the store keeps to answer replays and to execute it.
#[derive(Clone, Debug)]
pub struct StoredApproval {
    pub approval: Approval,
    pub payload_hash: String,
    pub intent_hash: String,
    pub confirm_duplicate: bool,
    /// The job (kind job) or run (kind run) this request retries.
    pub retry_of: Option<Uuid>,
    /// The `202` first answered.
    pub response_body: String,
}

impl TryFrom<ApprovalRow> for StoredApproval {
    type Error = Error;
    fn try_from(r: ApprovalRow) -> Result<Self> {
        let unreadable = |what: &str, value: &str| {
            Error::Internal(anyhow::anyhow!(
                "approval {} has unreadable {what} {value:?}",
                r.approval_id
            ))
        };
        let kind = ApprovalKind::parse(&r.kind).ok_or_else(|| unreadable("kind", &r.kind))?;
        let status =
            ApprovalStatus::parse(&r.status).ok_or_else(|| unreadable("status", &r.status))?;
        let cids: Vec<String> =
            serde_json::from_str(&r.cids).map_err(|_| unreadable("cids", "…"))?;
        Ok(StoredApproval {
            approval: Approval {
                approval_id: ApprovalId::from_uuid(r.approval_id),
                kind,
                status,
                requested_by: r.requested_by,
                cluster: r.cluster,
                action: r.action,
                action_code: r.action_code,
                cids,
                cid_count: r.cid_count,
                reason: r.reason,
                batch_size: r.batch_size,
                run_at: r.run_at,
                created_at: r.created_at,
                expires_at: r.expires_at,
                decided_by: r.decided_by,
                decided_at: r.decided_at,
                comment: r.comment,
                job_id: r.job_id.map(JobId::from_uuid),
                run_id: r.run_id.map(RunId::from_uuid),
            },
            payload_hash: r.payload_hash,
            intent_hash: r.intent_hash,
            confirm_duplicate: r.confirm_duplicate,
            retry_of: r.retry_of,
            response_body: r.response_body,
        })
    }
}

/// A request about to wait for approval.
#[derive(Clone, Debug)]
pub struct NewApproval {
    /// As it is answered: `awaiting`, nothing decided.
    pub approval: Approval,
    pub key: String,
    pub payload_hash: String,
    pub intent_hash: String,
    pub confirm_duplicate: bool,
    pub retry_of: Option<Uuid>,
    /// Refuse when a job (or run, for a run) of the same intent was created
    /// since this time, or another request of it awaits approval (`None`:
    /// the guard is off or lifted).
    pub duplicate_guard_since: Option<DateTime<Utc>>,
    /// The `202` the request is answered, kept for replays.
    pub response_body: String,
}

/// What a request for approval came to.
#[derive(Debug)]
pub enum ApprovalClaim {
    Created,
    /// The key was taken by this approval.
    Existing(Box<StoredApproval>),
}

/// What a decision came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decided {
    /// The approval left `awaiting` (and, approved, its job or run exists).
    Done,
    /// It was no longer awaiting: here is where it stands (an approval whose
    /// time ran out is marked `expired` by the same write).
    NotAwaiting(ApprovalStatus),
}

/// What an approval executes, created in the same write as its approval.
#[derive(Clone, Debug)]
pub enum Execution {
    Job(NewJob),
    Run(NewRun),
}

/// A decision as the store records it.
#[derive(Clone, Debug)]
pub struct DecisionRecord {
    /// The approval as it was read before the decision (for the event).
    pub before: Approval,
    pub approval_id: ApprovalId,
    pub decision: Decision,
    pub by: String,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

/// True when `(user, key)` names an approval (jobs, runs and approvals
/// share one key space per user).
pub(crate) async fn key_names_an_approval(tx: &mut impl Tx, user: &str, key: &str) -> Result<bool> {
    Ok(tx
        .fetch_optional(
            "SELECT 1 FROM approvals WHERE requested_by = $1 AND idempotency_key = $2",
            &args![user, key],
        )
        .await?
        .is_some())
}

/// The recent-duplicate guard's view of approvals: another request of the
/// same intent awaiting approval (and not yet expired at `now`) holds it,
/// whatever its age, so two requests cannot both be approved.
pub(crate) async fn awaiting_duplicate(
    tx: &mut impl Tx,
    intent_hash: &str,
    now: DateTime<Utc>,
    except: Option<ApprovalId>,
) -> Result<Option<Error>> {
    let row = tx
        .fetch_optional(
            "SELECT approval_id, requested_by, created_at FROM approvals WHERE intent_hash = $1 \
             AND status = 'awaiting' AND expires_at > $2 AND approval_id <> $3 \
             ORDER BY created_at DESC LIMIT 1",
            &args![
                intent_hash,
                now,
                except.map_or(Uuid::nil(), |a| a.as_uuid())
            ],
        )
        .await?;
    row.map(|row| {
        Ok(Error::RecentDuplicate {
            holder: Holder::Approval(ApprovalId::from_uuid(row.get(0)?)),
            user: row.get(1)?,
            created_at: row.get(2)?,
        })
    })
    .transpose()
}

/// Takes, on PostgreSQL, the locks every claim of this intent and key
/// takes, in the same order (the job claim's intent lock, the key's, the
/// run claim's intent lock), so that an approval, a job and a run of one
/// intent decide one after another. SQLite's one writer already does.
async fn lock_intent_and_key(
    tx: &mut impl Tx,
    intent_hash: &str,
    user: &str,
    key: &str,
) -> Result<()> {
    if tx.backend() == Backend::Postgres {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), \
             pg_advisory_xact_lock(hashtextextended($2, 1)), \
             pg_advisory_xact_lock(hashtextextended($1, 2))",
            &args![intent_hash, key_lock_name(user, key)],
        )
        .await?;
    }
    Ok(())
}

/// The approval, in one write: true when inserted, false when another
/// approval holds the key. A key a job or run holds, a recent duplicate,
/// busy customers (for a job) and anything else refused leave nothing.
async fn insert_approval(tx: &mut impl Tx, new: &NewApproval) -> Result<bool> {
    let a = &new.approval;
    lock_intent_and_key(tx, &new.intent_hash, &a.requested_by, &new.key).await?;
    let cids = serde_json::to_string(&a.cids).map_err(anyhow::Error::from)?;
    let inserted = tx
        .execute(
            "INSERT INTO approvals (approval_id, kind, status, requested_by, idempotency_key, payload_hash, \
             intent_hash, cluster, action, action_code, cids, cid_count, reason, batch_size, run_at, \
             confirm_duplicate, retry_of, created_at, expires_at, response_body) \
             VALUES ($1, $2, 'awaiting', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
             ON CONFLICT (requested_by, idempotency_key) DO NOTHING",
            &args![
                a.approval_id.as_uuid(),
                a.kind.as_str(),
                &a.requested_by,
                &new.key,
                &new.payload_hash,
                &new.intent_hash,
                &a.cluster,
                &a.action,
                a.action_code,
                cids.as_str(),
                a.cid_count,
                a.reason.as_deref(),
                a.batch_size,
                a.run_at,
                new.confirm_duplicate,
                new.retry_of,
                a.created_at,
                a.expires_at,
                &new.response_body,
            ],
        )
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    let job_holds_key = tx
        .fetch_optional(
            "SELECT 1 FROM jobs WHERE user_name = $1 AND idempotency_key = $2",
            &args![&a.requested_by, &new.key],
        )
        .await?
        .is_some();
    if job_holds_key || super::runs::key_names_a_run(tx, &a.requested_by, &new.key).await? {
        return Err(Error::IdempotencyKeyReused);
    }
    if let Some(since) = new.duplicate_guard_since {
        let recent = match a.kind {
            ApprovalKind::Job => {
                super::jobs::recent_job(tx, &new.intent_hash, since, JobId::from_uuid(Uuid::nil()))
                    .await?
            }
            ApprovalKind::Run => {
                super::runs::recent_run(tx, &new.intent_hash, since, RunId::from_uuid(Uuid::nil()))
                    .await?
            }
        };
        if let Some(refusal) = recent {
            return Err(refusal);
        }
        if let Some(refusal) =
            awaiting_duplicate(tx, &new.intent_hash, a.created_at, Some(a.approval_id)).await?
        {
            return Err(refusal);
        }
    }
    if a.kind == ApprovalKind::Job {
        // The per-customer lock, checked now and again when approved: the
        // customers are not held while the request waits.
        let nobody = JobId::from_uuid(Uuid::nil());
        if let Some(refusal) = super::jobs::busy_refusal(tx, &a.cluster, nobody, &cids).await? {
            return Err(refusal);
        }
    }
    super::events::append(
        tx,
        approval_event(EventType::ApprovalRequested, a, a.created_at)?,
    )
    .await?;
    Ok(true)
}

/// The event of an approval's request or decision: the approval as it now is.
fn approval_event(event_type: EventType, after: &Approval, at: DateTime<Utc>) -> Result<NewEvent> {
    let actor = match event_type {
        EventType::ApprovalRequested => Some(after.requested_by.as_str()),
        // An expiry is the console's doing.
        _ => after.decided_by.as_deref(),
    };
    Ok(NewEvent::new(
        event_type,
        actor,
        serde_json::json!({"approval_id": after.approval_id}),
        serde_json::to_value(after).map_err(anyhow::Error::from)?,
        at,
    ))
}

/// The approval as an expiry at `at` leaves it.
fn expired(before: &Approval, at: DateTime<Utc>) -> Approval {
    Approval {
        status: ApprovalStatus::Expired,
        decided_at: Some(at),
        ..before.clone()
    }
}

/// Moves an awaiting approval whose time ran out to `expired`; true when it did.
async fn expire_one(tx: &mut impl Tx, id: ApprovalId, now: DateTime<Utc>) -> Result<bool> {
    Ok(tx
        .execute(
            "UPDATE approvals SET status = 'expired', decided_at = $2 \
             WHERE approval_id = $1 AND status = 'awaiting' AND expires_at <= $2",
            &args![id.as_uuid(), now],
        )
        .await?
        == 1)
}

/// The one transition out of `awaiting`, with what was executed. When it
/// does not apply, where the approval stands (expiring it if its time ran
/// out); the caller writes nothing else then.
async fn transition(
    tx: &mut impl Tx,
    record: &DecisionRecord,
    job_id: Option<JobId>,
    run_id: Option<RunId>,
) -> Result<Decided> {
    // Two approvers at once: on PostgreSQL the second's update waits for
    // the first's commit, reads the row again and finds it decided.
    let updated = tx
        .execute(
            "UPDATE approvals SET status = $2, decided_by = $3, decided_at = $4, comment = $5, \
             job_id = $6, run_id = $7 \
             WHERE approval_id = $1 AND status = 'awaiting' AND expires_at > $4",
            &args![
                record.approval_id.as_uuid(),
                record.decision.status().as_str(),
                &record.by,
                record.at,
                record.comment.as_deref(),
                job_id,
                run_id.map(|r| r.as_uuid()),
            ],
        )
        .await?;
    if updated == 1 {
        return Ok(Decided::Done);
    }
    if expire_one(tx, record.approval_id, record.at).await? {
        let after = expired(&record.before, record.at);
        super::events::append(
            tx,
            approval_event(EventType::ApprovalDecided, &after, record.at)?,
        )
        .await?;
        return Ok(Decided::NotAwaiting(ApprovalStatus::Expired));
    }
    let row = tx
        .fetch_optional(
            "SELECT status FROM approvals WHERE approval_id = $1",
            &args![record.approval_id.as_uuid()],
        )
        .await?
        .ok_or(Error::NotFound)?;
    let status: String = row.get(0)?;
    let status = ApprovalStatus::parse(&status)
        .ok_or_else(|| anyhow::anyhow!("approval has unknown status {status:?}"))?;
    Ok(Decided::NotAwaiting(status))
}

impl Db {
    /// Commits the request for approval, or answers the approval already
    /// holding the key.
    #[tracing::instrument(skip_all, fields(approval_id = %new.approval.approval_id))]
    pub async fn claim_approval(&self, new: &NewApproval) -> Result<ApprovalClaim> {
        let owned = new.clone();
        let created = write_tx!(self, |tx| async move { insert_approval(tx, &owned).await })?;
        if created {
            return Ok(ApprovalClaim::Created);
        }
        self.approval_by_key(&new.approval.requested_by, &new.key)
            .await?
            .map(|held| ApprovalClaim::Existing(Box::new(held)))
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("the approval holding this key vanished"))
            })
    }

    /// Takes a decision, once: reject or cancel; or approve, creating its job
    /// (claimed `pending`, its customers locked) or its run in the same
    /// write. A refusal of that claim (busy customers) rolls the approval
    /// back to `awaiting`.
    #[tracing::instrument(skip_all, fields(approval_id = %record.approval_id, decision = record.decision.as_str()))]
    pub async fn decide_approval(
        &self,
        record: &DecisionRecord,
        execution: Option<Execution>,
    ) -> Result<Decided> {
        let record = record.clone();
        write_tx!(self, |tx| async move {
            let (job_id, run_id) = match &execution {
                Some(Execution::Job(job)) => (Some(job.job_id), None),
                Some(Execution::Run(run)) => (None, Some(run.run.run_id)),
                None => (None, None),
            };
            let decided = transition(tx, &record, job_id, run_id).await?;
            if decided != Decided::Done {
                return Ok(decided);
            }
            let claimed = match &execution {
                Some(Execution::Job(job)) => claim(tx, job).await?,
                Some(Execution::Run(run)) => insert_run(tx, run).await?,
                None => true,
            };
            if !claimed {
                return Err(Error::Internal(anyhow::anyhow!(
                    "the key of approval {} was taken",
                    record.approval_id
                )));
            }
            let after = Approval {
                status: record.decision.status(),
                decided_by: Some(record.by.clone()),
                decided_at: Some(record.at),
                comment: record.comment.clone(),
                job_id,
                run_id,
                ..record.before.clone()
            };
            super::events::append(
                tx,
                approval_event(EventType::ApprovalDecided, &after, record.at)?,
            )
            .await?;
            Ok(Decided::Done)
        })
    }

    /// Awaiting approvals whose time ran out by `now` (up to 1,000).
    pub async fn due_approvals(&self, now: DateTime<Utc>) -> Result<Vec<Approval>> {
        let sql = format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE status = 'awaiting' AND expires_at <= $1 \
             ORDER BY expires_at LIMIT 1000"
        );
        let rows: Vec<ApprovalRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(now).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|r| StoredApproval::try_from(r).map(|s| s.approval))
            .collect()
    }

    /// Marks one approval whose time ran out as `expired`, with its event,
    /// once whichever instance gets there first: false when it no longer
    /// awaited.
    #[tracing::instrument(skip_all, fields(approval_id = %approval.approval_id))]
    pub async fn expire_approval(&self, approval: &Approval, now: DateTime<Utc>) -> Result<bool> {
        let approval = approval.clone();
        write_tx!(self, |tx| async move {
            if !expire_one(tx, approval.approval_id, now).await? {
                return Ok(false);
            }
            let after = expired(&approval, now);
            super::events::append(tx, approval_event(EventType::ApprovalDecided, &after, now)?)
                .await?;
            Ok(true)
        })
    }

    /// The approval a user's key names, if any.
    pub async fn approval_by_key(&self, user: &str, key: &str) -> Result<Option<StoredApproval>> {
        let sql = format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE requested_by = $1 AND idempotency_key = $2"
        );
        let row: Option<ApprovalRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(user).bind(key).fetch_optional(pool).await)?;
        row.map(StoredApproval::try_from).transpose()
    }

    pub async fn get_approval(&self, id: ApprovalId) -> Result<Option<StoredApproval>> {
        let sql = format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = $1");
        let row: Option<ApprovalRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(id.as_uuid()).fetch_optional(pool).await)?;
        row.map(StoredApproval::try_from).transpose()
    }

    /// Up to `limit` approvals, newest first, after `page`'s cursor.
    pub async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
        page: PageRequest,
        limit: u32,
    ) -> Result<Vec<Approval>> {
        let rows: Vec<ApprovalRow> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new(format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE 1 = 1"));
            if let Some(v) = status {
                query.push(" AND status = ").push_bind(v.as_str());
            }
            if let Some(c) = page.cursor {
                query
                    .push(" AND (created_at, approval_id) < (")
                    .push_bind(c.created_at)
                    .push(", ")
                    .push_bind(c.job_id)
                    .push(")");
            }
            query
                .push(" ORDER BY created_at DESC, approval_id DESC LIMIT ")
                .push_bind(i64::from(limit));
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.into_iter()
            .map(|r| StoredApproval::try_from(r).map(|s| s.approval))
            .collect()
    }

    /// How many approvals await a decision and have time left at `now`.
    pub async fn count_awaiting_approvals(&self, now: DateTime<Utc>) -> Result<i64> {
        let (n,): (i64,) = with_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM approvals WHERE status = 'awaiting' AND expires_at > $1")
            .bind(now).fetch_one(pool).await)?;
        Ok(n)
    }
}
