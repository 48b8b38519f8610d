//! Jobs: the claim that makes a request run once, its finalisation, and the
//! audit's queries.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{bind_args, with_pool, write_tx, Arg, Db};
use crate::domain::job::{Job, JobId, JobStatus, Phases};
use crate::error::{Error, Result};

const JOB_COLUMNS: &str = "job_id, user_name, cluster, action, action_code, cids, cid_count, status, \
     upstream_status, response_summary, error, created_at, finished_at, duration_ms, duplicate_of, reason, \
     payload_hash, response_status, response_body, confirm_duplicate, replay_count, last_replay_at, \
     sent_at, answered_at, finalized_at, audit_hash, imported, legacy_id";

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
    pub confirm_duplicate: bool,
    /// Refuse when a `pending` or `succeeded` job of the same intent was
    /// created since this time (`None`: the guard is off or lifted).
    pub duplicate_guard_since: Option<DateTime<Utc>>,
}

/// The result of claiming `(user, key)`.
#[derive(Debug)]
pub enum Claim {
    /// The job was inserted as `pending`; this request runs it.
    Claimed,
    /// The key was taken: here is the job that holds it.
    Existing(Box<StoredJob>),
    /// The same intent ran recently (the recent-duplicate guard).
    RecentDuplicate {
        job_id: JobId,
        user: String,
        created_at: DateTime<Utc>,
    },
    /// Some CIDs are in a `pending` job of the same cluster.
    CidsBusy { job_id: JobId, busy: Vec<String> },
}

/// What a claim decided inside its transaction: committed (`Claimed`,
/// `KeyTaken`) or rolled back (`Refused`). The job holding a taken key is
/// read after the commit, the same way on both stores.
#[derive(Debug)]
pub enum ClaimDecision {
    /// Inserted as `pending`: this request runs it.
    Claimed,
    /// The key was taken by another job.
    KeyTaken,
    /// The recent-duplicate guard or the per-customer lock refused it.
    Refused(Claim),
}

/// The final state of a job and the answer its request got.
#[derive(Clone, Debug)]
pub struct Finalisation {
    pub job: Job,
    pub response_status: u16,
    pub response_body: String,
}

/// Filters of the audit; every one optional.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub user: Option<String>,
    pub action: Option<String>,
    pub cluster: Option<String>,
    pub status: Option<JobStatus>,
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

