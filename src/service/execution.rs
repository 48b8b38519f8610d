//! The exactly-once Set Action: claim `(user, key)` and insert the job as
//! `pending` in one transaction, call the cluster once, finalise, and answer
//! every later request with the same key from the store. The sweep resolves
//! jobs whose instance died mid-call.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio_util::task::TaskTracker;

use super::approvals::{self, ApprovalRequest};
use crate::domain::action::{Action, ActionCatalog};
use crate::domain::approval::{needs_approval, ApprovalKind};
use crate::domain::cid::{CidList, CidListError, CidPolicy, CidsInput, RawCids};
use crate::domain::cluster::{Cluster, ClusterRegistry};
use crate::domain::fingerprint::RequestFingerprint;
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::{now_millis, Job, JobId, JobStatus};
use crate::domain::outcome::{self, CustomerOutcome, Outcome as CustomerState, OutcomeCounts};
use crate::domain::secret::Secret;
use crate::domain::user::{Role, User};
use crate::error::{Error, Result};
use crate::store::jobs::{Claim, Finalisation, NewJob, StoredJob};
use crate::store::Db;
use crate::upstream::{Outcome, UpstreamClient};

/// Error of jobs whose outcome was never recorded.
pub const INTERRUPTED_ERROR: &str = "interrupted: outcome unknown, check the cluster";
/// A pending job older than the upstream timeout plus this is stale.
pub const STALE_GRACE: Duration = Duration::from_secs(5);
/// Pauses before retrying a failed write of an outcome (then the sweep).
const FINALISE_RETRIES: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(500)];

/// The body of `POST /api/v1/actions` (described to the OpenAPI document
/// by `http::schema::SetActionRequestSchema`).
#[derive(Clone, Debug, Deserialize)]
pub struct SetActionRequest {
    pub cluster: String,
    pub action: String,
    pub cids: CidsInput,
    /// Only for a cluster without a server-side token; never stored or logged.
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default)]
    pub confirm_duplicate: Option<bool>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// The answer to a Set Action: status and body as first sent, and whether it
/// is a replay.
#[derive(Clone, Debug)]
pub struct SetActionResponse {
    pub status: u16,
    pub body: String,
    pub replayed: bool,
}

/// The body of `POST /api/v1/jobs/{job_id}/retry` (described by
/// `http::schema::RetryRequestSchema`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RetryRequest {
    /// Also the customers whose outcome is `unknown`.
    #[serde(default)]
    pub include_unknown: Option<bool>,
    /// Not inherited from the job: an action with `reason_required` needs one here.
    #[serde(default)]
    pub reason: Option<String>,
    /// Only for a cluster without a server-side token; never stored or logged.
    #[serde(default)]
    pub token: Option<Secret>,
}

/// What to run and how it came: a Set Action, or a retry of a job.
struct Intent {
    cluster: String,
    action: String,
    cids: RawCids,
    token: Option<Secret>,
    reason: Option<String>,
    confirm_duplicate: bool,
    /// Whether the recent-duplicate guard applies (not to retries).
    guarded: bool,
    retry_of: Option<JobId>,
}

/// Who may act on what `owner` started (retry a job, steer or retry a
/// run): an admin, or the operator who started it.
pub(super) fn may_act_for(user: &User, owner: &str) -> bool {
    user.role == Role::Admin || (user.role.can_execute() && owner == user.username)
}

/// Who may retry a job: an admin, or the operator who ran it.
pub fn may_retry(user: &User, job: &Job) -> bool {
    may_act_for(user, &job.user)
}

pub(super) fn require_executor(user: &User) -> Result<()> {
    if user.role.can_execute() {
        Ok(())
    } else {
        Err(Error::Forbidden("your role may not run actions"))
    }
}

/// A request that passed every check and may run.
pub(super) struct ValidRequest {
    pub(super) cluster: Cluster,
    pub(super) action: Action,
    pub(super) cids: CidList,
    pub(super) token: Secret,
    pub(super) reason: Option<String>,
}

