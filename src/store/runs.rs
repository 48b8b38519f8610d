//! Runs and their batches: the run, its batches and their CIDs committed in
//! one write before the run is answered; the start of one batch (its job's
//! claim, the cluster's limits counted across every instance, in one
//! write); pause, resume and cancel as one transition each; and the reads
//! the API and the dispatcher need.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::events::NewEvent;
use super::jobs::{claim, NewJob};
use super::tx::{args, write_tx, Backend, Tx};
use super::{with_pool, Db};
use crate::domain::approval::ApprovalId;
use crate::domain::event::EventType;
use crate::domain::job::JobId;
use crate::domain::outcome::{Outcome, OutcomeCounts};
use crate::domain::query::PageRequest;
use crate::domain::run::{
    Batch, BatchCounts, BatchStatus, Run, RunCommand, RunCustomerCounts, RunId, RunStatus,
};
use crate::error::{Error, Holder, Result};

const RUN_COLUMNS: &str = "run_id, user_name, cluster, action, action_code, reason, cid_count, \
     batch_size, batch_count, status, run_at, created_at, started_at, finished_at, retry_of, \
     approved_by, approval_id, payload_hash, response_body";

#[derive(sqlx::FromRow)]
struct RunRow {
    run_id: Uuid,
    user_name: String,
    cluster: String,
    action: String,
    action_code: i64,
    reason: Option<String>,
    cid_count: i64,
    batch_size: i64,
    batch_count: i64,
    status: String,
    run_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    retry_of: Option<Uuid>,
    approved_by: Option<String>,
    approval_id: Option<Uuid>,
    payload_hash: String,
    response_body: String,
}

/// A run with what the store keeps to answer replays.
#[derive(Clone, Debug)]
pub struct StoredRun {
    pub run: Run,
    pub payload_hash: String,
    /// The `202` body first answered.
    pub response_body: String,
}

impl RunRow {
    fn into_stored(self, counts: Option<&(BatchCounts, RunCustomerCounts)>) -> Result<StoredRun> {
        let status = RunStatus::parse(&self.status).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "run {} has unknown status {:?}",
                self.run_id,
                self.status
            ))
        })?;
        let (batches, customers) = counts.copied().unwrap_or_default();
        Ok(StoredRun {
            run: Run {
                run_id: RunId::from_uuid(self.run_id),
                user: self.user_name,
                cluster: self.cluster,
                action: self.action,
                action_code: self.action_code,
                reason: self.reason,
                cid_count: self.cid_count,
                batch_size: self.batch_size,
                batch_count: self.batch_count,
                status,
                batches,
                customers,
                run_at: self.run_at,
                created_at: self.created_at,
                started_at: self.started_at,
                finished_at: self.finished_at,
                retry_of: self.retry_of.map(RunId::from_uuid),
                approved_by: self.approved_by,
                approval_id: self.approval_id.map(ApprovalId::from_uuid),
            },
            payload_hash: self.payload_hash,
            response_body: self.response_body,
        })
    }
}

/// A run about to be committed, with its batches.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub run: Run,
    pub key: String,
    pub payload_hash: String,
    pub intent_hash: String,
    pub confirm_duplicate: bool,
    /// The CIDs of each batch, in order.
    pub batches: Vec<Vec<String>>,
    /// Refuse when a run of the same intent that is not cancelled was
    /// created since this time (`None`: the guard is off or lifted).
    pub duplicate_guard_since: Option<DateTime<Utc>>,
    /// The `202` the request is answered, kept for replays.
    pub response_body: String,
}

/// The filters of the runs' listing.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub user: Option<String>,
    pub cluster: Option<String>,
    pub action: Option<String>,
    pub status: Option<RunStatus>,
}

/// The next batch of an active run, as the dispatcher reads it.
#[derive(Clone, Debug)]
pub struct Startable {
    pub run_id: RunId,
    pub batch_index: i64,
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub reason: Option<String>,
    pub cids: Vec<String>,
    /// The run's approval and approver, which each batch's job carries.
    pub approval: Option<(ApprovalId, String)>,
}

