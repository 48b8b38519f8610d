//! The dispatcher: sends the batches of runs, each as one job under the
//! exactly-once rules, in order, within each cluster's limits. Every
//! decision that must hold across instances (the run still active, the
//! batch still the next one, the cluster under `max_in_flight` and
//! `max_per_second`, the job claimed once) is taken by the store in the
//! batch's start (`Db::start_batch`); this loop only asks often enough.
//! Any instance may send any run's batches, so a run goes on after a
//! restart or on another instance; a batch whose instance died mid-call is
//! resolved to `unknown` by the sweep, like any job, and never sent again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::execution::ValidRequest;
use super::runs::Runs;
use crate::domain::cid::{CidsInput, RawCids};
use crate::domain::fingerprint::RequestFingerprint;
use crate::domain::job::{now_millis, JobId, JobStatus};
use crate::domain::run::{BatchStatus, RunId, RunStatus};
use crate::error::{Error, Result};
use crate::store::jobs::NewJob;
use crate::store::runs::{StartBatch, StartOutcome, Startable};
use crate::store::Db;

/// How often the dispatcher looks for work it was not woken for: batches of
/// other instances' runs, scheduled starts, a cluster's limit freed by
/// another instance. Scheduled runs start within this of their time.
const POLL: Duration = Duration::from_millis(250);
/// Runs looked at per round (each contributes its next batch).
const RUNS_PER_ROUND: u32 = 64;
/// How often the run gauges are read from the store.
const GAUGES_EVERY: Duration = Duration::from_secs(1);

/// The idempotency key of a batch's job. It holds spaces, which no
/// client's key may (SPEC §3: 0x21–0x7E), so it can never meet one.
pub(super) fn batch_key(run_id: RunId, batch_index: i64) -> String {
    format!("run {run_id} batch {batch_index}")
}

/// Sends batches until `stop` turns true; batches already sent are left to
/// finish (the execution service's drain waits for them).
pub async fn dispatch_forever(runs: Arc<Runs>, mut stop: watch::Receiver<bool>) {
    let mut last_gauges = std::time::Instant::now() - GAUGES_EVERY;
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = dispatch_once(&runs).await {
            tracing::error!(error = %e, "dispatching batches failed");
        }
        if last_gauges.elapsed() >= GAUGES_EVERY {
            last_gauges = std::time::Instant::now();
            if let Err(e) = record_gauges(&runs).await {
                tracing::warn!(error = %e, "reading the run gauges failed");
            }
        }
        tokio::select! {
            () = runs.wake().notified() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One round: scheduled runs whose time came are queued, then batches are
/// started, each run's next one at a time, until every run waits on a
/// limit, on busy customers, or has nothing left to send.
pub async fn dispatch_once(runs: &Arc<Runs>) -> Result<()> {
    let db = runs.db();
    // A failure here must not hold up the batches of runs already queued.
    let promoted = db
        .promote_scheduled_runs(now_millis())
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "starting scheduled runs failed");
            0
        });
    if promoted > 0 {
        tracing::info!(
            promoted,
            "[RUN] Scheduled start: {} run(s) queued",
            promoted
        );
    }
    let mut full: HashSet<String> = HashSet::new();
    let mut waiting: HashSet<RunId> = HashSet::new();
    loop {
        let mut started = 0;
        for next in db.startable_batches(RUNS_PER_ROUND).await? {
            if full.contains(&next.cluster) || waiting.contains(&next.run_id) {
                continue;
            }
            let (run_id, cluster) = (next.run_id, next.cluster.clone());
            match start(runs, next).await {
                Ok(StartOutcome::Started) => started += 1,
                Ok(StartOutcome::AtLimit) => {
                    full.insert(cluster);
                }
                Ok(StartOutcome::NotActive | StartOutcome::Gone) => {}
                Err(Error::CidsBusy { job_id, busy, .. }) => {
                    tracing::debug!(%run_id, %job_id, busy = busy.len(), "a batch waits for busy customers");
                    waiting.insert(run_id);
                }
                Err(e) => {
                    tracing::error!(%run_id, error = %e, "a batch could not be started; it waits");
                    waiting.insert(run_id);
                }
            }
        }
        if started == 0 {
            return Ok(());
        }
    }
}