/// The reason rule: required by some actions, and when given, 3 to 500
/// characters (blank counts as not given).
pub(super) fn check_reason(action: &Action, reason: Option<&str>) -> Result<()> {
    let reason_len = reason.map_or(0, |r| r.chars().count());
    if (action.reason_required || reason.is_some()) && !(3..=500).contains(&reason_len) {
        return Err(Error::ReasonRequired(format!(
            "action {} needs a reason (a ticket or sentence) of 3 to 500 characters",
            action.name
        )));
    }
    Ok(())
}

/// A reason as sent, trimmed; blank is none.
pub(super) fn trimmed_reason(reason: Option<&str>) -> Option<String> {
    reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
}

/// Runs Set Actions exactly once.
pub struct ExecutionService {
    db: Db,
    catalog: ActionCatalog,
    clusters: ClusterRegistry,
    cid_policy: CidPolicy,
    upstream: UpstreamClient,
    /// Window of the recent-duplicate guard; zero turns it off.
    duplicate_guard_window: Duration,
    /// How long a request for approval waits before it expires.
    approval_ttl: Duration,
    /// In-flight executions, so shutdown can let them finish.
    tasks: TaskTracker,
}

impl ExecutionService {
    pub fn new(
        db: Db,
        catalog: ActionCatalog,
        clusters: ClusterRegistry,
        cid_policy: CidPolicy,
        upstream: UpstreamClient,
        duplicate_guard_window: Duration,
        approval_ttl: Duration,
    ) -> Self {
        Self {
            db,
            catalog,
            clusters,
            cid_policy,
            upstream,
            duplicate_guard_window,
            approval_ttl,
            tasks: TaskTracker::new(),
        }
    }

    pub fn catalog(&self) -> &ActionCatalog {
        &self.catalog
    }

    pub fn clusters(&self) -> &ClusterRegistry {
        &self.clusters
    }

    /// The configured CID pattern (the Customer Set page checks CIDs live with it).
    pub fn cid_policy(&self) -> &CidPolicy {
        &self.cid_policy
    }

    /// How long a request for approval waits before it expires.
    pub fn approval_ttl(&self) -> Duration {
        self.approval_ttl
    }

    /// How long a cluster may take before its job is `timed_out`.
    pub fn upstream_timeout(&self) -> Duration {
        self.upstream.timeout()
    }

    /// Executes the request under `key`, or answers from the job that
    /// already holds the key. The checks run in the order of the contract:
    /// the role; the body and the key, as the adapter read them; a key used
    /// before; the catalog and CIDs; then, for a new key, the
    /// recent-duplicate guard and the per-customer lock.
    #[tracing::instrument(skip_all, fields(user = %user.username))]
    pub async fn execute(
        self: &Arc<Self>,
        user: &User,
        key: Result<IdempotencyKey>,
        request: Result<SetActionRequest>,
    ) -> Result<SetActionResponse> {
        require_executor(user)?;
        let request = request?;
        let key = key?;
        let intent = Intent {
            cids: RawCids::from_input(&request.cids),
            cluster: request.cluster,
            action: request.action,
            token: request.token,
            reason: request.reason,
            confirm_duplicate: request.confirm_duplicate.unwrap_or(false),
            guarded: true,
            retry_of: None,
        };
        self.run_intent(user, &key, intent).await
    }