/// What starting a batch came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartOutcome {
    /// Its job is claimed and the batch is running: call the cluster.
    Started,
    /// The cluster has as many batches in flight, or started this second,
    /// as it may: try again later.
    AtLimit,
    /// The run is paused, cancelled, scheduled or over.
    NotActive,
    /// Another instance started it, or an earlier batch waits.
    Gone,
}

/// One customer of a run, with where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCustomer {
    pub cid: String,
    /// `None`: its batch was not sent (`not_run`).
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    pub job_id: Option<JobId>,
}

/// The statements that differ between the dialects.
struct RunStatements {
    /// `$1` run, `$2` cluster, `$3` a JSON array of batches (arrays of CIDs).
    insert_batches: &'static str,
    /// `$1` run: its status, its row locked on PostgreSQL, so that a
    /// batch's start, its end and pause or cancel of the run come one after
    /// another.
    lock_run: &'static str,
}

const SQLITE_RUNS: RunStatements = RunStatements {
    insert_batches:
        "INSERT INTO run_batches (run_id, batch_index, cluster, cids, cid_count, status) \
        SELECT $1, key, $2, value, json_array_length(value), 'queued' FROM json_each($3)",
    lock_run: "SELECT status FROM runs WHERE run_id = $1",
};

const POSTGRES_RUNS: RunStatements = RunStatements {
    insert_batches:
        "INSERT INTO run_batches (run_id, batch_index, cluster, cids, cid_count, status) \
        SELECT $1, b.n - 1, $2, b.value::text, json_array_length(b.value), 'queued' \
        FROM json_array_elements($3::json) WITH ORDINALITY AS b(value, n)",
    lock_run: "SELECT status FROM runs WHERE run_id = $1 FOR UPDATE",
};

fn run_statements(backend: Backend) -> &'static RunStatements {
    match backend {
        Backend::Sqlite => &SQLITE_RUNS,
        Backend::Postgres => &POSTGRES_RUNS,
    }
}

/// Locks a run's row (PostgreSQL; SQLite's one writer already orders
/// writes) and answers its status.
pub(crate) async fn lock_run(tx: &mut impl Tx, run_id: RunId) -> Result<Option<String>> {
    tx.fetch_optional(
        run_statements(tx.backend()).lock_run,
        &args![run_id.as_uuid()],
    )
    .await?
    .map(|row| row.get::<String>(0))
    .transpose()
}

/// The run as it now stands, for its events (without the counters of its
/// batches and customers, which its jobs' events carry).
async fn run_data(tx: &mut impl Tx, run_id: RunId) -> Result<serde_json::Value> {
    let row = tx
        .fetch_optional(
            "SELECT user_name, cluster, action, action_code, reason, cid_count, batch_size, batch_count, \
             status, run_at, created_at, started_at, finished_at, retry_of, approved_by, approval_id \
             FROM runs WHERE run_id = $1",
            &args![run_id.as_uuid()],
        )
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("run {run_id} vanished")))?;
    let time = |i: usize| -> Result<Option<String>> {
        Ok(row
            .get::<Option<DateTime<Utc>>>(i)?
            .map(|t| crate::time::format_time(&t)))
    };
    Ok(serde_json::json!({
        "run_id": run_id,
        "user": row.get::<String>(0)?,
        "cluster": row.get::<String>(1)?,
        "action": row.get::<String>(2)?,
        "action_code": row.get::<i64>(3)?,
        "reason": row.get::<Option<String>>(4)?,
        "cid_count": row.get::<i64>(5)?,
        "batch_size": row.get::<i64>(6)?,
        "batch_count": row.get::<i64>(7)?,
        "status": row.get::<String>(8)?,
        "run_at": time(9)?,
        "created_at": time(10)?,
        "started_at": time(11)?,
        "finished_at": time(12)?,
        "retry_of": row.get::<Option<Uuid>>(13)?,
        "approved_by": row.get::<Option<String>>(14)?,
        "approval_id": row.get::<Option<Uuid>>(15)?,
    }))
}

