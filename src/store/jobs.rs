//! Jobs: the claim that makes a request run once, its finalisation, the
//! replay counter, the seals of the audit chain, and the audit's queries.
//! The claim and the finalisation are written once, over the write seam
//! (`store::tx`), for both stores.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::events::NewEvent;
use super::tx::{args, write_tx, Backend, Tx};
use super::{with_pool, Db};
use crate::domain::approval::ApprovalId;
use crate::domain::event::EventType;
use crate::domain::job::{Job, JobId, JobStatus, Phases};
use crate::domain::outcome::{CustomerOutcome, HistoryEntry, Outcome, OutcomeCounts};
use crate::domain::query::{HistoryFilter, JobCursor, JobFilter};
use crate::domain::run::{BatchStatus, RunId};
use crate::error::{Error, Result};

const JOB_COLUMNS: &str = "job_id, user_name, cluster, action, action_code, cids, cid_count, status, \
     upstream_status, response_summary, error, created_at, finished_at, duration_ms, duplicate_of, reason, \
     payload_hash, response_status, response_body, confirm_duplicate, replay_count, last_replay_at, \
     sent_at, answered_at, finalized_at, audit_hash, imported, legacy_id, ok_count, failed_count, \
     unknown_count, retry_of, run_id, batch_index, approved_by, approval_id";

#[derive(sqlx::FromRow)]
struct JobRow {
    job_id: Uuid,
    user_name: String,
    cluster: String,
    action: String,
    action_code: i64,
    cids: String,
    cid_count: i64,
    status: String,
    upstream_status: Option<i64>,
    response_summary: Option<String>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
    duplicate_of: Option<Uuid>,
    reason: Option<String>,
    payload_hash: String,
    response_status: Option<i64>,
    response_body: Option<String>,
    confirm_duplicate: bool,
    replay_count: i64,
    last_replay_at: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    answered_at: Option<DateTime<Utc>>,
    finalized_at: Option<DateTime<Utc>>,
    audit_hash: Option<String>,
    imported: bool,
    legacy_id: Option<String>,
    ok_count: i64,
    failed_count: i64,
    unknown_count: i64,
    retry_of: Option<Uuid>,
    run_id: Option<Uuid>,
    batch_index: Option<i64>,
    approved_by: Option<String>,
    approval_id: Option<Uuid>,
}

/// A job with what the store keeps to answer replays.
#[derive(Clone, Debug)]
pub struct StoredJob {
    pub job: Job,
    pub payload_hash: String,
    /// The status and body first answered for this job, once it is final.
    pub response: Option<(u16, String)>,
}

impl TryFrom<JobRow> for StoredJob {
    type Error = Error;
    fn try_from(r: JobRow) -> Result<Self> {
        let status = JobStatus::parse(&r.status).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "job {} has unknown status {:?}",
                r.job_id,
                r.status
            ))
        })?;
        let cids: Vec<String> = serde_json::from_str(&r.cids).map_err(|e| {
            Error::Internal(anyhow::anyhow!("job {} has unreadable cids: {e}", r.job_id))
        })?;
        let response = match (r.response_status, r.response_body) {
            (Some(s), Some(b)) => Some((u16::try_from(s).unwrap_or(500), b)),
            _ => None,
        };
        Ok(StoredJob {
            job: Job {
                job_id: JobId::from_uuid(r.job_id),
                user: r.user_name,
                cluster: r.cluster,
                action: r.action,
                action_code: r.action_code,
                cids,
                cid_count: r.cid_count,
                status,
                upstream_status: r.upstream_status,
                response_summary: r.response_summary,
                error: r.error,
                created_at: r.created_at,
                finished_at: r.finished_at,
                duration_ms: r.duration_ms,
                duplicate_of: r.duplicate_of.map(JobId::from_uuid),
                reason: r.reason,
                confirm_duplicate: r.confirm_duplicate,
                replay_count: r.replay_count,
                last_replay_at: r.last_replay_at,
                phases: Phases {
                    claimed_at: Some(r.created_at),
                    sent_at: r.sent_at,
                    answered_at: r.answered_at,
                    finalized_at: r.finalized_at,
                },
                audit_hash: r.audit_hash,
                imported: r.imported,
                legacy_id: r.legacy_id,
                outcomes: if status == JobStatus::Pending {
                    OutcomeCounts::pending(r.cid_count)
                } else {
                    OutcomeCounts {
                        ok: r.ok_count,
                        failed: r.failed_count,
                        unknown: r.unknown_count,
                        pending: 0,
                    }
                },
                retry_of: r.retry_of.map(JobId::from_uuid),
                run_id: r.run_id.map(RunId::from_uuid),
                batch_index: r.batch_index,
                approved_by: r.approved_by,
                approval_id: r.approval_id.map(ApprovalId::from_uuid),
            },
            payload_hash: r.payload_hash,
            response,
        })
    }
}