    /// Runs the same cluster and action again on a job's `failed` customers
    /// (and its `unknown` ones when asked), in their order, as a new job
    /// with `retry_of` set. The rules of `execute` hold, under the same key
    /// space, except the recent-duplicate guard: running the failed ones
    /// again is the point. A reason is not inherited.
    #[tracing::instrument(skip_all, fields(user = %user.username))]
    pub async fn retry(
        self: &Arc<Self>,
        user: &User,
        job_id: &str,
        key: Result<IdempotencyKey>,
        request: Result<RetryRequest>,
    ) -> Result<SetActionResponse> {
        require_executor(user)?;
        let request = request?;
        let key = key?;
        let original = JobId::parse(job_id).ok_or(Error::NotFound)?;
        let original = self.db.get_job(original).await?.ok_or(Error::NotFound)?.job;
        if !may_retry(user, &original) {
            // Others' jobs do not exist for an operator.
            return Err(Error::NotFound);
        }
        let include_unknown = request.include_unknown.unwrap_or(false);
        let cids: Vec<String> = self
            .db
            .job_customers(original.job_id, None)
            .await?
            .into_iter()
            .filter(|c| {
                c.outcome == CustomerState::Failed
                    || (include_unknown && c.outcome == CustomerState::Unknown)
            })
            .map(|c| c.cid)
            .collect();
        let intent = Intent {
            cluster: original.cluster,
            action: original.action,
            cids: RawCids::from_input(&CidsInput::List(cids)),
            token: request.token,
            reason: request.reason,
            confirm_duplicate: false,
            guarded: false,
            retry_of: Some(original.job_id),
        };
        self.run_intent(user, &key, intent).await
    }

    async fn run_intent(
        self: &Arc<Self>,
        user: &User,
        key: &IdempotencyKey,
        intent: Intent,
    ) -> Result<SetActionResponse> {
        let reason = trimmed_reason(intent.reason.as_deref());
        tracing::info!(
            user = %user.username, action = %intent.action, cid_count = intent.cids.values().len(),
            "[SET_ACTION] Starting: user={}, action={}, cid_count={}",
            user.username, intent.action, intent.cids.values().len()
        );
        let fingerprint = RequestFingerprint::new(
            &intent.cluster,
            &intent.action,
            &intent.cids,
            reason.as_deref(),
        );

        // A key used before is answered from its job whatever this request
        // says. For a valid request the claim finds that out (its insert
        // meets the key); only an invalid one needs to look first.
        let valid = match self.validate(&intent, reason) {
            Ok(valid) => valid,
            Err(invalid) => {
                if let Some(existing) = self.db.job_by_key(&user.username, key.as_str()).await? {
                    return self.answer_existing(existing, &fingerprint).await;
                }
                if let Some(existing) = self
                    .db
                    .approval_by_key(&user.username, key.as_str())
                    .await?
                {
                    let answer = approvals::answer_existing(existing, &fingerprint.payload_hash)?;
                    return Ok(awaiting_answer(answer));
                }
                return Err(invalid);
            }
        };
        let guard_on = intent.guarded && !intent.confirm_duplicate;
        if needs_approval(&valid.cluster, &valid.action) {
            return self
                .request_approval(user, key, &fingerprint, valid, &intent, guard_on)
                .await;
        }

        let created_at = now_millis();
        let job_id = JobId::new_at(created_at);
        let cid_strings: Vec<String> = valid
            .cids
            .as_slice()
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        tracing::info!(
            action_code = valid.action.code, action_name = %valid.action.name, cid_count = valid.cids.len(),
            "[SET_ACTION] Creating job: action_code={}, action_name={}, cid_count={}",
            valid.action.code, valid.action.name, valid.cids.len()
        );
        let new_job = NewJob {
            job_id,
            user: user.username.clone(),
            key: key.as_str().to_owned(),
            payload_hash: fingerprint.payload_hash.clone(),
            intent_hash: fingerprint.intent_hash.clone(),
            cluster: valid.cluster.name.clone(),
            action: valid.action.name.clone(),
            action_code: valid.action.code,
            cids: cid_strings.clone(),
            reason: valid.reason.clone(),
            created_at,
            deadline_at: self.deadline_for(created_at)?,
            confirm_duplicate: intent.confirm_duplicate,
            duplicate_guard_since: self.duplicate_guard_since(created_at).filter(|_| guard_on),
            retry_of: intent.retry_of,
            batch: None,
            approval: None,
        };
        if let Claim::Existing(existing) = self.db.claim_job(&new_job).await? {
            return self.answer_existing(*existing, &fingerprint).await;
        }
        // The call runs in its own task: a client that goes away must not
        // cancel a request the cluster may already be applying.
        self.run_claimed(new_job.pending_job(), valid).await
    }

