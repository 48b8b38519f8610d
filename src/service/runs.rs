//! Runs (SPEC §13): one confirmed request over thousands of customers. The
//! checks of a Set Action in the same order (the per-customer lock aside,
//! which each batch meets when it is sent), the run committed with its
//! batches before it is answered, replays, who may see and steer a run,
//! and the retry of its failed customers. The dispatcher sends the batches.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::approvals::{self, ApprovalRequest};
use super::execution::{
    check_reason, may_act_for, require_executor, trimmed_reason, ExecutionService,
};
use super::jobs::PageParams;
use super::{Actor, Service};
use crate::domain::action::Action;
use crate::domain::approval::{needs_approval, ApprovalId, ApprovalKind};
use crate::domain::cid::{CidListError, CidsInput, RawCids};
use crate::domain::cluster::Cluster;
use crate::domain::fingerprint::RequestFingerprint;
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::{now_millis, JobId};
use crate::domain::query::JobCursor;
use crate::domain::run::{
    split, Batch, BatchCounts, Run, RunCommand, RunCustomerCounts, RunId, RunOutcome, RunStatus,
};
use crate::domain::user::User;
use crate::error::{Error, Result};
use crate::store::approvals::StoredApproval;
use crate::store::runs::{NewRun, RunClaim, RunFilter, StoredRun};
use crate::store::Db;

/// How far ahead a run may be scheduled.
pub const MAX_SCHEDULE_AHEAD: chrono::Duration = chrono::Duration::days(30);

/// The body of `POST /api/v1/runs` (described by
/// `http::schema::RunRequestSchema`).
#[derive(Clone, Debug, Deserialize)]
pub struct RunRequest {
    pub cluster: String,
    pub action: String,
    pub cids: CidsInput,
    /// 1 to the action's `max_cids` (its default).
    #[serde(default)]
    pub batch_size: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub confirm_duplicate: Option<bool>,
    /// RFC 3339, in the future and at most 30 days ahead.
    #[serde(default)]
    pub run_at: Option<String>,
}

/// The body of `POST /api/v1/runs/{run_id}/retry`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunRetryRequest {
    /// Also the customers whose outcome is `unknown` or `not_run`.
    #[serde(default)]
    pub include_unknown: Option<bool>,
    /// Not inherited: an action with `reason_required` needs one here.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a run request created: the run, or an approval it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queued {
    Run(RunId),
    Approval(ApprovalId),
}

/// The answer to a run's creation: `202 {"run"}` (or `202 {"approval"}`)
/// as first sent, or its replay.
#[derive(Clone, Debug)]
pub struct RunAnswer {
    pub created: Queued,
    pub body: String,
    pub replayed: bool,
}

/// The filters of the runs' listing, as sent.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::Args, utoipa::IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct RunFilterParams {
    /// Only this user's runs (operators may name only themselves).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Only this cluster.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Only this action.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// scheduled, queued, running, paused, cancelled or finished.
    #[arg(long)]
    #[param(value_type = Option<String>, pattern = "^(scheduled|queued|running|paused|cancelled|finished)?$")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// One page of runs, newest first.
#[derive(Clone, Debug)]
pub struct RunsPage {
    pub runs: Vec<Run>,
    pub next_cursor: Option<String>,
}

/// One customer of a run, as its table and CSV show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunCustomerView {
    pub cid: String,
    pub outcome: RunOutcome,
    pub error: Option<String>,
    pub job_id: Option<JobId>,
}

/// A run with its batches, for its page.
#[derive(Clone, Debug)]
pub struct RunDetail {
    pub run: Run,
    pub batches: Vec<Batch>,
    /// Whether the viewer may pause, resume, cancel and retry it.
    pub may_steer: bool,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// An outcome filter of a run's customers, or `400 invalid_query`.
pub fn parse_run_outcome(value: Option<&str>) -> Result<Option<RunOutcome>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => RunOutcome::parse(v).map(Some).ok_or_else(|| {
            Error::InvalidQuery(format!(
                "outcome: {v:?} is not ok, failed, unknown, pending or not_run"
            ))
        }),
    }
}

impl RunFilterParams {
    /// The typed filter, or `400 invalid_query`.
    pub fn parse(&self) -> Result<RunFilter> {
        let status = present(&self.status)
            .map(|s| {
                RunStatus::parse(s).ok_or_else(|| {
                    Error::InvalidQuery(format!("status: {s:?} is not a run status"))
                })
            })
            .transpose()?;
        Ok(RunFilter {
            user: present(&self.user).map(str::to_owned),
            cluster: present(&self.cluster).map(str::to_owned),
            action: present(&self.action).map(str::to_owned),
            status,
        })
    }
}