/// A position in the newest-first order: the last job of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobCursor {
    pub created_at: DateTime<Utc>,
    pub job_id: Uuid,
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
        let decision = match self {
            Db::Sqlite(sqlite) => sqlite.writer.claim(new.clone()).await?,
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // Two requests of the same intent under different keys must not
                // both pass the guard: serialise them (SQLite's single writer
                // already does).
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(&new.intent_hash)
                    .execute(&mut *tx)
                    .await?;
                let decision = claim_on_postgres(&mut tx, new).await?;
                if let ClaimDecision::Refused(_) = decision {
                    tx.rollback().await?;
                } else {
                    tx.commit().await?;
                }
                decision
            }
        };
        match decision {
            ClaimDecision::Claimed => Ok(Claim::Claimed),
            // Read after the commit that made the holder visible.
            ClaimDecision::KeyTaken => self
                .job_by_key(&new.user, &new.key)
                .await?
                .map(|held| Claim::Existing(Box::new(held)))
                .ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("the job holding this key vanished"))
                }),
            ClaimDecision::Refused(claim) => Ok(claim),
        }
    }

    /// Counts a replayed request on the job it was answered from.
    #[tracing::instrument(skip_all, fields(job_id = %job_id))]
    pub async fn record_replay(&self, job_id: JobId, at: DateTime<Utc>) -> Result<()> {
        match self {
            Db::Sqlite(sqlite) => sqlite.writer.record_replay(job_id, at).await,
            Db::Postgres(pool) => {
                sqlx::query(RECORD_REPLAY_SQL)
                    .bind(job_id.as_uuid())
                    .bind(at)
                    .execute(pool)
                    .await?;
                Ok(())
            }
        }
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

    /// Records the final state of a `pending` job and the answer its request
    /// got (kept for replays), and releases its CIDs. False when the job was
    /// no longer pending (the sweep got there first): a job is finalised once.
    #[tracing::instrument(skip_all, fields(job_id = %done.job.job_id, status = done.job.status.as_str()))]
    pub async fn finalize_job(&self, done: &Finalisation) -> Result<bool> {
        match self {
            Db::Sqlite(sqlite) => sqlite.writer.finalize(done.clone()).await,
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let finalised = finalize_on_postgres(&mut tx, done).await?;
                tx.commit().await?;
                Ok(finalised)
            }
        }
    }

    /// Jobs still `pending` that were created before `cutoff`.
    #[tracing::instrument(skip_all)]
    pub async fn stale_pending_jobs(&self, cutoff: DateTime<Utc>) -> Result<Vec<StoredJob>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'pending' AND created_at < $1 ORDER BY created_at LIMIT 1000"
        );
        let rows: Vec<JobRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(cutoff).fetch_all(pool).await)?;
        rows.into_iter().map(StoredJob::try_from).collect()
    }

    /// One page of jobs, newest first, after `cursor`.
    #[tracing::instrument(skip_all)]
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        cursor: Option<JobCursor>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let (sql, args) = list_jobs_sql(filter, cursor, limit);
        let rows: Vec<JobRow> = with_pool!(self, pool => bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await)?;
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
        let (sql, args) = list_jobs_sql(filter, cursor, limit);
        let lines = match self {
            Db::Sqlite(sqlite) => {
                let explain = format!("EXPLAIN QUERY PLAN {sql}");
                let rows: Vec<(i64, i64, i64, String)> =
                    bind_args!(sqlx::query_as(&explain), &args)
                        .fetch_all(&sqlite.pool)
                        .await?;
                rows.into_iter().map(|r| r.3).collect()
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SET LOCAL enable_seqscan = off")
                    .execute(&mut *tx)
                    .await?;
                let explain = format!("EXPLAIN {sql}");
                let rows: Vec<(String,)> = bind_args!(sqlx::query_as(&explain), &args)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.rollback().await?;
                rows.into_iter().map(|r| r.0).collect()
            }
        };
        Ok(lines)
    }
}

/// The query of one audit page: filters, then the cursor, newest first.
fn list_jobs_sql(filter: &JobFilter, cursor: Option<JobCursor>, limit: u32) -> (String, Vec<Arg>) {
    let (mut sql, mut args) = filtered_jobs_sql(filter);
    if let Some(c) = cursor {
        args.push(Arg::Time(c.created_at));
        let t = args.len();
        args.push(Arg::Uuid(c.job_id));
        let id = args.len();
        sql.push_str(&format!(
            " AND (created_at < ${t} OR (created_at = ${t} AND job_id < ${id}))"
        ));
    }
    args.push(Arg::Int(i64::from(limit)));
    sql.push_str(&format!(
        " ORDER BY created_at DESC, job_id DESC LIMIT ${}",
        args.len()
    ));
    (sql, args)
}

/// The hot path's SQL, shared by PostgreSQL's steps below and SQLite's
/// group-commit writer (`store::writer`), which runs the same statements
/// through its own connection.
pub(super) const CLAIM_INSERT_SQL: &str = "INSERT INTO jobs (job_id, user_name, idempotency_key, payload_hash, \
     intent_hash, cluster, action, action_code, cids, cid_count, reason, status, created_at, confirm_duplicate) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13) \
     ON CONFLICT (user_name, idempotency_key) DO NOTHING";
pub(super) const RECENT_INTENT_SQL: &str = "SELECT job_id, user_name, created_at FROM jobs WHERE intent_hash = $1 \
     AND created_at >= $2 AND status IN ('pending', 'succeeded') AND job_id <> $3 ORDER BY created_at DESC LIMIT 1";