/// `run.status_changed`: the run after the change, and the status it left.
async fn status_changed(
    tx: &mut impl Tx,
    run_id: RunId,
    previous: &str,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut data = run_data(tx, run_id).await?;
    data["previous_status"] = serde_json::Value::from(previous);
    super::events::append(
        tx,
        NewEvent::new(
            EventType::RunStatusChanged,
            actor,
            serde_json::json!({"run_id": run_id}),
            data,
            now,
        ),
    )
    .await?;
    Ok(())
}

/// Serialises, on PostgreSQL, the writes that decide for one `(user, key)`
/// across jobs and runs, which share one key space. SQLite's one writer
/// already does.
pub(crate) async fn lock_key(tx: &mut impl Tx, user: &str, key: &str) -> Result<()> {
    if tx.backend() == Backend::Postgres {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 1))",
            &args![key_lock_name(user, key)],
        )
        .await?;
    }
    Ok(())
}

/// What the lock of a `(user, key)` is named after.
pub(crate) fn key_lock_name(user: &str, key: &str) -> String {
    format!("{user}\u{1f}{key}")
}

/// True when `(user, key)` names a run (for a job's claim: one key space).
pub(crate) async fn key_names_a_run(tx: &mut impl Tx, user: &str, key: &str) -> Result<bool> {
    Ok(tx
        .fetch_optional(
            "SELECT 1 FROM runs WHERE user_name = $1 AND idempotency_key = $2",
            &args![user, key],
        )
        .await?
        .is_some())
}

/// The run and its batches, in one write: true when inserted, false when
/// another run holds the key. A key a job holds, a recent duplicate and
/// anything else refused leave nothing behind.
pub(crate) async fn insert_run(tx: &mut impl Tx, new: &NewRun) -> Result<bool> {
    let run = &new.run;
    lock_key(tx, &run.user, &new.key).await?;
    if tx.backend() == Backend::Postgres {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 2))",
            &args![&new.intent_hash],
        )
        .await?;
    }
    let inserted = tx
        .execute(
            "INSERT INTO runs (run_id, user_name, idempotency_key, payload_hash, intent_hash, cluster, action, \
             action_code, reason, cid_count, batch_size, batch_count, status, run_at, created_at, retry_of, \
             approved_by, approval_id, confirm_duplicate, response_body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
             ON CONFLICT (user_name, idempotency_key) DO NOTHING",
            &args![
                run.run_id.as_uuid(),
                &run.user,
                &new.key,
                &new.payload_hash,
                &new.intent_hash,
                &run.cluster,
                &run.action,
                run.action_code,
                run.reason.as_deref(),
                run.cid_count,
                run.batch_size,
                run.batch_count,
                run.status.as_str(),
                run.run_at,
                run.created_at,
                run.retry_of.map(|r| r.as_uuid()),
                run.approved_by.as_deref(),
                run.approval_id.map(|a| a.as_uuid()),
                new.confirm_duplicate,
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
            &args![&run.user, &new.key],
        )
        .await?
        .is_some();
    if job_holds_key || super::approvals::key_names_an_approval(tx, &run.user, &new.key).await? {
        return Err(Error::IdempotencyKeyReused);
    }
    if let Some(since) = new.duplicate_guard_since {
        if let Some(refusal) = recent_run(tx, &new.intent_hash, since, run.run_id).await? {
            return Err(refusal);
        }
        let awaiting =
            super::approvals::awaiting_duplicate(tx, &new.intent_hash, run.created_at, None);
        if let Some(refusal) = awaiting.await? {
            return Err(refusal);
        }
    }
    let batches = serde_json::to_string(&new.batches).map_err(anyhow::Error::from)?;
    tx.execute(
        run_statements(tx.backend()).insert_batches,
        &args![run.run_id.as_uuid(), &run.cluster, batches],
    )
    .await?;
    let data = run_data(tx, run.run_id).await?;
    super::events::append(
        tx,
        NewEvent::new(
            EventType::RunCreated,
            Some(&run.user),
            serde_json::json!({"run_id": run.run_id}),
            data,
            run.created_at,
        ),
    )
    .await?;
    Ok(true)
}

