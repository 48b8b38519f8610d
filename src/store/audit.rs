//! The audit's queries: the ordered scan the duplicate audit reads page by
//! page, the marking of duplicates, the insert of imported jobs, and the
//! retention purge (the only statement that deletes jobs).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::jobs::job_cids_insert;
use super::{bind_args, with_pool, write_tx, Arg, Db};
use crate::domain::job::JobId;
use crate::error::Result;

/// One job as the duplicate scan reads it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ScanRow {
    pub job_id: Uuid,
    pub user_name: String,
    pub cluster: String,
    pub action: String,
    pub intent_hash: String,
    pub cid_count: i64,
    pub created_at: DateTime<Utc>,
    pub duplicate_of: Option<Uuid>,
}

impl ScanRow {
    /// Where the next page starts: after this row.
    pub fn key(&self) -> ScanKey {
        ScanKey {
            user_name: self.user_name.clone(),
            cluster: self.cluster.clone(),
            action: self.action.clone(),
            intent_hash: self.intent_hash.clone(),
            created_at: self.created_at,
            job_id: self.job_id,
        }
    }
}

/// A position in the scan order (user, cluster, action, intent, time, id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanKey {
    pub user_name: String,
    pub cluster: String,
    pub action: String,
    pub intent_hash: String,
    pub created_at: DateTime<Utc>,
    pub job_id: Uuid,
}