/// Starts one batch: its job claimed by the store under the cluster's
/// limits, then sent in a task of its own.
async fn start(runs: &Arc<Runs>, next: Startable) -> Result<StartOutcome> {
    let execution = runs.execution();
    let cluster = execution
        .clusters()
        .get(&next.cluster)
        .cloned()
        .ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "cluster {:?} of run {} is no longer configured",
                next.cluster,
                next.run_id
            ))
        })?;
    let action = execution
        .catalog()
        .get(&next.action)
        .cloned()
        .ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "action {:?} of run {} is no longer configured",
                next.action,
                next.run_id
            ))
        })?;
    let token = cluster.token.clone().ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "cluster {:?} has no server-side token for run {}",
            cluster.name,
            next.run_id
        ))
    })?;
    let raw = RawCids::from_input(&CidsInput::List(next.cids.clone()));
    let cids = execution
        .cid_policy()
        .parse_list(&raw, usize::MAX)
        .map_err(|e| Error::Internal(anyhow::anyhow!("a stored batch is not valid: {e:?}")))?;
    let fingerprint =
        RequestFingerprint::new(&cluster.name, &action.name, &raw, next.reason.as_deref());
    let created_at = now_millis();
    let job = NewJob {
        job_id: JobId::new_at(created_at),
        user: next.user.clone(),
        key: batch_key(next.run_id, next.batch_index),
        payload_hash: fingerprint.payload_hash,
        intent_hash: fingerprint.intent_hash,
        cluster: cluster.name.clone(),
        action: action.name.clone(),
        action_code: action.code,
        cids: next.cids,
        reason: next.reason.clone(),
        created_at,
        deadline_at: execution.deadline_for(created_at)?,
        confirm_duplicate: false,
        // The run as a whole met the guard when it was created.
        duplicate_guard_since: None,
        retry_of: None,
        batch: Some((next.run_id, next.batch_index)),
        // A batch of an approved run carries its approval into the audit.
        approval: next.approval.clone(),
    };
    let start = StartBatch {
        job,
        max_in_flight: cluster.max_in_flight,
        max_per_second: cluster.max_per_second,
    };
    let outcome = runs.db().start_batch(&start).await?;
    if outcome != StartOutcome::Started {
        return Ok(outcome);
    }
    let pending = start.job.pending_job();
    let (run_id, index, job_id) = (next.run_id, next.batch_index, pending.job_id);
    if index == 0 {
        tracing::info!(%run_id, "[RUN] Started: run_id={}", run_id);
    }
    tracing::info!(
        %run_id, batch_index = index, %job_id, cid_count = pending.cids.len(),
        "[RUN] Batch sent: run_id={}, batch_index={}, job_id={}, cid_count={}",
        run_id, index, job_id, pending.cids.len()
    );
    let valid = ValidRequest {
        cluster,
        action,
        cids,
        token,
        reason: next.reason,
    };
    let sent = execution.spawn_claimed(pending, valid);
    let runs = Arc::clone(runs);
    tokio::spawn(async move {
        match sent.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(%run_id, batch_index = index, %job_id, error = %e, "a batch's outcome was not recorded; the sweep resolves it");
            }
            Err(e) => {
                tracing::error!(%run_id, batch_index = index, %job_id, error = %e, "a batch's task failed; the sweep resolves it");
            }
        }
        if let Err(e) = batch_ended(runs.db(), run_id, index, job_id).await {
            tracing::warn!(%run_id, error = %e, "reading a finished batch failed");
        }
        runs.wake().notify_one();
    });
    Ok(StartOutcome::Started)
}

/// Logs and counts a batch that ended (sent here, or resolved by the
/// sweep), and the run it ended, if it did.
pub(super) async fn batch_ended(db: &Db, run_id: RunId, index: i64, job_id: JobId) -> Result<()> {
    let Some(job) = db.get_job(job_id).await? else {
        return Ok(());
    };
    let job = job.job;
    if job.status == JobStatus::Pending {
        return Ok(());
    }
    let status = BatchStatus::of_job(job.status);
    metrics::counter!("tms_batches_total", "status" => status.as_str()).increment(1);
    tracing::info!(
        %run_id, batch_index = index, %job_id, status = status.as_str(),
        ok = job.outcomes.ok, failed = job.outcomes.failed, unknown = job.outcomes.unknown,
        "[RUN] Batch finished: run_id={}, batch_index={}, job_id={}, status={}",
        run_id, index, job_id, status.as_str()
    );
    if let Some(stored) = db.get_run(run_id).await? {
        let run = stored.run;
        // The finalisation that ended the last batch closed the run with
        // its own time: only that one logs it.
        if run.status == RunStatus::Finished && run.finished_at == job.phases.finalized_at {
            let c = run.customers;
            tracing::info!(
                %run_id, ok = c.ok, failed = c.failed, unknown = c.unknown, not_run = c.not_run,
                "[RUN] Finished: run_id={}, ok={}, failed={}, unknown={}, not_run={}",
                run_id, c.ok, c.failed, c.unknown, c.not_run
            );
        }
    }
    Ok(())
}

async fn record_gauges(runs: &Runs) -> Result<()> {
    let db = runs.db();
    metrics::gauge!("tms_runs_active").set(db.count_active_runs().await? as f64);
    let in_flight = db.batches_in_flight().await?;
    for cluster in runs.execution().clusters().iter() {
        let n = in_flight
            .iter()
            .find(|(name, _)| *name == cluster.name)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("tms_batches_in_flight", "cluster" => cluster.name.clone()).set(n as f64);
    }
    Ok(())
}