/// The recent-duplicate guard's view of runs: a run of the same intent,
/// not cancelled, created since `since`, other than `except`, as the
/// refusal it makes.
pub(crate) async fn recent_run(
    tx: &mut impl Tx,
    intent_hash: &str,
    since: DateTime<Utc>,
    except: RunId,
) -> Result<Option<Error>> {
    let recent = tx
        .fetch_optional(
            "SELECT run_id, user_name, created_at FROM runs WHERE intent_hash = $1 AND created_at >= $2 \
             AND status <> 'cancelled' AND run_id <> $3 ORDER BY created_at DESC LIMIT 1",
            &args![intent_hash, since, except.as_uuid()],
        )
        .await?;
    recent
        .map(|row| {
            Ok(Error::RecentDuplicate {
                holder: Holder::Run(RunId::from_uuid(row.get(0)?)),
                user: row.get(1)?,
                created_at: row.get(2)?,
            })
        })
        .transpose()
}

/// What a claim of a run decided.
#[derive(Debug)]
pub enum RunClaim {
    Created,
    /// The key was taken by this run.
    Existing(Box<StoredRun>),
}

/// A batch to start, with its job and the cluster's limits.
#[derive(Clone, Debug)]
pub struct StartBatch {
    pub job: NewJob,
    pub max_in_flight: u32,
    pub max_per_second: Option<u32>,
}