/// A run's body after every check: what is committed.
struct ValidRun {
    cluster: Cluster,
    action: Action,
    cids: Vec<String>,
    batch_size: usize,
    reason: Option<String>,
    run_at: Option<DateTime<Utc>>,
}

/// What to run as a run and how it came: a request, or a retry of a run.
struct RunIntent {
    cluster: String,
    action: String,
    cids: RawCids,
    batch_size: Option<i64>,
    reason: Option<String>,
    run_at: Option<DateTime<Utc>>,
    confirm_duplicate: bool,
    retry_of: Option<RunId>,
}

impl RunIntent {
    /// A run as a person asked for it, to start at `run_at` (now if none).
    fn requested(request: RunRequest, run_at: Option<DateTime<Utc>>) -> RunIntent {
        RunIntent {
            cluster: request.cluster,
            action: request.action,
            cids: RawCids::from_input(&request.cids),
            batch_size: request.batch_size,
            reason: request.reason,
            run_at,
            confirm_duplicate: request.confirm_duplicate.unwrap_or(false),
            retry_of: None,
        }
    }

    /// Its trimmed reason, its fingerprint, and the payload hash a later
    /// request under the same key must match.
    fn identity(&self) -> (Option<String>, RequestFingerprint, String) {
        let reason = trimmed_reason(self.reason.as_deref());
        let fingerprint =
            RequestFingerprint::new(&self.cluster, &self.action, &self.cids, reason.as_deref());
        let payload_hash =
            run_payload_hash(&fingerprint, self.batch_size, self.run_at, self.retry_of);
        (reason, fingerprint, payload_hash)
    }
}

/// Runs: their creation, reads and commands. The dispatcher sends them.
pub struct Runs {
    db: Db,
    execution: Arc<ExecutionService>,
    max_run_cids: usize,
    /// Wakes the dispatcher when a run may have something to send.
    wake: Arc<Notify>,
}

/// Who may pause, resume, cancel or retry a run: its user, or an admin.
fn may_steer(user: &User, run: &Run) -> bool {
    may_act_for(user, &run.user)
}

fn may_see(actor: &Actor, run: &Run) -> bool {
    match actor {
        Actor::User(user) => user.role.sees_all_jobs() || run.user == user.username,
        Actor::Console => true,
    }
}

/// Reads `run_at` as the contract takes it, or `400 invalid_body`.
fn parse_run_at(value: Option<&str>, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| Error::InvalidBody(format!("run_at: {text:?} is not an RFC 3339 time")))?
        .with_timezone(&Utc);
    if at <= now {
        return Err(Error::InvalidBody(format!(
            "run_at: {text} is not in the future"
        )));
    }
    if at > now + MAX_SCHEDULE_AHEAD {
        return Err(Error::InvalidBody(format!(
            "run_at: {text} is more than 30 days ahead"
        )));
    }
    Ok(Some(at))
}

/// What makes two run requests the same for their key: the Set Action's
/// payload, and the batch size, start time and retried run.
fn run_payload_hash(
    fingerprint: &RequestFingerprint,
    batch_size: Option<i64>,
    run_at: Option<DateTime<Utc>>,
    retry_of: Option<RunId>,
) -> String {
    let mut h = Sha256::new();
    h.update(b"run\x00");
    h.update(fingerprint.payload_hash.as_bytes());
    h.update(batch_size.unwrap_or(0).to_be_bytes());
    h.update(run_at.map_or(0, |t| t.timestamp_millis()).to_be_bytes());
    h.update(retry_of.map(|r| r.as_uuid()).unwrap_or_default().as_bytes());
    hex::encode(h.finalize())
}