/// A job about to be claimed. Owned, so it can wait in the SQLite writer's
/// queue.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub job_id: JobId,
    pub user: String,
    pub key: String,
    pub payload_hash: String,
    pub intent_hash: String,
    pub cluster: String,
    pub action: String,
    pub action_code: i64,
    pub cids: Vec<String>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the sweep may call the job interrupted if it is still pending:
    /// the creating instance's upstream timeout plus a grace.
    pub deadline_at: DateTime<Utc>,
    pub confirm_duplicate: bool,
    /// Refuse when a `pending`, `succeeded` or `partial` job of the same
    /// intent was created since this time (`None`: the guard is off or
    /// lifted).
    pub duplicate_guard_since: Option<DateTime<Utc>>,
    /// The job whose failed customers this one runs again.
    pub retry_of: Option<JobId>,
    /// The run and batch this job sends, for a batch of a run.
    pub batch: Option<(RunId, i64)>,
    /// The approval this job executes, and who approved it.
    pub approval: Option<(ApprovalId, String)>,
}

impl NewJob {
    /// The job as it stands once claimed: `pending`, every customer too.
    pub fn pending_job(&self) -> Job {
        Job {
            job_id: self.job_id,
            user: self.user.clone(),
            cluster: self.cluster.clone(),
            action: self.action.clone(),
            action_code: self.action_code,
            cid_count: self.cids.len() as i64,
            cids: self.cids.clone(),
            status: JobStatus::Pending,
            upstream_status: None,
            response_summary: None,
            error: None,
            created_at: self.created_at,
            finished_at: None,
            duration_ms: None,
            duplicate_of: None,
            reason: self.reason.clone(),
            confirm_duplicate: self.confirm_duplicate,
            replay_count: 0,
            last_replay_at: None,
            phases: Phases {
                claimed_at: Some(self.created_at),
                ..Phases::default()
            },
            audit_hash: None,
            imported: false,
            legacy_id: None,
            outcomes: OutcomeCounts::pending(self.cids.len() as i64),
            retry_of: self.retry_of,
            run_id: self.batch.map(|b| b.0),
            batch_index: self.batch.map(|b| b.1),
            approved_by: self.approval.as_ref().map(|a| a.1.clone()),
            approval_id: self.approval.as_ref().map(|a| a.0),
        }
    }
}

/// The result of claiming `(user, key)`. The recent-duplicate guard and the
/// per-customer lock refuse with their errors (`RecentDuplicate`,
/// `CidsBusy`), and a refused claim leaves nothing behind.
#[derive(Debug)]
pub enum Claim {
    /// The job was inserted as `pending`; this request runs it.
    Claimed,
    /// The key was taken: here is the job that holds it.
    Existing(Box<StoredJob>),
}

/// The final state of a job, what happened to each of its customers, and
/// the answer its request got.
#[derive(Clone, Debug)]
pub struct Finalisation {
    pub job: Job,
    /// In the order of the job's CIDs.
    pub customers: Vec<CustomerOutcome>,
    pub response_status: u16,
    pub response_body: String,
}

/// The last link of the audit chain: the sequence number and hash the next
/// seal continues from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTip {
    pub seq: i64,
    pub hash: String,
}

/// One job's place in the audit chain.
#[derive(Clone, Debug)]
pub struct Seal {
    pub job_id: JobId,
    pub seq: i64,
    pub hash: String,
}