/// The jobs a scan reads: `since` inclusive, `until` exclusive.
#[derive(Clone, Debug, Default)]
pub struct ScanRange {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// A job brought in from the old dashboard, ready to insert.
#[derive(Clone, Debug)]
pub struct ImportedJob {
    pub job_id: JobId,
    pub legacy_id: Option<String>,
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub action_code: i64,
    pub cids: Vec<String>,
    pub payload_hash: String,
    pub intent_hash: String,
    pub response_summary: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// `WHERE` of the scan: failed jobs are left out (the cluster did not
/// apply them), every other status is kept.
fn scan_where(range: &ScanRange, args: &mut Vec<Arg>) -> String {
    let mut sql = String::from(" WHERE status <> 'failed'");
    if let Some(since) = range.since {
        args.push(Arg::Time(since));
        sql.push_str(&format!(" AND created_at >= ${}", args.len()));
    }
    if let Some(until) = range.until {
        args.push(Arg::Time(until));
        sql.push_str(&format!(" AND created_at < ${}", args.len()));
    }
    sql
}

impl Db {
    /// The next `limit` jobs after `after`, in the order of the index
    /// `jobs_duplicate_scan`: a keyset page, so a scan of any size holds one
    /// page at a time and no transaction stays open between pages.
    #[tracing::instrument(skip_all)]
    pub async fn duplicate_scan_page(
        &self,
        range: &ScanRange,
        after: Option<&ScanKey>,
        limit: u32,
    ) -> Result<Vec<ScanRow>> {
        let mut args = Vec::new();
        let mut sql = String::from(
            "SELECT job_id, user_name, cluster, action, intent_hash, cid_count, created_at, duplicate_of FROM jobs",
        );
        sql.push_str(&scan_where(range, &mut args));
        if let Some(k) = after {
            let first = args.len() + 1;
            args.extend([
                Arg::Text(k.user_name.clone()),
                Arg::Text(k.cluster.clone()),
                Arg::Text(k.action.clone()),
                Arg::Text(k.intent_hash.clone()),
                Arg::Time(k.created_at),
                Arg::Uuid(k.job_id),
            ]);
            let params: Vec<String> = (first..first + 6).map(|i| format!("${i}")).collect();
            sql.push_str(&format!(
                " AND (user_name, cluster, action, intent_hash, created_at, job_id) > ({})",
                params.join(", ")
            ));
        }
        args.push(Arg::Int(i64::from(limit)));
        sql.push_str(&format!(
            " ORDER BY user_name, cluster, action, intent_hash, created_at, job_id LIMIT ${}",
            args.len()
        ));
        let rows = with_pool!(self, pool => bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// How many jobs a scan of `range` reads (for progress bars).
    #[tracing::instrument(skip_all)]
    pub async fn count_scanned_jobs(&self, range: &ScanRange) -> Result<i64> {
        let mut args = Vec::new();
        let sql = format!("SELECT COUNT(*) FROM jobs{}", scan_where(range, &mut args));
        let n: i64 = with_pool!(self, pool => bind_args!(sqlx::query_scalar(&sql), &args).fetch_one(pool).await)?;
        Ok(n)
    }

    /// Sets `duplicate_of` on each `(job, first)` pair in one transaction,
    /// only where it is still unset, so running it again changes nothing.
    /// Returns how many jobs were marked.
    #[tracing::instrument(skip_all, fields(marks = marks.len()))]
    pub async fn mark_duplicates(&self, marks: &[(JobId, JobId)]) -> Result<u64> {
        let sql = "UPDATE jobs SET duplicate_of = $2 WHERE job_id = $1 AND duplicate_of IS NULL AND job_id <> $2";
        let marked = with_pool!(self, pool => {
            let mut tx = write_tx!(pool)?;
            super::lock_job_batches!(self, tx);
            let mut marked = 0;
            for (job, first) in marks {
                marked += sqlx::query(sql)
                    .bind(job.as_uuid())
                    .bind(first.as_uuid())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(marked)
        })?;
        Ok(marked)
    }

    /// True when a job with this id, or this legacy id, is in the store.
    #[tracing::instrument(skip_all)]
    pub async fn job_present(&self, job_id: JobId, legacy_id: Option<&str>) -> Result<bool> {
        let sql = "SELECT COUNT(*) FROM jobs WHERE job_id = $1 OR legacy_id = $2";
        let n: i64 = with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(job_id.as_uuid())
            .bind(legacy_id)
            .fetch_one(pool)
            .await)?;
        Ok(n > 0)
    }

    /// Inserts imported jobs (`succeeded`, `imported`, no idempotency key) in
    /// one transaction. A job whose id or legacy id is already present is
    /// left alone; the answer says, job by job, whether it was inserted.
    #[tracing::instrument(skip_all, fields(jobs = jobs.len()))]
    pub async fn insert_imported_jobs(&self, jobs: &[ImportedJob]) -> Result<Vec<bool>> {
        let insert = "INSERT INTO jobs (job_id, user_name, idempotency_key, payload_hash, intent_hash, cluster, \
             action, action_code, cids, cid_count, status, response_summary, created_at, finished_at, \
             finalized_at, duration_ms, imported, legacy_id) \
             VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8, $9, 'succeeded', $10, $11, $11, $11, NULL, TRUE, $12) \
             ON CONFLICT DO NOTHING";
        let mut encoded = Vec::with_capacity(jobs.len());
        for job in jobs {
            encoded.push(serde_json::to_string(&job.cids).map_err(anyhow::Error::from)?);
        }
        let inserted = with_pool!(self, pool => {
            let mut tx = write_tx!(pool)?;
            let mut inserted = Vec::with_capacity(jobs.len());
            for (job, cids_json) in jobs.iter().zip(&encoded) {
                let n = sqlx::query(insert)
                    .bind(job.job_id.as_uuid())
                    .bind(&job.user)
                    .bind(&job.payload_hash)
                    .bind(&job.intent_hash)
                    .bind(&job.cluster)
                    .bind(&job.action)
                    .bind(job.action_code)
                    .bind(cids_json)
                    .bind(job.cids.len() as i64)
                    .bind(job.response_summary.as_deref())
                    .bind(job.created_at)
                    .bind(job.legacy_id.as_deref())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 1 && !job.cids.is_empty() {
                    let (sql, args) = job_cids_insert(job.job_id.as_uuid(), &job.cids);
                    bind_args!(sqlx::query(&sql), &args).execute(&mut *tx).await?;
                }
                inserted.push(n == 1);
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(inserted)
        })?;
        Ok(inserted)
    }
    /// Deletes up to `batch` finished jobs created before `cutoff`, with
    /// their CID rows, in one transaction; returns how many. A `pending` job
    /// stays, and so does a job that a kept job is marked a duplicate of.
    /// Marks between two old jobs deleted in different batches are cleared
    /// first, so no reference is left dangling.
    #[tracing::instrument(skip_all)]
    pub async fn purge_jobs_before(&self, cutoff: DateTime<Utc>, batch: u32) -> Result<u64> {
        let select = "SELECT job_id FROM jobs WHERE created_at < $1 AND status <> 'pending' \
             AND NOT EXISTS (SELECT 1 FROM jobs AS kept WHERE kept.duplicate_of = jobs.job_id AND kept.created_at >= $1) \
             ORDER BY created_at, job_id LIMIT $2";
        let deleted = with_pool!(self, pool => {
            let mut tx = write_tx!(pool)?;
            super::lock_job_batches!(self, tx);
            let ids: Vec<Uuid> = sqlx::query_scalar(select)
                .bind(cutoff)
                .bind(i64::from(batch))
                .fetch_all(&mut *tx)
                .await?;
            if !ids.is_empty() {
                let args: Vec<Arg> = ids.iter().map(|id| Arg::Uuid(*id)).collect();
                let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
                let list = list.join(", ");
                for sql in [
                    format!("DELETE FROM job_cids WHERE job_id IN ({list})"),
                    format!("DELETE FROM busy_cids WHERE job_id IN ({list})"),
                    format!("UPDATE jobs SET duplicate_of = NULL WHERE duplicate_of IN ({list}) AND job_id NOT IN ({list})"),
                    format!("DELETE FROM jobs WHERE job_id IN ({list})"),
                ] {
                    bind_args!(sqlx::query(&sql), &args).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(ids.len() as u64)
        })?;
        Ok(deleted)
    }
}