    /// Freezes a checked request that needs four eyes as an approval.
    async fn request_approval(
        &self,
        user: &User,
        key: &IdempotencyKey,
        fingerprint: &RequestFingerprint,
        valid: ValidRequest,
        intent: &Intent,
        guard_on: bool,
    ) -> Result<SetActionResponse> {
        if valid.cluster.token.is_none() {
            // The request runs later, when approved: a token typed into it
            // could only be kept by storing a secret, which the product never does.
            return Err(Error::TokenRequired(valid.cluster.name.clone()));
        }
        let now = now_millis();
        let answer = approvals::request(
            &self.db,
            self.approval_ttl,
            ApprovalRequest {
                kind: ApprovalKind::Job,
                requested_by: user.username.clone(),
                key: key.as_str().to_owned(),
                cluster: valid.cluster.name.clone(),
                action: valid.action.name.clone(),
                action_code: valid.action.code,
                cids: valid
                    .cids
                    .as_slice()
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect(),
                reason: valid.reason,
                batch_size: None,
                run_at: None,
                payload_hash: fingerprint.payload_hash.clone(),
                intent_hash: fingerprint.intent_hash.clone(),
                confirm_duplicate: intent.confirm_duplicate,
                retry_of: intent.retry_of.map(|j| j.as_uuid()),
                duplicate_guard_since: self.duplicate_guard_since(now).filter(|_| guard_on),
            },
        )
        .await?;
        Ok(awaiting_answer(answer))
    }

    /// The request of an approval checked again against today's catalog,
    /// clusters and CID rule, when it is approved.
    pub(super) fn revalidate(
        &self,
        cluster: &str,
        action: &str,
        cids: &[String],
        reason: Option<String>,
    ) -> Result<ValidRequest> {
        let intent = Intent {
            cluster: cluster.to_owned(),
            action: action.to_owned(),
            cids: RawCids::from_input(&CidsInput::List(cids.to_vec())),
            token: None,
            reason: reason.clone(),
            confirm_duplicate: false,
            guarded: false,
            retry_of: None,
        };
        self.validate(&intent, reason)
    }

    fn validate(&self, intent: &Intent, reason: Option<String>) -> Result<ValidRequest> {
        let cluster = self
            .clusters
            .get(&intent.cluster)
            .ok_or_else(|| Error::UnknownCluster(intent.cluster.clone()))?;
        let action = self
            .catalog
            .get(&intent.action)
            .ok_or_else(|| Error::UnknownAction(intent.action.clone()))?;
        let cids = self
            .cid_policy
            .parse_list(&intent.cids, action.max_cids)
            .map_err(|e| match e {
                CidListError::NoCids if intent.retry_of.is_some() => Error::NothingToRetry,
                CidListError::NoCids => Error::NoCids,
                CidListError::TooMany { max, count } => Error::TooManyCids { max, count },
                CidListError::Invalid(invalid) => Error::invalid_cids(invalid),
            })?;
        let token = match &cluster.token {
            Some(server_side) => server_side.clone(),
            None => intent
                .token
                .clone()
                .filter(|t| !t.expose().trim().is_empty())
                .ok_or_else(|| Error::TokenRequired(cluster.name.clone()))?,
        };
        check_reason(action, reason.as_deref())?;
        Ok(ValidRequest {
            cluster: cluster.clone(),
            action: action.clone(),
            cids,
            token,
            reason,
        })
    }

    /// Sends a claimed job (a batch of a run, an approved request) in a
    /// task of its own (tracked, so shutdown lets it finish) and answers
    /// its finalised job.
    pub(super) fn spawn_claimed(
        self: &Arc<Self>,
        job: Job,
        valid: ValidRequest,
    ) -> tokio::task::JoinHandle<Result<SetActionResponse>> {
        let service = Arc::clone(self);
        self.tasks
            .spawn(async move { service.run(job, valid).await })
    }