pub(super) const FINALIZE_SQL: &str =
    "UPDATE jobs SET status = $2, upstream_status = $3, response_summary = $4, \
     error = $5, finished_at = $6, duration_ms = $7, response_status = $8, response_body = $9, \
     sent_at = $10, answered_at = $11, finalized_at = $12 WHERE job_id = $1 AND status = 'pending'";
pub(super) const RELEASE_CIDS_SQL: &str = "DELETE FROM busy_cids WHERE job_id = $1";
pub(super) const RECORD_REPLAY_SQL: &str =
    "UPDATE jobs SET replay_count = replay_count + 1, last_replay_at = $2 WHERE job_id = $1";

/// The claim's reads and writes on PostgreSQL, in the transaction
/// `Db::claim_job` owns; SQLite's writer runs the same steps.
async fn claim_on_postgres(
    conn: &mut sqlx::PgConnection,
    new: &NewJob,
) -> std::result::Result<ClaimDecision, sqlx::Error> {
    let cids_json = serde_json::to_string(&new.cids).map_err(|e| sqlx::Error::Encode(e.into()))?;
    let job_uuid = new.job_id.as_uuid();
    let inserted = sqlx::query(CLAIM_INSERT_SQL)
        .bind(job_uuid)
        .bind(&new.user)
        .bind(&new.key)
        .bind(&new.payload_hash)
        .bind(&new.intent_hash)
        .bind(&new.cluster)
        .bind(&new.action)
        .bind(new.action_code)
        .bind(&cids_json)
        .bind(new.cids.len() as i64)
        .bind(new.reason.as_deref())
        .bind(new.created_at)
        .bind(new.confirm_duplicate)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if inserted == 0 {
        return Ok(ClaimDecision::KeyTaken);
    }
    if let Some(since) = new.duplicate_guard_since {
        let recent: Option<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(RECENT_INTENT_SQL)
            .bind(&new.intent_hash)
            .bind(since)
            .bind(job_uuid)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some((job_id, user, created_at)) = recent {
            return Ok(ClaimDecision::Refused(Claim::RecentDuplicate {
                job_id: JobId::from_uuid(job_id),
                user,
                created_at,
            }));
        }
    }
    let (busy_sql, busy_args) = busy_cids_insert(&new.cluster, job_uuid, &new.cids);
    let locked = bind_args!(sqlx::query(&busy_sql), &busy_args)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if locked < new.cids.len() as u64 {
        let (lookup_sql, lookup_args) = busy_cids_lookup(&new.cluster, job_uuid, &new.cids);
        let rows: Vec<(String, Uuid)> = bind_args!(sqlx::query_as(&lookup_sql), &lookup_args)
            .fetch_all(&mut *conn)
            .await?;
        let job_id = rows
            .first()
            .map(|r| JobId::from_uuid(r.1))
            .unwrap_or(new.job_id);
        let busy = rows.into_iter().map(|r| r.0).collect();
        return Ok(ClaimDecision::Refused(Claim::CidsBusy { job_id, busy }));
    }
    let (cid_sql, cid_args) = job_cids_insert(job_uuid, &new.cids);
    bind_args!(sqlx::query(&cid_sql), &cid_args)
        .execute(&mut *conn)
        .await?;
    Ok(ClaimDecision::Claimed)
}

/// The finalisation's writes on PostgreSQL (see `Db::finalize_job`).
async fn finalize_on_postgres(
    conn: &mut sqlx::PgConnection,
    done: &Finalisation,
) -> std::result::Result<bool, sqlx::Error> {
    let job = &done.job;
    let updated = sqlx::query(FINALIZE_SQL)
        .bind(job.job_id.as_uuid())
        .bind(job.status.as_str())
        .bind(job.upstream_status)
        .bind(job.response_summary.as_deref())
        .bind(job.error.as_deref())
        .bind(job.finished_at)
        .bind(job.duration_ms)
        .bind(i64::from(done.response_status))
        .bind(&done.response_body)
        .bind(job.phases.sent_at)
        .bind(job.phases.answered_at)
        .bind(job.phases.finalized_at)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query(RELEASE_CIDS_SQL)
        .bind(job.job_id.as_uuid())
        .execute(&mut *conn)
        .await?;
    Ok(updated == 1)
}