impl Db {
    /// Inserts the job as `pending` under `(user, key)` in one transaction,
    /// or returns the job already holding that key. In the same transaction,
    /// for a new key: the recent-duplicate guard, then the per-customer lock.
    /// The database decides every one of these (unique constraints, and on
    /// PostgreSQL an advisory lock per intent); there is no in-memory lock.
    /// On SQLite the claim shares a transaction with whatever else is waiting
    /// for the writer (group commit) and returns once that is durable.
    #[tracing::instrument(skip_all, fields(job_id = %new.job_id))]
    pub async fn claim_job(&self, new: &NewJob) -> Result<Claim> {
        let owned = new.clone();
        let claimed = write_tx!(self, |tx| async move { claim(tx, &owned).await })?;
        if claimed {
            return Ok(Claim::Claimed);
        }
        // Read after the commit that made the holder visible.
        self.job_by_key(&new.user, &new.key)
            .await?
            .map(|held| Claim::Existing(Box::new(held)))
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("the job holding this key vanished")))
    }

    /// Counts a replayed request on the job it was answered from.
    #[tracing::instrument(skip_all, fields(job_id = %job_id))]
    pub async fn record_replay(&self, job_id: JobId, at: DateTime<Utc>) -> Result<()> {
        write_tx!(self, |tx| async move {
            tx.execute(RECORD_REPLAY_SQL, &args![job_id, at]).await?;
            Ok(())
        })
    }

    /// Records the final state of a `pending` job and the answer its request
    /// got (kept for replays), and releases its CIDs. False when the job was
    /// no longer pending (the sweep got there first): a job is finalised once.
    #[tracing::instrument(skip_all, fields(job_id = %done.job.job_id, status = done.job.status.as_str()))]
    pub async fn finalize_job(&self, done: &Finalisation) -> Result<bool> {
        let done = done.clone();
        write_tx!(self, |tx| async move { finalize(tx, &done).await })
    }

    /// The job a user's key names, if any.
    #[tracing::instrument(skip_all)]
    pub async fn job_by_key(&self, user: &str, key: &str) -> Result<Option<StoredJob>> {
        let sql =
            format!("SELECT {JOB_COLUMNS} FROM jobs WHERE user_name = $1 AND idempotency_key = $2");
        let row: Option<JobRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(user).bind(key).fetch_optional(pool).await)?;
        row.map(StoredJob::try_from).transpose()
    }

    #[tracing::instrument(skip_all, fields(job_id = %job_id))]
    pub async fn get_job(&self, job_id: JobId) -> Result<Option<StoredJob>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1");
        let row: Option<JobRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(job_id.as_uuid()).fetch_optional(pool).await)?;
        row.map(StoredJob::try_from).transpose()
    }

    /// True when the store holds any job or run: history a demo must not
    /// be mixed into.
    #[tracing::instrument(skip_all)]
    pub async fn holds_history(&self) -> Result<bool> {
        let n: i64 = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM jobs LIMIT 1) AS j) \
             + (SELECT COUNT(*) FROM (SELECT 1 FROM runs LIMIT 1) AS r)")
            .fetch_one(pool).await)?;
        Ok(n > 0)
    }

    /// Up to `limit` job ids from `lo` to `hi`, in order: the jobs whose id
    /// starts with a prefix (the primary key serves the range).
    pub async fn job_ids_between(&self, lo: Uuid, hi: Uuid, limit: u32) -> Result<Vec<JobId>> {
        let rows: Vec<(Uuid,)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT job_id FROM jobs WHERE job_id >= $1 AND job_id <= $2 ORDER BY job_id LIMIT $3")
            .bind(lo).bind(hi).bind(i64::from(limit)).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(id,)| JobId::from_uuid(id)).collect())
    }

    /// Jobs still `pending` whose deadline passed before `now`.
    #[tracing::instrument(skip_all)]
    pub async fn overdue_pending_jobs(&self, now: DateTime<Utc>) -> Result<Vec<StoredJob>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'pending' AND deadline_at < $1 ORDER BY deadline_at LIMIT 1000"
        );
        let rows: Vec<JobRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(now).fetch_all(pool).await)?;
        rows.into_iter().map(StoredJob::try_from).collect()
    }

    /// Up to `limit` jobs, newest first, after `cursor`.
    #[tracing::instrument(skip_all)]
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        cursor: Option<JobCursor>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let limit = i64::from(limit);
        let rows: Vec<JobRow> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
            push_job_filter(&mut query, filter);
            push_page(&mut query, cursor, limit);
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.into_iter()
            .map(|r| StoredJob::try_from(r).map(|s| s.job))
            .collect()
    }

    /// How the store would run `list_jobs`, one line per step: SQLite's
    /// `EXPLAIN QUERY PLAN`, or PostgreSQL's `EXPLAIN` with sequential scans
    /// priced out, so a line `Seq Scan` means no index could serve it. Lets a
    /// test keep every audit query off full scans.
    pub async fn explain_list_jobs(
        &self,
        filter: &JobFilter,
        cursor: Option<JobCursor>,
        limit: u32,
    ) -> Result<Vec<String>> {
        let limit = i64::from(limit);
        let select = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
        let lines = match self {
            Db::Sqlite(sqlite) => {
                let mut query = QueryBuilder::new(format!("EXPLAIN QUERY PLAN {select}"));
                push_job_filter(&mut query, filter);
                push_page(&mut query, cursor, limit);
                let rows: Vec<(i64, i64, i64, String)> =
                    query.build_query_as().fetch_all(&sqlite.pool).await?;
                rows.into_iter().map(|r| r.3).collect()
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SET LOCAL enable_seqscan = off")
                    .execute(&mut *tx)
                    .await?;
                let mut query = QueryBuilder::new(format!("EXPLAIN {select}"));
                push_job_filter(&mut query, filter);
                push_page(&mut query, cursor, limit);
                let rows: Vec<(String,)> = query.build_query_as().fetch_all(&mut *tx).await?;
                tx.rollback().await?;
                rows.into_iter().map(|r| r.0).collect()
            }
        };
        Ok(lines)
    }
}

/// `AND ...` for each filter that is set, its value bound.
pub(super) fn push_job_filter<'a, DB>(query: &mut QueryBuilder<'a, DB>, filter: &'a JobFilter)
where
    DB: sqlx::Database,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(v) = &filter.user {
        query.push(" AND user_name = ").push_bind(v.as_str());
    }
    if let Some(v) = &filter.action {
        query.push(" AND action = ").push_bind(v.as_str());
    }
    if let Some(v) = &filter.cluster {
        query.push(" AND cluster = ").push_bind(v.as_str());
    }
    if let Some(v) = filter.status {
        query.push(" AND status = ").push_bind(v.as_str());
    }
    if let Some(v) = &filter.cid {
        query
            .push(" AND job_id IN (SELECT job_id FROM job_cids WHERE cid = ")
            .push_bind(v.as_str())
            .push(")");
    }
    if let Some(v) = filter.since {
        query.push(" AND created_at >= ").push_bind(v);
    }
    if let Some(v) = filter.until {
        query.push(" AND created_at < ").push_bind(v);
    }
    match filter.retried {
        Some(true) => {
            query.push(" AND replay_count > 0");
        }
        Some(false) => {
            query.push(" AND replay_count = 0");
        }
        None => {}
    }
    if let Some(v) = &filter.reason {
        let escaped = v
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query
            .push(" AND LOWER(reason) LIKE ")
            .push_bind(format!("%{escaped}%"))
            .push(" ESCAPE '\\'");
    }
}