impl Db {
    /// Commits the run, its batches and their CIDs in one write, or answers
    /// the run already holding the key.
    #[tracing::instrument(skip_all, fields(run_id = %new.run.run_id))]
    pub async fn claim_run(&self, new: &NewRun) -> Result<RunClaim> {
        let owned = new.clone();
        let created = write_tx!(self, |tx| async move { insert_run(tx, &owned).await })?;
        if created {
            return Ok(RunClaim::Created);
        }
        self.run_by_key(&new.run.user, &new.key)
            .await?
            .map(|held| RunClaim::Existing(Box::new(held)))
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("the run holding this key vanished")))
    }

    /// The run a user's key names, if any.
    pub async fn run_by_key(&self, user: &str, key: &str) -> Result<Option<StoredRun>> {
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM runs WHERE user_name = $1 AND idempotency_key = $2");
        let row: Option<RunRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(user).bind(key).fetch_optional(pool).await)?;
        self.with_counts(row.into_iter().collect())
            .await
            .map(|mut v| v.pop())
    }

    /// One run with its counters.
    pub async fn get_run(&self, run_id: RunId) -> Result<Option<StoredRun>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1");
        let row: Option<RunRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(run_id.as_uuid()).fetch_optional(pool).await)?;
        self.with_counts(row.into_iter().collect())
            .await
            .map(|mut v| v.pop())
    }

    /// Up to `limit` runs, newest first, after `page`'s cursor.
    pub async fn list_runs(
        &self,
        filter: &RunFilter,
        page: PageRequest,
        limit: u32,
    ) -> Result<Vec<Run>> {
        let rows: Vec<RunRow> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new(format!("SELECT {RUN_COLUMNS} FROM runs WHERE 1 = 1"));
            if let Some(v) = &filter.user {
                query.push(" AND user_name = ").push_bind(v.as_str());
            }
            if let Some(v) = &filter.cluster {
                query.push(" AND cluster = ").push_bind(v.as_str());
            }
            if let Some(v) = &filter.action {
                query.push(" AND action = ").push_bind(v.as_str());
            }
            if let Some(v) = filter.status {
                query.push(" AND status = ").push_bind(v.as_str());
            }
            if let Some(c) = page.cursor {
                query
                    .push(" AND (created_at, run_id) < (")
                    .push_bind(c.created_at)
                    .push(", ")
                    .push_bind(c.job_id)
                    .push(")");
            }
            query
                .push(" ORDER BY created_at DESC, run_id DESC LIMIT ")
                .push_bind(i64::from(limit));
            query.build_query_as().fetch_all(pool).await
        })?;
        Ok(self
            .with_counts(rows)
            .await?
            .into_iter()
            .map(|s| s.run)
            .collect())
    }

    /// Runs with their batch and customer counters, in one query for all.
    async fn with_counts(&self, rows: Vec<RunRow>) -> Result<Vec<StoredRun>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(sqlx::FromRow)]
        struct CountRow {
            run_id: Uuid,
            status: String,
            batches: i64,
            cids: i64,
            ok: Option<i64>,
            failed: Option<i64>,
            unknown: Option<i64>,
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.run_id).collect();
        let counted: Vec<CountRow> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new(
                // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
                "SELECT b.run_id, b.status, COUNT(*) AS batches, CAST(SUM(b.cid_count) AS BIGINT) AS cids, \
                 CAST(SUM(j.ok_count) AS BIGINT) AS ok, CAST(SUM(j.failed_count) AS BIGINT) AS failed, \
                 CAST(SUM(j.unknown_count) AS BIGINT) AS unknown \
                 FROM run_batches b LEFT JOIN jobs j ON j.job_id = b.job_id AND j.status <> 'pending' \
                 WHERE b.run_id IN (",
            );
            let mut list = query.separated(", ");
            for id in &ids {
                list.push_bind(*id);
            }
            query.push(") GROUP BY b.run_id, b.status");
            query.build_query_as().fetch_all(pool).await
        })?;
        let mut counts: HashMap<Uuid, (BatchCounts, RunCustomerCounts)> = HashMap::new();
        for c in counted {
            let status = BatchStatus::parse(&c.status).ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("a batch has unknown status {:?}", c.status))
            })?;
            let entry = counts.entry(c.run_id).or_default();
            entry.0.add(status, c.batches);
            let outcomes = c.ok.map(|ok| OutcomeCounts {
                ok,
                failed: c.failed.unwrap_or(0),
                unknown: c.unknown.unwrap_or(0),
                pending: 0,
            });
            entry.1.add(status, c.cids, outcomes);
        }
        rows.into_iter()
            .map(|r| {
                let id = r.run_id;
                r.into_stored(counts.get(&id))
            })
            .collect()
    }

    /// A run's batches, in order.
    pub async fn run_batches(&self, run_id: RunId) -> Result<Vec<Batch>> {
        type BatchRow = (i64, i64, String, Option<Uuid>, Option<DateTime<Utc>>);
        let rows: Vec<BatchRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT batch_index, cid_count, status, job_id, started_at FROM run_batches WHERE run_id = $1 ORDER BY batch_index")
            .bind(run_id.as_uuid()).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|(batch_index, cid_count, status, job_id, started_at)| {
                Ok(Batch {
                    batch_index,
                    cid_count,
                    status: BatchStatus::parse(&status).ok_or_else(|| {
                        Error::Internal(anyhow::anyhow!("a batch has unknown status {status:?}"))
                    })?,
                    job_id: job_id.map(JobId::from_uuid),
                    started_at,
                })
            })
            .collect()
    }

    /// Every customer of a run, in order, with its outcome (none for a CID
    /// whose batch was not sent) and its batch's job.
    pub async fn run_customers(&self, run_id: RunId) -> Result<Vec<RunCustomer>> {
        let batches: Vec<(String, Option<Uuid>, String)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT cids, job_id, status FROM run_batches WHERE run_id = $1 ORDER BY batch_index")
            .bind(run_id.as_uuid()).fetch_all(pool).await)?;
        let sent: Vec<(Uuid, String, String, Option<String>)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT c.job_id, c.cid, c.outcome, c.error FROM job_cids c JOIN run_batches b ON b.job_id = c.job_id \
             WHERE b.run_id = $1 ORDER BY b.batch_index, c.position")
            .bind(run_id.as_uuid()).fetch_all(pool).await)?;
        let mut by_job: HashMap<Uuid, Vec<(String, String, Option<String>)>> = HashMap::new();
        for (job, cid, outcome, error) in sent {
            by_job.entry(job).or_default().push((cid, outcome, error));
        }
        let mut customers = Vec::new();
        for (cids, job_id, status) in batches {
            let not_run = matches!(
                BatchStatus::parse(&status),
                Some(BatchStatus::Queued | BatchStatus::Cancelled) | None
            );
            match (job_id, not_run) {
                (Some(job), false) => {
                    for (cid, outcome, error) in by_job.remove(&job).unwrap_or_default() {
                        customers.push(RunCustomer {
                            cid,
                            outcome: Outcome::parse(&outcome),
                            error,
                            job_id: Some(JobId::from_uuid(job)),
                        });
                    }
                }
                _ => {
                    let list: Vec<String> =
                        serde_json::from_str(&cids).map_err(anyhow::Error::from)?;
                    customers.extend(list.into_iter().map(|cid| RunCustomer {
                        cid,
                        outcome: None,
                        error: None,
                        job_id: None,
                    }));
                }
            }
        }
        Ok(customers)
    }

    /// Scheduled runs whose time came become queued, once, whichever
    /// instance gets there. Returns how many.
    pub async fn promote_scheduled_runs(&self, now: DateTime<Utc>) -> Result<u64> {
        // Read first: every instance asks several times a second, and on
        // SQLite a write, even one changing nothing, waits for the writer.
        let due: i64 = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM runs WHERE status = 'scheduled' AND run_at <= $1")
            .bind(now).fetch_one(pool).await)?;
        if due == 0 {
            return Ok(0);
        }
        write_tx!(self, |tx| async move {
            let promoted = tx
                .fetch(
                    "UPDATE runs SET status = 'queued' WHERE status = 'scheduled' AND run_at <= $1 \
                     RETURNING run_id",
                    &args![now],
                )
                .await?;
            for row in &promoted {
                let run_id = RunId::from_uuid(row.get(0)?);
                status_changed(tx, run_id, "scheduled", None, now).await?;
            }
            Ok(promoted.len() as u64)
        })
    }

    /// The lowest queued batch of each active run, oldest run first.
    pub async fn startable_batches(&self, limit: u32) -> Result<Vec<Startable>> {
        #[derive(sqlx::FromRow)]
        struct StartableRow {
            run_id: Uuid,
            batch_index: i64,
            user_name: String,
            cluster: String,
            action: String,
            reason: Option<String>,
            cids: String,
            approved_by: Option<String>,
            approval_id: Option<Uuid>,
        }
        let rows: Vec<StartableRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT r.run_id, b.batch_index, r.user_name, r.cluster, r.action, r.reason, b.cids, \
             r.approved_by, r.approval_id \
             FROM runs r JOIN run_batches b ON b.run_id = r.run_id \
             WHERE r.status IN ('queued', 'running') AND b.status = 'queued' \
             AND b.batch_index = (SELECT MIN(q.batch_index) FROM run_batches q WHERE q.run_id = r.run_id AND q.status = 'queued') \
             ORDER BY r.created_at, r.run_id LIMIT $1")
            .bind(i64::from(limit)).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|r| {
                Ok(Startable {
                    run_id: RunId::from_uuid(r.run_id),
                    batch_index: r.batch_index,
                    user: r.user_name,
                    cluster: r.cluster,
                    action: r.action,
                    reason: r.reason,
                    cids: serde_json::from_str(&r.cids).map_err(anyhow::Error::from)?,
                    approval: r
                        .approval_id
                        .map(|id| (ApprovalId::from_uuid(id), r.approved_by.unwrap_or_default())),
                })
            })
            .collect()
    }

    /// Starts one batch in one write: the run must still be active, the
    /// batch still its lowest queued one, and the cluster under its limits
    /// (counted over every instance's batches in the store); then the
    /// batch's job is claimed (the per-customer lock may refuse it: the
    /// batch then waits) and the batch marked running.
    #[tracing::instrument(skip_all, fields(run_id = ?start.job.batch))]
    pub async fn start_batch(&self, start: &StartBatch) -> Result<StartOutcome> {
        let start = start.clone();
        write_tx!(self, |tx| async move {
            let Some((run_id, index)) = start.job.batch else {
                return Err(Error::Internal(anyhow::anyhow!(
                    "a batch job names no batch"
                )));
            };
            let run = run_id.as_uuid();
            if tx.backend() == Backend::Postgres {
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 3))",
                    &args![&start.job.cluster],
                )
                .await?;
            }
            let status = tx
                .fetch_optional(run_statements(tx.backend()).lock_run, &args![run])
                .await?
                .map(|row| row.get::<String>(0))
                .transpose()?;
            if !matches!(status.as_deref(), Some("queued" | "running")) {
                return Ok(StartOutcome::NotActive);
            }
            let lowest: Option<i64> = tx
                .fetch_optional(
                    "SELECT MIN(batch_index) FROM run_batches WHERE run_id = $1 AND status = 'queued'",
                    &args![run],
                )
                .await?
                .map(|row| row.get::<Option<i64>>(0))
                .transpose()?
                .flatten();
            if lowest != Some(index) {
                return Ok(StartOutcome::Gone);
            }
            let count = |row: Option<super::tx::Row>| -> Result<i64> {
                row.map_or(Ok(0), |r| r.get::<i64>(0))
            };
            let in_flight = count(
                tx.fetch_optional(
                    "SELECT COUNT(*) FROM run_batches WHERE cluster = $1 AND status = 'running'",
                    &args![&start.job.cluster],
                )
                .await?,
            )?;
            if in_flight >= i64::from(start.max_in_flight) {
                return Ok(StartOutcome::AtLimit);
            }
            let now = start.job.created_at;
            if let Some(per_second) = start.max_per_second {
                let recent = count(
                    tx.fetch_optional(
                        "SELECT COUNT(*) FROM run_batches WHERE cluster = $1 AND started_at > $2",
                        &args![&start.job.cluster, now - chrono::Duration::seconds(1)],
                    )
                    .await?,
                )?;
                if recent >= i64::from(per_second) {
                    return Ok(StartOutcome::AtLimit);
                }
            }
            if !claim(tx, &start.job).await? {
                return Err(Error::Internal(anyhow::anyhow!(
                    "the job of batch {index} of run {run_id} exists already"
                )));
            }
            tx.execute(
                "UPDATE run_batches SET status = 'running', job_id = $3, started_at = $4 \
                 WHERE run_id = $1 AND batch_index = $2",
                &args![run, index, start.job.job_id, now],
            )
            .await?;
            let started = tx.execute(
                "UPDATE runs SET status = 'running', started_at = $2 WHERE run_id = $1 AND status = 'queued'",
                &args![run, now],
            )
            .await?;
            if started == 1 {
                status_changed(tx, run_id, "queued", None, now).await?;
            }
            Ok(StartOutcome::Started)
        })
    }

    /// Pause, resume or cancel, as one transition from the statuses the
    /// command applies to; a cancel also cancels the unsent batches (it
    /// answers how many). Any other status is `409 invalid_state`.
    pub async fn command_run(
        &self,
        run_id: RunId,
        command: RunCommand,
        actor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let actor = actor.map(str::to_owned);
        write_tx!(self, |tx| async move {
            let (from, to) = command.transition();
            let run = run_id.as_uuid();
            let current = tx
                .fetch_optional(run_statements(tx.backend()).lock_run, &args![run])
                .await?
                .ok_or(Error::NotFound)?
                .get::<String>(0)?;
            let current = RunStatus::parse(&current).ok_or_else(|| {
                Error::Internal(anyhow::anyhow!(
                    "run {run_id} has unknown status {current:?}"
                ))
            })?;
            if !from.contains(&current) {
                return Err(Error::InvalidState {
                    status: current,
                    command: command.as_str(),
                });
            }
            // A resumed run that never started is queued again.
            let to = match (command, to) {
                (RunCommand::Resume, _) => {
                    let started = tx
                        .fetch_optional(
                            "SELECT started_at FROM runs WHERE run_id = $1",
                            &args![run],
                        )
                        .await?
                        .map(|r| r.get::<Option<DateTime<Utc>>>(0))
                        .transpose()?
                        .flatten();
                    if started.is_some() {
                        RunStatus::Running
                    } else {
                        RunStatus::Queued
                    }
                }
                (_, to) => to,
            };
            tx.execute(
                "UPDATE runs SET status = $2 WHERE run_id = $1",
                &args![run, to.as_str()],
            )
            .await?;
            if to != current {
                status_changed(tx, run_id, current.as_str(), actor.as_deref(), now).await?;
            }
            let mut cancelled = 0;
            if command == RunCommand::Cancel {
                cancelled = tx.execute(
                    "UPDATE run_batches SET status = 'cancelled' WHERE run_id = $1 AND status = 'queued'",
                    &args![run],
                )
                .await?;
            }
            close_run_if_done(tx, run_id, now).await?;
            Ok(cancelled)
        })
    }

    /// Runs scheduled, queued, running or paused (for the metrics).
    pub async fn count_active_runs(&self) -> Result<i64> {
        let n: i64 = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM runs WHERE status IN ('scheduled', 'queued', 'running', 'paused')").fetch_one(pool).await)?;
        Ok(n)
    }

    /// Batches in flight per cluster (for the metrics).
    pub async fn batches_in_flight(&self) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT cluster, COUNT(*) FROM run_batches WHERE status = 'running' GROUP BY cluster").fetch_all(pool).await)?;
        Ok(rows)
    }
}