/// `SELECT ... WHERE <filters>` with its bind values, shared by every
/// listing of jobs.
pub(super) fn filtered_jobs_sql(filter: &JobFilter) -> (String, Vec<Arg>) {
    let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
    let mut args = Vec::new();
    let mut push = |sql: &mut String, clause: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&clause.replace("$?", &format!("${}", args.len())));
    };
    if let Some(v) = &filter.user {
        push(&mut sql, " AND user_name = $?", Arg::Text(v.clone()));
    }
    if let Some(v) = &filter.action {
        push(&mut sql, " AND action = $?", Arg::Text(v.clone()));
    }
    if let Some(v) = &filter.cluster {
        push(&mut sql, " AND cluster = $?", Arg::Text(v.clone()));
    }
    if let Some(v) = filter.status {
        push(&mut sql, " AND status = $?", Arg::Text(v.as_str().into()));
    }
    if let Some(v) = &filter.cid {
        push(
            &mut sql,
            " AND job_id IN (SELECT job_id FROM job_cids WHERE cid = $?)",
            Arg::Text(v.clone()),
        );
    }
    if let Some(v) = filter.since {
        push(&mut sql, " AND created_at >= $?", Arg::Time(v));
    }
    if let Some(v) = filter.until {
        push(&mut sql, " AND created_at < $?", Arg::Time(v));
    }
    match filter.retried {
        Some(true) => sql.push_str(" AND replay_count > 0"),
        Some(false) => sql.push_str(" AND replay_count = 0"),
        None => {}
    }
    if let Some(v) = &filter.reason {
        let escaped = v
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        push(
            &mut sql,
            " AND LOWER(reason) LIKE $? ESCAPE '\\'",
            Arg::Text(format!("%{escaped}%")),
        );
    }
    (sql, args)
}

/// Takes the per-customer lock on each CID; conflicting rows are skipped,
/// so fewer rows than CIDs means some were busy.
pub(super) fn busy_cids_insert(cluster: &str, job_id: Uuid, cids: &[String]) -> (String, Vec<Arg>) {
    let mut args = vec![Arg::Text(cluster.to_owned()), Arg::Uuid(job_id)];
    let rows: Vec<String> = cids
        .iter()
        .map(|cid| {
            args.push(Arg::Text(cid.clone()));
            format!("($1, ${}, $2)", args.len())
        })
        .collect();
    let sql = format!(
        "INSERT INTO busy_cids (cluster, cid, job_id) VALUES {} ON CONFLICT DO NOTHING",
        rows.join(", ")
    );
    (sql, args)
}

/// The CIDs of the request held by another pending job, with that job.
pub(super) fn busy_cids_lookup(cluster: &str, job_id: Uuid, cids: &[String]) -> (String, Vec<Arg>) {
    let mut args = vec![Arg::Text(cluster.to_owned()), Arg::Uuid(job_id)];
    let params: Vec<String> = cids
        .iter()
        .map(|cid| {
            args.push(Arg::Text(cid.clone()));
            format!("${}", args.len())
        })
        .collect();
    let sql = format!(
        "SELECT cid, job_id FROM busy_cids WHERE cluster = $1 AND job_id <> $2 AND cid IN ({}) ORDER BY job_id, cid",
        params.join(", ")
    );
    (sql, args)
}