/// The cursor's condition and the newest-first order of one page.
fn push_page<'a, DB>(query: &mut QueryBuilder<'a, DB>, cursor: Option<JobCursor>, limit: i64)
where
    DB: sqlx::Database,
    DateTime<Utc>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(c) = cursor {
        // A row value, which both stores serve from the (.., created_at,
        // job_id) indexes as a range.
        query
            .push(" AND (created_at, job_id) < (")
            .push_bind(c.created_at)
            .push(", ")
            .push_bind(c.job_id)
            .push(")");
    }
    query
        .push(" ORDER BY created_at DESC, job_id DESC LIMIT ")
        .push_bind(limit);
}

const CLAIM_INSERT_SQL: &str = "INSERT INTO jobs (job_id, user_name, idempotency_key, payload_hash, \
     intent_hash, cluster, action, action_code, cids, cid_count, reason, status, created_at, deadline_at, \
     confirm_duplicate, retry_of, run_id, batch_index, approval_id, approved_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13, $14, $15, $16, $17, $18, $19) \
     ON CONFLICT (user_name, idempotency_key) DO NOTHING";
const RECENT_INTENT_SQL: &str =
    "SELECT job_id, user_name, created_at FROM jobs WHERE intent_hash = $1 \
     AND created_at >= $2 AND status IN ('pending', 'succeeded', 'partial') AND job_id <> $3 \
     ORDER BY created_at DESC LIMIT 1";
const FINALIZE_SQL: &str =
    "UPDATE jobs SET status = $2, upstream_status = $3, response_summary = $4, \
     error = $5, finished_at = $6, duration_ms = $7, response_status = $8, response_body = $9, \
     sent_at = $10, answered_at = $11, finalized_at = $12, ok_count = $13, failed_count = $14, \
     unknown_count = $15 WHERE job_id = $1 AND status = 'pending'";
/// Every customer of the job the same way (the common case: one statement).
const CUSTOMERS_ALIKE_SQL: &str = "UPDATE job_cids SET outcome = $2, error = $3 WHERE job_id = $1";
const RELEASE_CIDS_SQL: &str = "DELETE FROM busy_cids WHERE job_id = $1";
const RECORD_REPLAY_SQL: &str =
    "UPDATE jobs SET replay_count = replay_count + 1, last_replay_at = $2 WHERE job_id = $1";

/// The statements that read a JSON array of CIDs (`$n`), in each dialect.
struct CidStatements {
    /// `$1` job, `$2` the CIDs, `$3` the job's creation: one row per CID
    /// with its position, `pending`.
    insert_job_cids: &'static str,
    /// `$1` job, `$2` a JSON array of `[cid, outcome, error]`: each
    /// customer's outcome.
    customer_outcomes: &'static str,
    /// `$1` cluster, `$2` job, `$3` the CIDs: the per-customer lock; a CID
    /// another job holds is skipped, so fewer rows than CIDs means busy.
    lock_cids: &'static str,
    /// `$1` cluster, `$2` job, `$3` the CIDs: who holds the busy ones (the
    /// job, its user and creation time).
    busy_cids: &'static str,
}

const SQLITE_CIDS: CidStatements = CidStatements {
    insert_job_cids: "INSERT INTO job_cids (cid, job_id, position, created_at) \
        SELECT value, $1, key, $3 FROM json_each($2)",
    customer_outcomes: "UPDATE job_cids SET outcome = v.value ->> 1, error = v.value ->> 2 \
        FROM json_each($2) AS v WHERE job_cids.job_id = $1 AND job_cids.cid = v.value ->> 0",
    // `WHERE true` keeps SQLite from reading ON CONFLICT as a join clause.
    lock_cids: "INSERT INTO busy_cids (cluster, cid, job_id) SELECT $1, value, $2 FROM json_each($3) WHERE true \
        ON CONFLICT DO NOTHING",
    busy_cids: "SELECT b.cid, b.job_id, j.user_name, j.created_at FROM busy_cids b \
        JOIN jobs j ON j.job_id = b.job_id WHERE b.cluster = $1 AND b.job_id <> $2 \
        AND b.cid IN (SELECT value FROM json_each($3)) ORDER BY b.job_id, b.cid",
};

const POSTGRES_CIDS: CidStatements = CidStatements {
    insert_job_cids: "INSERT INTO job_cids (cid, job_id, position, created_at) \
        SELECT c.value, $1, c.n - 1, $3 FROM json_array_elements_text($2::json) WITH ORDINALITY AS c(value, n)",
    customer_outcomes: "UPDATE job_cids SET outcome = v.value ->> 1, error = v.value ->> 2 \
        FROM json_array_elements($2::json) AS v(value) WHERE job_cids.job_id = $1 AND job_cids.cid = v.value ->> 0",
    lock_cids: "INSERT INTO busy_cids (cluster, cid, job_id) \
        SELECT $1, c.value, $2 FROM json_array_elements_text($3::json) AS c(value) ON CONFLICT DO NOTHING",
    busy_cids: "SELECT b.cid, b.job_id, j.user_name, j.created_at FROM busy_cids b \
        JOIN jobs j ON j.job_id = b.job_id WHERE b.cluster = $1 AND b.job_id <> $2 \
        AND b.cid IN (SELECT json_array_elements_text($3::json)) ORDER BY b.job_id, b.cid",
};