impl Runs {
    pub fn new(db: Db, execution: Arc<ExecutionService>, max_run_cids: usize) -> Self {
        Self {
            db,
            execution,
            max_run_cids,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The most CIDs a run takes.
    pub fn max_run_cids(&self) -> usize {
        self.max_run_cids
    }

    /// What the dispatcher waits on.
    pub fn wake(&self) -> &Arc<Notify> {
        &self.wake
    }

    pub fn execution(&self) -> &Arc<ExecutionService> {
        &self.execution
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Queues a run on behalf of `username`, from the command line: the
    /// user must exist and be enabled, and the rules of `create` hold.
    pub async fn create_for(
        &self,
        accounts: &Service,
        username: &str,
        key: IdempotencyKey,
        request: RunRequest,
    ) -> Result<RunAnswer> {
        let user = accounts.active_user(username).await.map_err(|_| {
            Error::rejected(
                crate::error::ErrorCode::InvalidUsername,
                format!("no active user {username:?}"),
            )
        })?;
        self.create(&user, Ok(key), Ok(request)).await
    }

    /// Queues a run under `key`, or answers from the run already holding it.
    /// The checks run in the order of a Set Action: the role; the body
    /// (with its batch size and start time) and the key; a key used before;
    /// the catalog, the CIDs, the token and the reason; then, for a new
    /// key, the recent-duplicate guard against other runs.
    #[tracing::instrument(skip_all, fields(user = %user.username))]
    pub async fn create(
        &self,
        user: &User,
        key: Result<IdempotencyKey>,
        request: Result<RunRequest>,
    ) -> Result<RunAnswer> {
        require_executor(user)?;
        let request = request?;
        let run_at = parse_run_at(request.run_at.as_deref(), Utc::now())?;
        if request.batch_size.is_some_and(|n| n < 1) {
            return Err(Error::InvalidBody("batch_size: must be at least 1".into()));
        }
        let key = key?;
        let intent = RunIntent::requested(request, run_at);
        self.queue(user, &key, intent).await
    }

    /// A new run of the same cluster and action over a run's `failed`
    /// customers (with `include_unknown`, also its `unknown` and `not_run`
    /// ones), in order, with `retry_of` set; the guard does not apply.
    #[tracing::instrument(skip_all, fields(user = %user.username))]
    pub async fn retry(
        &self,
        user: &User,
        run_id: &str,
        key: Result<IdempotencyKey>,
        request: Result<RunRetryRequest>,
    ) -> Result<RunAnswer> {
        require_executor(user)?;
        let request = request?;
        let key = key?;
        let original = self.steerable(&Actor::User(user.clone()), run_id).await?;
        let include_unknown = request.include_unknown.unwrap_or(false);
        let cids: Vec<String> = self
            .db
            .run_customers(original.run_id)
            .await?
            .into_iter()
            .filter(|c| {
                let outcome = RunOutcome::of(c.outcome);
                outcome == RunOutcome::Failed
                    || (include_unknown
                        && matches!(outcome, RunOutcome::Unknown | RunOutcome::NotRun))
            })
            .map(|c| c.cid)
            .collect();
        if cids.is_empty() {
            return Err(Error::NothingToRetry);
        }
        let intent = RunIntent {
            cluster: original.cluster,
            action: original.action,
            cids: RawCids::from_input(&CidsInput::List(cids)),
            batch_size: Some(original.batch_size),
            reason: request.reason,
            run_at: None,
            confirm_duplicate: false,
            retry_of: Some(original.run_id),
        };
        self.queue(user, &key, intent).await
    }

    async fn queue(
        &self,
        user: &User,
        key: &IdempotencyKey,
        intent: RunIntent,
    ) -> Result<RunAnswer> {
        let (reason, fingerprint, payload_hash) = intent.identity();
        let valid = match self.validate(&intent, reason) {
            Ok(valid) => valid,
            Err(invalid) => {
                // A key used before is answered whatever this request says.
                if let Some(existing) = self.db.run_by_key(&user.username, key.as_str()).await? {
                    return answer_existing(existing, &payload_hash);
                }
                if let Some(existing) = self
                    .db
                    .approval_by_key(&user.username, key.as_str())
                    .await?
                {
                    let answer = approvals::answer_existing(existing, &payload_hash)?;
                    return Ok(RunAnswer {
                        created: Queued::Approval(answer.approval_id),
                        body: answer.body,
                        replayed: answer.replayed,
                    });
                }
                if self
                    .db
                    .job_by_key(&user.username, key.as_str())
                    .await?
                    .is_some()
                {
                    return Err(Error::IdempotencyKeyReused);
                }
                return Err(invalid);
            }
        };
        let guard_on = intent.retry_of.is_none() && !intent.confirm_duplicate;
        let created_at = now_millis();
        let guard_since = self
            .execution
            .duplicate_guard_since(created_at)
            .filter(|_| guard_on);
        if needs_approval(&valid.cluster, &valid.action) {
            let answer = approvals::request(
                &self.db,
                self.execution.approval_ttl(),
                ApprovalRequest {
                    kind: ApprovalKind::Run,
                    requested_by: user.username.clone(),
                    key: key.as_str().to_owned(),
                    cluster: valid.cluster.name.clone(),
                    action: valid.action.name.clone(),
                    action_code: valid.action.code,
                    cids: valid.cids,
                    reason: valid.reason,
                    batch_size: Some(valid.batch_size as i64),
                    run_at: valid.run_at,
                    payload_hash,
                    intent_hash: fingerprint.intent_hash,
                    confirm_duplicate: intent.confirm_duplicate,
                    retry_of: intent.retry_of.map(|r| r.as_uuid()),
                    duplicate_guard_since: guard_since,
                },
            )
            .await?;
            return Ok(RunAnswer {
                created: Queued::Approval(answer.approval_id),
                body: answer.body,
                replayed: answer.replayed,
            });
        }
        let new = NewRun {
            key: key.as_str().to_owned(),
            payload_hash: payload_hash.clone(),
            intent_hash: fingerprint.intent_hash,
            confirm_duplicate: intent.confirm_duplicate,
            duplicate_guard_since: guard_since,
            ..new_run(&user.username, valid, intent.retry_of, None, created_at)?
        };
        match self.db.claim_run(&new).await? {
            RunClaim::Existing(existing) => answer_existing(*existing, &payload_hash),
            RunClaim::Created => {
                let run = &new.run;
                tracing::info!(
                    run_id = %run.run_id, user = %run.user, cluster = %run.cluster, action = %run.action,
                    cid_count = run.cid_count, batch_count = run.batch_count,
                    "[RUN] Created: run_id={}, user={}, action={}, cid_count={}, batch_count={}, status={}",
                    run.run_id, run.user, run.action, run.cid_count, run.batch_count, run.status
                );
                self.wake.notify_one();
                Ok(RunAnswer {
                    created: Queued::Run(run.run_id),
                    body: new.response_body,
                    replayed: false,
                })
            }
        }
    }

    fn validate(&self, intent: &RunIntent, reason: Option<String>) -> Result<ValidRun> {
        let execution = &self.execution;
        let cluster = execution
            .clusters()
            .get(&intent.cluster)
            .ok_or_else(|| Error::UnknownCluster(intent.cluster.clone()))?;
        let action = execution
            .catalog()
            .get(&intent.action)
            .ok_or_else(|| Error::UnknownAction(intent.action.clone()))?;
        let batch_size = match intent.batch_size {
            None => action.max_cids,
            Some(n) if n >= 1 && n as u64 <= action.max_cids as u64 => n as usize,
            Some(n) => {
                return Err(Error::InvalidBody(format!(
                    "batch_size: {n} is outside 1 to {} (the action's max_cids)",
                    action.max_cids
                )))
            }
        };
        let cids = execution
            .cid_policy()
            .parse_list(&intent.cids, self.max_run_cids)
            .map_err(|e| match e {
                CidListError::NoCids if intent.retry_of.is_some() => Error::NothingToRetry,
                CidListError::NoCids => Error::NoCids,
                CidListError::TooMany { max, count } => Error::TooManyCids { max, count },
                CidListError::Invalid(invalid) => Error::invalid_cids(invalid),
            })?;
        // A run's batches are sent in the background, long after this
        // request: a token typed into it could only be kept by storing a
        // secret, which the product never does.
        if cluster.token.is_none() {
            return Err(Error::TokenRequired(cluster.name.clone()));
        }
        check_reason(action, reason.as_deref())?;
        Ok(ValidRun {
            cluster: cluster.clone(),
            action: action.clone(),
            cids: cids
                .as_slice()
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            batch_size,
            reason,
            run_at: intent.run_at,
        })
    }

    /// The run an approval of kind run commits when approved: its request
    /// checked again against today's catalog, as its requester's, with the
    /// approver as `approved_by`, under the approval's own key.
    pub(super) fn approved_run(
        &self,
        stored: &StoredApproval,
        approver: &str,
        at: DateTime<Utc>,
    ) -> Result<NewRun> {
        let a = &stored.approval;
        let intent = RunIntent {
            cluster: a.cluster.clone(),
            action: a.action.clone(),
            cids: RawCids::from_input(&CidsInput::List(a.cids.clone())),
            batch_size: a.batch_size,
            reason: a.reason.clone(),
            run_at: a.run_at,
            confirm_duplicate: stored.confirm_duplicate,
            retry_of: stored.retry_of.map(RunId::from_uuid),
        };
        let valid = self.validate(&intent, a.reason.clone())?;
        Ok(NewRun {
            key: a.approval_id.execution_key(),
            payload_hash: stored.payload_hash.clone(),
            intent_hash: stored.intent_hash.clone(),
            confirm_duplicate: stored.confirm_duplicate,
            // The approval was the guard while it waited.
            duplicate_guard_since: None,
            ..new_run(
                &a.requested_by,
                valid,
                intent.retry_of,
                Some((a.approval_id, approver.to_owned())),
                at,
            )?
        })
    }

    /// A run the actor may see, or `404` (others' runs do not exist for an operator).
    async fn visible(&self, actor: &Actor, run_id: &str) -> Result<Run> {
        let id = RunId::parse(run_id).ok_or(Error::NotFound)?;
        let run = self.db.get_run(id).await?.ok_or(Error::NotFound)?.run;
        if may_see(actor, &run) {
            Ok(run)
        } else {
            Err(Error::NotFound)
        }
    }

    /// A run the actor may steer: `404` when they may not see it, `403`
    /// when they see it but may not steer it (an auditor; an operator's run
    /// is already 404 for another operator). The command line steers any.
    async fn steerable(&self, actor: &Actor, run_id: &str) -> Result<Run> {
        let run = self.visible(actor, run_id).await?;
        match actor {
            Actor::User(user) if !may_steer(user, &run) => Err(Error::Forbidden(
                "only the run's user or an admin may do this",
            )),
            _ => Ok(run),
        }
    }

    /// One run with its batches.
    pub async fn get(&self, actor: &Actor, run_id: &str) -> Result<RunDetail> {
        let run = self.visible(actor, run_id).await?;
        let batches = self.db.run_batches(run.run_id).await?;
        let may_steer = match actor {
            Actor::User(user) => may_steer(user, &run),
            Actor::Console => true,
        };
        Ok(RunDetail {
            run,
            batches,
            may_steer,
        })
    }

    /// One page of the runs the actor may see, newest first.
    pub async fn list(
        &self,
        actor: &Actor,
        params: &RunFilterParams,
        page: &PageParams,
    ) -> Result<RunsPage> {
        let mut filter = params.parse()?;
        if let Actor::User(viewer) = actor {
            if !viewer.role.sees_all_jobs() {
                if filter.user.as_deref().is_some_and(|u| u != viewer.username) {
                    return Err(Error::Forbidden("operators see only their own runs"));
                }
                filter.user = Some(viewer.username.clone());
            }
        }
        let page = page.parse()?;
        let limit = page.limit.get() as usize;
        let mut runs = self
            .db
            .list_runs(&filter, page, page.limit.get() + 1)
            .await?;
        let next_cursor = if runs.len() > limit {
            runs.truncate(limit);
            runs.last().map(|r| {
                JobCursor {
                    created_at: r.created_at,
                    job_id: r.run_id.as_uuid(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(RunsPage { runs, next_cursor })
    }

    /// A run's customers in order, each with its outcome and job.
    pub async fn customers(
        &self,
        actor: &Actor,
        run_id: &str,
        outcome: Option<RunOutcome>,
    ) -> Result<Vec<RunCustomerView>> {
        let run = self.visible(actor, run_id).await?;
        Ok(self
            .db
            .run_customers(run.run_id)
            .await?
            .into_iter()
            .map(|c| RunCustomerView {
                cid: c.cid,
                outcome: RunOutcome::of(c.outcome),
                error: c.error,
                job_id: c.job_id,
            })
            .filter(|c| outcome.is_none_or(|o| o == c.outcome))
            .collect())
    }

    /// Pause, resume or cancel, once: the store decides the transition.
    #[tracing::instrument(skip_all)]
    pub async fn command(&self, actor: &Actor, run_id: &str, command: RunCommand) -> Result<Run> {
        let run = self.steerable(actor, run_id).await?;
        let by = actor
            .user()
            .map_or("the command line", |u| u.username.as_str());
        let cancelled = self
            .db
            .command_run(
                run.run_id,
                command,
                actor.user().map(|u| u.username.as_str()),
                now_millis(),
            )
            .await?;
        metrics::counter!("tms_batches_total", "status" => "cancelled").increment(cancelled);
        let run = self
            .db
            .get_run(run.run_id)
            .await?
            .ok_or(Error::NotFound)?
            .run;
        tracing::info!(
            run_id = %run.run_id, by, command = command.as_str(),
            "[RUN] {}: run_id={}, by={}, status={}",
            match command {
                RunCommand::Pause => "Paused",
                RunCommand::Resume => "Resumed",
                RunCommand::Cancel => "Cancelled",
            },
            run.run_id, by, run.status
        );
        if command == RunCommand::Resume {
            self.wake.notify_one();
        }
        Ok(run)
    }

    /// Runs scheduled, queued, running or paused, by any instance.
    pub async fn count_active(&self) -> Result<i64> {
        self.db.count_active_runs().await
    }
}

/// A checked run as it is committed: the run `queued` (or `scheduled`),
/// its batches split in order; key, hashes and guard left for the caller.
fn new_run(
    user: &str,
    valid: ValidRun,
    retry_of: Option<RunId>,
    approval: Option<(ApprovalId, String)>,
    created_at: DateTime<Utc>,
) -> Result<NewRun> {
    let batches = split(&valid.cids, valid.batch_size);
    let cid_count = valid.cids.len() as i64;
    let batch_count = batches.len() as i64;
    let status = if valid.run_at.is_some() {
        RunStatus::Scheduled
    } else {
        RunStatus::Queued
    };
    let run = Run {
        run_id: RunId::new_at(created_at),
        user: user.to_owned(),
        cluster: valid.cluster.name.clone(),
        action: valid.action.name.clone(),
        action_code: valid.action.code,
        reason: valid.reason.clone(),
        cid_count,
        batch_size: valid.batch_size as i64,
        batch_count,
        status,
        batches: BatchCounts {
            queued: batch_count,
            ..BatchCounts::default()
        },
        customers: RunCustomerCounts {
            not_run: cid_count,
            ..RunCustomerCounts::default()
        },
        run_at: valid.run_at,
        created_at,
        started_at: None,
        finished_at: None,
        retry_of,
        approved_by: approval.as_ref().map(|a| a.1.clone()),
        approval_id: approval.as_ref().map(|a| a.0),
    };
    Ok(NewRun {
        response_body: run_body(&run)?,
        key: String::new(),
        payload_hash: String::new(),
        intent_hash: String::new(),
        confirm_duplicate: false,
        batches,
        duplicate_guard_since: None,
        run,
    })
}

impl Runs {
    /// The run a request made at `created_at` commits, checked as `queue`
    /// checks it (catalog, CIDs, batch size, reason), with its key, hashes
    /// and the recent-duplicate guard of that time: for the demo, which
    /// writes weeks of history through the same claim as a live request.
    pub(super) fn run_made_at(
        &self,
        user: &str,
        request: RunRequest,
        key: &str,
        created_at: DateTime<Utc>,
    ) -> Result<NewRun> {
        let intent = RunIntent::requested(request, None);
        let (reason, fingerprint, payload_hash) = intent.identity();
        let guard_since = self
            .execution
            .duplicate_guard_since(created_at)
            .filter(|_| !intent.confirm_duplicate);
        let valid = self.validate(&intent, reason)?;
        Ok(NewRun {
            key: key.to_owned(),
            payload_hash,
            intent_hash: fingerprint.intent_hash,
            confirm_duplicate: intent.confirm_duplicate,
            duplicate_guard_since: guard_since,
            ..new_run(user, valid, None, None, created_at)?
        })
    }
}

/// The body of a run's answers: `{"run": Run}`.
pub fn run_body(run: &Run) -> Result<String> {
    Ok(serde_json::to_string(&serde_json::json!({ "run": run })).map_err(anyhow::Error::from)?)
}

/// A key used before: a replay of the first answer, or `422` for another request.
fn answer_existing(existing: StoredRun, payload_hash: &str) -> Result<RunAnswer> {
    if existing.payload_hash != payload_hash {
        return Err(Error::IdempotencyKeyReused);
    }
    tracing::info!(run_id = %existing.run.run_id, "[RUN] Replay: run_id={}", existing.run.run_id);
    Ok(RunAnswer {
        created: Queued::Run(existing.run.run_id),
        body: existing.response_body,
        replayed: true,
    })
}

impl Service {
    /// Runs: their creation, reads and commands.
    pub fn runs(&self) -> &Arc<Runs> {
        &self.runs
    }
}