/// One multi-row insert of a job's CIDs with their positions.
pub(super) fn job_cids_insert(job_id: Uuid, cids: &[String]) -> (String, Vec<Arg>) {
    let mut args = Vec::with_capacity(cids.len() * 2 + 1);
    args.push(Arg::Uuid(job_id));
    let rows: Vec<String> = cids
        .iter()
        .enumerate()
        .map(|(position, cid)| {
            args.push(Arg::Text(cid.clone()));
            args.push(Arg::Int(position as i64));
            format!("(${}, $1, ${})", args.len() - 1, args.len())
        })
        .collect();
    (
        format!(
            "INSERT INTO job_cids (cid, job_id, position) VALUES {}",
            rows.join(", ")
        ),
        args,
    )
}

impl Db {
    /// Seals up to `limit` finalised jobs in finalisation order, in one
    /// transaction that only one sealer at a time can hold (SQLite's write
    /// lock; an advisory lock on PostgreSQL). Returns how many were sealed.
    #[tracing::instrument(skip_all)]
    pub async fn seal_batch(&self, limit: u32, hash: impl Fn(&str, &Job) -> String) -> Result<u64> {
        let last_sql = "SELECT audit_seq, audit_hash FROM jobs WHERE audit_seq IS NOT NULL ORDER BY audit_seq DESC LIMIT 1";
        let batch_sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE audit_hash IS NULL AND status <> 'pending' \
             ORDER BY finalized_at, job_id LIMIT $1"
        );
        let sealed = with_pool!(self, pool => {
            let mut tx = write_tx!(pool)?;
            super::lock_job_batches!(self, tx);
            let last: Option<(i64, String)> = sqlx::query_as(last_sql).fetch_optional(&mut *tx).await?;
            let (mut seq, mut previous) = last.unwrap_or((0, crate::seal::GENESIS.to_owned()));
            let rows: Vec<JobRow> = sqlx::query_as(&batch_sql).bind(i64::from(limit)).fetch_all(&mut *tx).await?;
            let mut links = Vec::with_capacity(rows.len());
            for row in rows {
                let stored = StoredJob::try_from(row)?;
                seq += 1;
                let audit_hash = hash(&previous, &stored.job);
                previous = audit_hash.clone();
                links.push((stored.job.job_id.as_uuid(), seq, audit_hash));
            }
            // Many links per statement: one statement per job held the write
            // lock long enough to slow Set Actions down.
            for chunk in links.chunks(SEAL_LINKS_PER_STATEMENT) {
                let (sql, args) = seal_update(chunk);
                bind_args!(sqlx::query(&sql), &args).execute(&mut *tx).await?;
            }
            let sealed = links.len() as u64;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(sealed)
        })?;
        Ok(sealed)
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

/// Links of the audit chain written by one statement.
const SEAL_LINKS_PER_STATEMENT: usize = 100;

/// One `UPDATE ... FROM (VALUES ...)` setting `audit_seq` and `audit_hash`
/// of each `(job, seq, hash)`; both stores name the values' columns
/// `column1`, `column2`, ...
fn seal_update(links: &[(Uuid, i64, String)]) -> (String, Vec<Arg>) {
    let mut args = Vec::with_capacity(links.len() * 3);
    let rows: Vec<String> = links
        .iter()
        .map(|(job_id, seq, hash)| {
            args.push(Arg::Uuid(*job_id));
            args.push(Arg::Int(*seq));
            args.push(Arg::Text(hash.clone()));
            let n = args.len();
            format!("(${}, ${}, ${})", n - 2, n - 1, n)
        })
        .collect();
    let sql = format!(
        "UPDATE jobs SET audit_seq = v.column2, audit_hash = v.column3 FROM (VALUES {}) AS v \
         WHERE jobs.job_id = v.column1 AND jobs.audit_hash IS NULL",
        rows.join(", ")
    );
    (sql, args)
}

#[derive(sqlx::FromRow)]
struct SealedRow {
    audit_seq: i64,
    #[sqlx(flatten)]
    job: JobRow,
}