fn cid_statements(backend: Backend) -> &'static CidStatements {
    match backend {
        Backend::Sqlite => &SQLITE_CIDS,
        Backend::Postgres => &POSTGRES_CIDS,
    }
}

/// The claim's reads and writes: the key, the recent-duplicate guard, the
/// per-customer lock, then the job's CID rows. True when the job was
/// inserted; false when another job holds the key (nothing was written).
pub(crate) async fn claim(tx: &mut impl Tx, new: &NewJob) -> Result<bool> {
    if tx.backend() == Backend::Postgres {
        // Two requests of the same intent under different keys must not both
        // pass the guard: serialise them (SQLite's single writer already does).
        // And the key, which a run may want too (one key space): the same
        // lock as `runs::lock_key`, in the same round trip.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), \
             pg_advisory_xact_lock(hashtextextended($2, 1))",
            &args![
                &new.intent_hash,
                super::runs::key_lock_name(&new.user, &new.key)
            ],
        )
        .await?;
    }
    let cids_json = serde_json::to_string(&new.cids).map_err(anyhow::Error::from)?;
    let inserted = tx
        .execute(
            CLAIM_INSERT_SQL,
            &args![
                new.job_id,
                &new.user,
                &new.key,
                &new.payload_hash,
                &new.intent_hash,
                &new.cluster,
                &new.action,
                new.action_code,
                cids_json.as_str(),
                new.cids.len() as i64,
                new.reason.as_deref(),
                new.created_at,
                new.deadline_at,
                new.confirm_duplicate,
                new.retry_of,
                new.batch.map(|b| b.0.as_uuid()),
                new.batch.map(|b| b.1),
                new.approval.as_ref().map(|a| a.0.as_uuid()),
                new.approval.as_ref().map(|a| a.1.as_str()),
            ],
        )
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    // Jobs and runs share one key space per user.
    if super::runs::key_names_a_run(tx, &new.user, &new.key).await? {
        return Err(Error::IdempotencyKeyReused);
    }
    if super::approvals::key_names_an_approval(tx, &new.user, &new.key).await? {
        return Err(Error::IdempotencyKeyReused);
    }
    if let Some(since) = new.duplicate_guard_since {
        if let Some(refusal) = recent_job(tx, &new.intent_hash, since, new.job_id).await? {
            return Err(refusal);
        }
        let awaiting =
            super::approvals::awaiting_duplicate(tx, &new.intent_hash, new.created_at, None);
        if let Some(refusal) = awaiting.await? {
            return Err(refusal);
        }
    }
    let sql = cid_statements(tx.backend());
    let lock_args = args![&new.cluster, new.job_id, cids_json.as_str()];
    let locked = tx.execute(sql.lock_cids, &lock_args).await?;
    if locked < new.cids.len() as u64 {
        let refusal = busy_refusal(tx, &new.cluster, new.job_id, &cids_json).await?;
        return Err(refusal.unwrap_or_else(|| Error::CidsBusy {
            job_id: new.job_id,
            busy: Vec::new(),
            user: new.user.clone(),
            created_at: new.created_at,
        }));
    }
    tx.execute(
        sql.insert_job_cids,
        &args![new.job_id, cids_json.as_str(), new.created_at],
    )
    .await?;
    super::events::append(tx, job_event(EventType::JobCreated, &new.pending_job())?).await?;
    Ok(true)
}

/// The per-customer lock's refusal for `cids_json` on `cluster`: the CIDs
/// another job than `except` holds, and the first holder's job, user and
/// time; `None` when none is held.
pub(crate) async fn busy_refusal(
    tx: &mut impl Tx,
    cluster: &str,
    except: JobId,
    cids_json: &str,
) -> Result<Option<Error>> {
    let rows = tx
        .fetch(
            cid_statements(tx.backend()).busy_cids,
            &args![cluster, except, cids_json],
        )
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let (job_id, user, created_at) = (first.get(1)?, first.get(2)?, first.get(3)?);
    let busy = rows
        .iter()
        .map(|row| row.get(0))
        .collect::<Result<Vec<String>>>()?;
    Ok(Some(Error::CidsBusy {
        job_id,
        busy,
        user,
        created_at,
    }))
}

/// The recent-duplicate guard's view of jobs: a `pending`, `succeeded` or
/// `partial` job of the same intent created since `since`, other than
/// `except`, as the refusal it makes.
pub(crate) async fn recent_job(
    tx: &mut impl Tx,
    intent_hash: &str,
    since: DateTime<Utc>,
    except: JobId,
) -> Result<Option<Error>> {
    let recent = tx
        .fetch_optional(RECENT_INTENT_SQL, &args![intent_hash, since, except])
        .await?;
    recent
        .map(|row| {
            Ok(Error::RecentDuplicate {
                holder: crate::error::Holder::Job(row.get(0)?),
                user: row.get(1)?,
                created_at: row.get(2)?,
            })
        })
        .transpose()
}