/// A batch's job ended: the batch takes its status, and a run with nothing
/// left to send or wait for is over (`finished`, or a cancelled run gets
/// its end time).
pub(crate) async fn batch_finished(
    tx: &mut impl Tx,
    run_id: RunId,
    job_id: JobId,
    status: BatchStatus,
    now: DateTime<Utc>,
) -> Result<()> {
    // Two batches of one run ending at once on PostgreSQL would each see
    // the other still running and neither close the run (write skew under
    // READ COMMITTED): the run's row, locked first, orders them, as it
    // orders pause and cancel. SQLite's one writer already does.
    tx.fetch_optional(
        run_statements(tx.backend()).lock_run,
        &args![run_id.as_uuid()],
    )
    .await?;
    tx.execute(
        "UPDATE run_batches SET status = $2 WHERE job_id = $1",
        &args![job_id, status.as_str()],
    )
    .await?;
    close_run_if_done(tx, run_id, now).await?;
    Ok(())
}

/// Closes a run with nothing left to send or wait for; true when that made
/// it `finished` (its `run.status_changed` then written, from the status it
/// had before `previous`, or from the one it had here).
async fn close_run_if_done(tx: &mut impl Tx, run_id: RunId, now: DateTime<Utc>) -> Result<bool> {
    let run = run_id.as_uuid();
    let before = lock_run(tx, run_id).await?;
    let finished = tx.execute(
        "UPDATE runs SET status = 'finished', finished_at = $2 WHERE run_id = $1 \
         AND status IN ('running', 'paused') \
         AND NOT EXISTS (SELECT 1 FROM run_batches WHERE run_id = $1 AND status IN ('queued', 'running'))",
        &args![run, now],
    )
    .await?;
    tx.execute(
        "UPDATE runs SET finished_at = $2 WHERE run_id = $1 AND status = 'cancelled' AND finished_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM run_batches WHERE run_id = $1 AND status = 'running')",
        &args![run, now],
    )
    .await?;
    if finished == 1 {
        let previous = before.unwrap_or_default();
        status_changed(tx, run_id, &previous, None, now).await?;
    }
    Ok(finished == 1)
}