    /// Sends a claimed job and waits for its answer; a client that goes
    /// away does not cancel it.
    pub(super) async fn run_claimed(
        self: &Arc<Self>,
        job: Job,
        valid: ValidRequest,
    ) -> Result<SetActionResponse> {
        self.spawn_claimed(job, valid)
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("Set Action task failed: {e}")))?
    }

    /// When a job created now must be finished by, or the sweep calls it
    /// interrupted.
    pub(super) fn deadline_for(
        &self,
        created_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<chrono::DateTime<chrono::Utc>> {
        Ok(created_at
            + chrono::Duration::from_std(self.upstream.timeout() + STALE_GRACE)
                .map_err(anyhow::Error::from)?)
    }

    /// The recent-duplicate guard's start for a request made at `now`, or
    /// `None` when the guard is off.
    pub(super) fn duplicate_guard_since(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        (!self.duplicate_guard_window.is_zero()).then(|| {
            now - chrono::Duration::from_std(self.duplicate_guard_window).unwrap_or_default()
        })
    }

    /// Calls the cluster once for a claimed job and records the outcome.
    async fn run(&self, mut job: Job, valid: ValidRequest) -> Result<SetActionResponse> {
        // The fence: the job's deadline leaves the upstream timeout plus
        // `STALE_GRACE` from its creation, so a call started later than the
        // grace could still be running when every other instance may call
        // the job interrupted. An instance held up that long between
        // creating the job and sending it (its host froze it, or the store
        // answered its claim late) gives the job up unsent instead of acting
        // on a belief the store no longer shares.
        let held_up = now_millis() - job.created_at;
        if held_up.to_std().unwrap_or_default() >= STALE_GRACE {
            return self.give_up_unsent(job, held_up).await;
        }
        metrics::gauge!("tms_set_actions_in_flight").increment(1.0);
        let call = self
            .upstream
            .call(
                &valid.cluster,
                &valid.action,
                &valid.cids,
                &valid.token,
                job.job_id,
            )
            .await;
        metrics::gauge!("tms_set_actions_in_flight").decrement(1.0);
        metrics::histogram!("tms_upstream_duration_seconds", "cluster" => job.cluster.clone())
            .record(call.elapsed.as_secs_f64());

        let finished_at = now_millis();
        job.finished_at = Some(finished_at);
        job.duration_ms = Some((finished_at - job.created_at).num_milliseconds().max(0));
        job.phases.sent_at = Some(call.sent_at);
        job.phases.answered_at = call.answered_at;
        job.phases.finalized_at = Some(finished_at);
        let customers = settle(&mut job, call.outcome);
        let response = self.finalise(&job, customers).await?;
        match job.status {
            JobStatus::Succeeded => {
                tracing::info!(job_id = %job.job_id, "[SET_ACTION] SUCCESS: Job created with job_id={}", job.job_id)
            }
            JobStatus::Partial => {
                let o = job.outcomes;
                tracing::warn!(job_id = %job.job_id, ok = o.ok, failed = o.failed, unknown = o.unknown,
                    "[SET_ACTION] PARTIAL: job_id={}, ok={}, failed={}, unknown={}", job.job_id, o.ok, o.failed, o.unknown)
            }
            // One line per failure, at WARN (the console did its part and
            // recorded the job; the cluster refused or did not answer), its
            // message as SPEC §10 fixes it, the rest as fields.
            JobStatus::TimedOut => {
                let error = job.error.as_deref().unwrap_or_default();
                tracing::warn!(job_id = %job.job_id, cluster = %job.cluster, action = %job.action, user = %job.user, error,
                    "[SET_ACTION] TIMED_OUT: job_id={}", job.job_id)
            }
            _ => {
                let error = job.error.as_deref().unwrap_or_default();
                tracing::warn!(job_id = %job.job_id, cluster = %job.cluster, action = %job.action, user = %job.user, error,
                    "[SET_ACTION] FAILED: job_id={}, error={}", job.job_id, error)
            }
        }
        metrics::counter!("tms_set_action_total", "action" => job.action.clone(), "outcome" => job.status.as_str())
            .increment(1);
        metrics::counter!("tms_jobs_total", "status" => job.status.as_str()).increment(1);
        Ok(response)
    }

    /// Records a claimed job that was never sent as `failed` (the cluster
    /// was not called, so no customer was touched and a retry is safe),
    /// unless the sweep already called it interrupted.
    async fn give_up_unsent(
        &self,
        mut job: Job,
        held_up: chrono::Duration,
    ) -> Result<SetActionResponse> {
        let error = format!(
            "not sent: this instance was held up {:.1} s between creating the job and sending it, \
             past the time the other instances wait for it; the cluster was not called",
            held_up.num_milliseconds() as f64 / 1000.0
        );
        let now = now_millis();
        job.status = JobStatus::Failed;
        job.finished_at = Some(now);
        job.duration_ms = Some(held_up.num_milliseconds().max(0));
        job.phases.finalized_at = Some(now);
        let customers = outcome::all(&job.cids, CustomerState::Failed, Some(&error));
        job.outcomes = OutcomeCounts::of(&customers);
        tracing::warn!(job_id = %job.job_id, error, "[SET_ACTION] NOT SENT: job_id={}, error={}", job.job_id, error);
        job.error = Some(error);
        metrics::counter!("tms_jobs_not_sent_total").increment(1);
        self.finalise(&job, customers).await
    }

    /// Stores the final state and the answer; if the sweep resolved the job
    /// first, answers what the store holds instead. The cluster has already
    /// been called, so a failed write is retried a few times before the job
    /// is left to the sweep.
    async fn finalise(
        &self,
        job: &Job,
        customers: Vec<CustomerOutcome>,
    ) -> Result<SetActionResponse> {
        let done = finalisation(job, customers)?;
        let mut attempt = 0;
        let finalised = loop {
            match self.db.finalize_job(&done).await {
                Ok(finalised) => break finalised,
                Err(e) if attempt < FINALISE_RETRIES.len() => {
                    tracing::warn!(job_id = %job.job_id, error = %e, "recording the outcome failed; retrying");
                    tokio::time::sleep(FINALISE_RETRIES[attempt]).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        if finalised {
            return Ok(SetActionResponse {
                status: done.response_status,
                body: done.response_body,
                replayed: false,
            });
        }
        let stored = self.db.get_job(job.job_id).await?.ok_or(Error::NotFound)?;
        let (status, body) = stored
            .response
            .ok_or_else(|| anyhow::anyhow!("job {} has no answer", job.job_id))?;
        Ok(SetActionResponse {
            status,
            body,
            replayed: false,
        })
    }

    /// Marks jobs left `pending` by a stopped instance as `unknown` once
    /// their deadline passed (each job carries its own, set by the instance
    /// that created it from its upstream timeout). Safe to run from several
    /// instances at once: each job is finalised once.
    #[tracing::instrument(skip_all)]
    pub async fn sweep(&self) -> Result<usize> {
        let now = now_millis();
        let mut resolved = 0;
        for stored in self.db.overdue_pending_jobs(now).await? {
            let mut job = stored.job;
            job.status = JobStatus::Unknown;
            job.error = Some(INTERRUPTED_ERROR.into());
            job.finished_at = Some(now);
            job.duration_ms = Some((now - job.created_at).num_milliseconds().max(0));
            // Whether the request was sent and answered is exactly what is unknown.
            job.phases.finalized_at = Some(now);
            let customers = outcome::all(&job.cids, CustomerState::Unknown, None);
            job.outcomes = OutcomeCounts::of(&customers);
            let done = Finalisation {
                response_status: JobStatus::Unknown.http_status(),
                response_body: job_body(&job)?,
                customers,
                job,
            };
            if self.db.finalize_job(&done).await? {
                let job = done.job;
                resolved += 1;
                metrics::counter!("tms_jobs_total", "status" => job.status.as_str()).increment(1);
                tracing::warn!(job_id = %job.job_id, "[SET_ACTION] UNKNOWN: job_id={}, error={}", job.job_id, INTERRUPTED_ERROR);
                metrics::counter!("tms_jobs_swept_total").increment(1);
                if let (Some(run_id), Some(index)) = (job.run_id, job.batch_index) {
                    if let Err(e) =
                        super::dispatcher::batch_ended(&self.db, run_id, index, job.job_id).await
                    {
                        tracing::warn!(%run_id, error = %e, "reading a swept batch failed");
                    }
                }
            }
        }
        Ok(resolved)
    }

    /// Waits for in-flight executions, at most `limit`.
    pub async fn drain(&self, limit: Duration) {
        self.tasks.close();
        if tokio::time::timeout(limit, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: in-flight Set Actions did not finish in time; the sweep will resolve them");
        }
    }
}

/// Reads one call's outcome into the job (its status, upstream status,
/// summary, error and counts) and answers each customer's outcome: how every
/// Set Action and batch is settled, and the demo's simulated calls too.
pub(super) fn settle(job: &mut Job, outcome: Outcome) -> Vec<CustomerOutcome> {
    let customers = match outcome {
        Outcome::Succeeded {
            upstream_status,
            summary,
            body,
        } => {
            let verdict = outcome::read_success(&job.cids, &body);
            job.status = verdict.status;
            job.error = verdict.error;
            job.upstream_status = Some(i64::from(upstream_status));
            job.response_summary = summary;
            verdict.customers
        }
        Outcome::Failed {
            upstream_status,
            summary,
            error,
        } => {
            job.status = JobStatus::Failed;
            job.upstream_status = upstream_status.map(i64::from);
            job.response_summary = summary;
            let customers = outcome::all(&job.cids, CustomerState::Failed, Some(&error));
            job.error = Some(error);
            customers
        }
        Outcome::TimedOut { error } => {
            job.status = JobStatus::TimedOut;
            job.error = Some(error);
            outcome::all(&job.cids, CustomerState::Unknown, None)
        }
    };
    job.outcomes = OutcomeCounts::of(&customers);
    customers
}

/// The final write of a settled job, with the answer its request gets.
pub(super) fn finalisation(job: &Job, customers: Vec<CustomerOutcome>) -> Result<Finalisation> {
    Ok(Finalisation {
        job: job.clone(),
        customers,
        response_status: job.status.http_status(),
        response_body: job_body(job)?,
    })
}

/// A request waiting for approval, answered `202 {"approval"}`.
fn awaiting_answer(answer: approvals::ApprovalAnswer) -> SetActionResponse {
    SetActionResponse {
        status: 202,
        body: answer.body,
        replayed: answer.replayed,
    }
}

fn job_body(job: &Job) -> Result<String> {
    Ok(serde_json::to_string(&serde_json::json!({ "job": job })).map_err(anyhow::Error::from)?)
}

/// The answer for a key already used: key reuse with another payload, still
/// running, or a replay of the original answer (counted on the job).
impl ExecutionService {
    async fn answer_existing(
        &self,
        existing: StoredJob,
        fingerprint: &RequestFingerprint,
    ) -> Result<SetActionResponse> {
        if existing.payload_hash != fingerprint.payload_hash {
            return Err(Error::IdempotencyKeyReused);
        }
        let Some((status, body)) = existing.response else {
            return Err(Error::RequestInProgress {
                job_id: existing.job.job_id,
            });
        };
        let job_id = existing.job.job_id;
        tracing::info!(job_id = %job_id, "[SET_ACTION] REPLAY: job_id={}", job_id);
        metrics::counter!("tms_set_action_replays_total").increment(1);
        self.db.record_replay(job_id, now_millis()).await?;
        Ok(SetActionResponse {
            status,
            body,
            replayed: true,
        })
    }
}