/// The event of a job's creation or finalisation: the job as it now is.
/// The sweep's `unknown` is the console's doing, so it names no actor.
fn job_event(event_type: EventType, job: &Job) -> Result<NewEvent> {
    let actor = (job.status != JobStatus::Unknown).then_some(job.user.as_str());
    let at = match event_type {
        EventType::JobCreated => job.created_at,
        _ => job
            .phases
            .finalized_at
            .or(job.finished_at)
            .unwrap_or_else(crate::time::now_millis),
    };
    Ok(NewEvent::new(
        event_type,
        actor,
        serde_json::json!({"job_id": job.job_id}),
        serde_json::to_value(job).map_err(anyhow::Error::from)?,
        at,
    ))
}

/// Records the outcome of a `pending` job and releases its CIDs; false when
/// it was no longer pending.
pub(crate) async fn finalize(tx: &mut impl Tx, done: &Finalisation) -> Result<bool> {
    let job = &done.job;
    let updated = tx
        .execute(
            FINALIZE_SQL,
            &args![
                job.job_id,
                job.status.as_str(),
                job.upstream_status,
                job.response_summary.as_deref(),
                job.error.as_deref(),
                job.finished_at,
                job.duration_ms,
                i64::from(done.response_status),
                done.response_body.as_str(),
                job.phases.sent_at,
                job.phases.answered_at,
                job.phases.finalized_at,
                job.outcomes.ok,
                job.outcomes.failed,
                job.outcomes.unknown,
            ],
        )
        .await?;
    if updated == 1 {
        record_customers(tx, job.job_id, &done.customers).await?;
        tx.execute(RELEASE_CIDS_SQL, &args![job.job_id]).await?;
        // A batch's run row before the chain's head, as every write takes
        // them (no deadlock on PostgreSQL); the job's event before its run's.
        if let Some(run_id) = job.run_id {
            super::runs::lock_run(tx, run_id).await?;
        }
        super::events::append(tx, job_event(EventType::JobFinalized, job)?).await?;
        if let (Some(run_id), Some(at)) = (job.run_id, job.phases.finalized_at) {
            super::runs::batch_finished(
                tx,
                run_id,
                job.job_id,
                BatchStatus::of_job(job.status),
                at,
            )
            .await?;
        }
        return Ok(true);
    }
    tx.execute(RELEASE_CIDS_SQL, &args![job.job_id]).await?;
    Ok(updated == 1)
}

/// Stores each customer's outcome: one statement when they all ended the
/// same way, else one statement over a JSON list of them.
async fn record_customers(
    tx: &mut impl Tx,
    job_id: JobId,
    customers: &[CustomerOutcome],
) -> Result<()> {
    let Some(first) = customers.first() else {
        return Ok(());
    };
    if customers
        .iter()
        .all(|c| c.outcome == first.outcome && c.error == first.error)
    {
        tx.execute(
            CUSTOMERS_ALIKE_SQL,
            &args![job_id, first.outcome.as_str(), first.error.as_deref()],
        )
        .await?;
        return Ok(());
    }
    let rows: Vec<(&str, &str, Option<&str>)> = customers
        .iter()
        .map(|c| (c.cid.as_str(), c.outcome.as_str(), c.error.as_deref()))
        .collect();
    let rows = serde_json::to_string(&rows).map_err(anyhow::Error::from)?;
    tx.execute(
        cid_statements(tx.backend()).customer_outcomes,
        &args![job_id, rows],
    )
    .await?;
    Ok(())
}

/// Serialises the writes that change many finalised jobs at once (the
/// sealer, duplicate marking, retention) so they never deadlock each other
/// on PostgreSQL; SQLite's single writer already does.
pub(crate) async fn lock_job_batches(tx: &mut impl Tx) -> Result<()> {
    if tx.backend() == Backend::Postgres {
        tx.execute("SELECT pg_advisory_xact_lock(7277001)", &[])
            .await?;
    }
    Ok(())
}

const LAST_SEAL_SQL: &str = "SELECT audit_seq, audit_hash FROM jobs WHERE audit_seq IS NOT NULL \
     ORDER BY audit_seq DESC LIMIT 1";
const ANCHOR_SQL: &str = "SELECT audit_seq, audit_hash FROM audit_anchor WHERE id = 1";

/// The chain's last link: the newest sealed job, else the anchor retention
/// left, else none (the chain starts at the genesis).
async fn chain_tip(tx: &mut impl Tx) -> Result<Option<ChainTip>> {
    for sql in [LAST_SEAL_SQL, ANCHOR_SQL] {
        if let Some(row) = tx.fetch_optional(sql, &[]).await? {
            return Ok(Some(ChainTip {
                seq: row.get(0)?,
                hash: row.get(1)?,
            }));
        }
    }
    Ok(None)
}

impl Db {
    /// The chain's tip and up to `limit` finalised, unsealed jobs in
    /// finalisation order: what the sealer hashes, outside any write.
    #[tracing::instrument(skip_all)]
    pub async fn seal_candidates(&self, limit: u32) -> Result<(Option<ChainTip>, Vec<Job>)> {
        let batch_sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE audit_hash IS NULL AND status <> 'pending' \
             ORDER BY finalized_at, job_id LIMIT $1"
        );
        type Link = Option<(i64, String)>;
        let (last, anchor, rows): (Link, Link, Vec<JobRow>) = with_pool!(self, pool => {
            let last = sqlx::query_as(LAST_SEAL_SQL).fetch_optional(pool).await?;
            let anchor = sqlx::query_as(ANCHOR_SQL).fetch_optional(pool).await?;
            let rows = sqlx::query_as(&batch_sql).bind(i64::from(limit)).fetch_all(pool).await?;
            Ok::<_, sqlx::Error>((last, anchor, rows))
        })?;
        let tip = last.or(anchor).map(|(seq, hash)| ChainTip { seq, hash });
        let jobs = rows
            .into_iter()
            .map(|r| StoredJob::try_from(r).map(|s| s.job))
            .collect::<Result<Vec<_>>>()?;
        Ok((tip, jobs))
    }

    /// Writes `seals`, which continue the chain from `tip`. Nothing is
    /// written, and 0 returned, when the chain moved since `tip` was read
    /// (another instance sealed first); the next round starts from there.
    #[tracing::instrument(skip_all, fields(seals = seals.len()))]
    pub async fn apply_seals(&self, tip: Option<ChainTip>, seals: Vec<Seal>) -> Result<u64> {
        if seals.is_empty() {
            return Ok(0);
        }
        write_tx!(self, |tx| async move {
            lock_job_batches(tx).await?;
            if chain_tip(tx).await? != tip {
                return Ok(0);
            }
            let links: Vec<serde_json::Value> = seals
                .iter()
                .map(|s| serde_json::json!({"job_id": s.job_id, "seq": s.seq, "hash": s.hash}))
                .collect();
            let links = serde_json::to_string(&links).map_err(anyhow::Error::from)?;
            let sql = match tx.backend() {
                Backend::Sqlite => {
                    "UPDATE jobs SET audit_seq = v.seq, audit_hash = v.hash FROM \
                     (SELECT unhex(replace(value ->> 'job_id', '-', '')) AS job_id, value ->> 'seq' AS seq, \
                     value ->> 'hash' AS hash FROM json_each($1)) AS v \
                     WHERE jobs.job_id = v.job_id AND jobs.audit_hash IS NULL"
                }
                Backend::Postgres => {
                    "UPDATE jobs SET audit_seq = v.seq, audit_hash = v.hash \
                     FROM json_to_recordset($1::json) AS v(job_id uuid, seq bigint, hash text) \
                     WHERE jobs.job_id = v.job_id AND jobs.audit_hash IS NULL"
                }
            };
            let sealed = tx.execute(sql, &args![links]).await?;
            if sealed != seals.len() as u64 {
                return Err(Error::Internal(anyhow::anyhow!(
                    "{} of {} jobs to seal changed while they were sealed",
                    seals.len() as u64 - sealed,
                    seals.len()
                )));
            }
            Ok(sealed)
        })
    }

    /// Where the verified chain starts: the anchor retention left, if any,
    /// with how many jobs it removed.
    #[tracing::instrument(skip_all)]
    pub async fn chain_anchor(&self) -> Result<Option<(ChainTip, i64)>> {
        let row: Option<(i64, String, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT audit_seq, audit_hash, removed FROM audit_anchor WHERE id = 1").fetch_optional(pool).await)?;
        Ok(row.map(|(seq, hash, removed)| (ChainTip { seq, hash }, removed)))
    }

    /// Sealed jobs in chain order after `seq`, with their sequence numbers.
    #[tracing::instrument(skip_all)]
    pub async fn sealed_jobs_after(&self, seq: i64, limit: u32) -> Result<Vec<(i64, Job)>> {
        let sql = format!(
            "SELECT audit_seq, {JOB_COLUMNS} FROM jobs WHERE audit_seq > $1 ORDER BY audit_seq LIMIT $2"
        );
        let rows: Vec<SealedRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(seq).bind(i64::from(limit)).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|r| StoredJob::try_from(r.job).map(|s| (r.audit_seq, s.job)))
            .collect()
    }
}

#[derive(sqlx::FromRow)]
struct SealedRow {
    audit_seq: i64,
    #[sqlx(flatten)]
    job: JobRow,
}

#[derive(sqlx::FromRow)]
struct CustomerRow {
    cid: String,
    outcome: String,
    error: Option<String>,
}

impl TryFrom<CustomerRow> for CustomerOutcome {
    type Error = Error;
    fn try_from(r: CustomerRow) -> Result<Self> {
        let outcome = Outcome::parse(&r.outcome).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "customer {:?} has unknown outcome {:?}",
                r.cid,
                r.outcome
            ))
        })?;
        Ok(CustomerOutcome {
            cid: r.cid,
            outcome,
            error: r.error,
        })
    }
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    job_id: Uuid,
    created_at: DateTime<Utc>,
    user_name: String,
    cluster: String,
    action: String,
    action_code: i64,
    status: String,
    outcome: String,
    error: Option<String>,
}

impl TryFrom<HistoryRow> for HistoryEntry {
    type Error = Error;
    fn try_from(r: HistoryRow) -> Result<Self> {
        let unreadable = |what: &str, value: &str| {
            Error::Internal(anyhow::anyhow!(
                "job {} has unknown {what} {value:?}",
                r.job_id
            ))
        };
        Ok(HistoryEntry {
            job_id: JobId::from_uuid(r.job_id),
            created_at: r.created_at,
            job_status: JobStatus::parse(&r.status)
                .ok_or_else(|| unreadable("status", &r.status))?,
            outcome: Outcome::parse(&r.outcome).ok_or_else(|| unreadable("outcome", &r.outcome))?,
            user: r.user_name,
            cluster: r.cluster,
            action: r.action,
            action_code: r.action_code,
            error: r.error,
        })
    }
}

impl Db {
    /// A job's customers in the order of its request, optionally only those
    /// with one outcome.
    #[tracing::instrument(skip_all, fields(job_id = %job_id))]
    pub async fn job_customers(
        &self,
        job_id: JobId,
        outcome: Option<Outcome>,
    ) -> Result<Vec<CustomerOutcome>> {
        let rows: Vec<CustomerRow> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new("SELECT cid, outcome, error FROM job_cids WHERE job_id = ");
            query.push_bind(job_id.as_uuid());
            if let Some(outcome) = outcome {
                query.push(" AND outcome = ").push_bind(outcome.as_str());
            }
            query.push(" ORDER BY position");
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.into_iter().map(CustomerOutcome::try_from).collect()
    }

    /// Up to `limit` jobs that touched `cid`, newest first, after `cursor`,
    /// with what each did to it: one range of `job_cids_history`.
    #[tracing::instrument(skip_all)]
    pub async fn customer_history(
        &self,
        cid: &str,
        filter: &HistoryFilter,
        cursor: Option<JobCursor>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        let limit = i64::from(limit);
        let rows: Vec<HistoryRow> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new(
                "SELECT c.job_id, c.created_at, j.user_name, j.cluster, j.action, j.action_code, j.status, \
                 c.outcome, c.error FROM job_cids c JOIN jobs j ON j.job_id = c.job_id WHERE c.cid = ",
            );
            query.push_bind(cid);
            if let Some(v) = &filter.user {
                query.push(" AND j.user_name = ").push_bind(v.as_str());
            }
            if let Some(v) = &filter.cluster {
                query.push(" AND j.cluster = ").push_bind(v.as_str());
            }
            if let Some(v) = &filter.action {
                query.push(" AND j.action = ").push_bind(v.as_str());
            }
            if let Some(v) = filter.outcome {
                query.push(" AND c.outcome = ").push_bind(v.as_str());
            }
            if let Some(v) = filter.since {
                query.push(" AND c.created_at >= ").push_bind(v);
            }
            if let Some(v) = filter.until {
                query.push(" AND c.created_at < ").push_bind(v);
            }
            if let Some(c) = cursor {
                query
                    .push(" AND (c.created_at, c.job_id) < (")
                    .push_bind(c.created_at)
                    .push(", ")
                    .push_bind(c.job_id)
                    .push(")");
            }
            query
                .push(" ORDER BY c.created_at DESC, c.job_id DESC LIMIT ")
                .push_bind(limit);
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.into_iter().map(HistoryEntry::try_from).collect()
    }

    /// The jobs that retried `job_id`, oldest first.
    #[tracing::instrument(skip_all, fields(job_id = %job_id))]
    pub async fn retries_of(&self, job_id: JobId) -> Result<Vec<Job>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE retry_of = $1 ORDER BY created_at, job_id"
        );
        let rows: Vec<JobRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(job_id.as_uuid()).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|r| StoredJob::try_from(r).map(|s| s.job))
            .collect()
    }
}

impl Db {
    /// The customers of each of `jobs`, in request order, in one query.
    #[tracing::instrument(skip_all)]
    pub async fn customers_of(
        &self,
        jobs: impl IntoIterator<Item = JobId>,
    ) -> Result<std::collections::HashMap<JobId, Vec<CustomerOutcome>>> {
        let ids: Vec<Uuid> = jobs.into_iter().map(|j| j.as_uuid()).collect();
        let mut by_job: std::collections::HashMap<JobId, Vec<CustomerOutcome>> =
            std::collections::HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(by_job);
        }
        #[derive(sqlx::FromRow)]
        struct Row {
            job_id: Uuid,
            #[sqlx(flatten)]
            customer: CustomerRow,
        }
        let rows: Vec<Row> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new("SELECT job_id, cid, outcome, error FROM job_cids WHERE job_id IN (");
            let mut list = query.separated(", ");
            for id in &ids {
                list.push_bind(*id);
            }
            query.push(") ORDER BY job_id, position");
            query.build_query_as().fetch_all(pool).await
        })?;
        for row in rows {
            by_job
                .entry(JobId::from_uuid(row.job_id))
                .or_default()
                .push(CustomerOutcome::try_from(row.customer)?);
        }
        Ok(by_job)
    }
}
