//! The audit's queries: the ordered scan the duplicate audit reads page by
//! page, the marking of duplicates, the insert of imported jobs, and the
//! retention purge (the only statement that deletes jobs).

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::jobs::{lock_job_batches, ChainTip};
use super::tx::{args, write_tx, Backend, Tx};
use super::{with_pool, Db};
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
    /// Created with `confirm_duplicate`: a deliberate re-run.
    pub confirm_duplicate: bool,
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
fn push_scan_where<'a, DB>(query: &mut QueryBuilder<'a, DB>, range: &ScanRange)
where
    DB: sqlx::Database,
    DateTime<Utc>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    query.push(" WHERE status <> 'failed'");
    if let Some(since) = range.since {
        query.push(" AND created_at >= ").push_bind(since);
    }
    if let Some(until) = range.until {
        query.push(" AND created_at < ").push_bind(until);
    }
}

/// The statement that inserts an imported job's CIDs from a JSON array
/// (`$2`), with their positions, every one `ok` (the old dashboard recorded
/// successes only), in each dialect.
fn insert_job_cids_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "INSERT INTO job_cids (cid, job_id, position, created_at, outcome) \
             SELECT value, $1, key, $3, 'ok' FROM json_each($2)"
        }
        Backend::Postgres => {
            "INSERT INTO job_cids (cid, job_id, position, created_at, outcome) \
             SELECT c.value, $1, c.n - 1, $3, 'ok' FROM json_array_elements_text($2::json) WITH ORDINALITY AS c(value, n)"
        }
    }
}

/// `job_id IN (...)` of a JSON array of ids (`$1`), in each dialect.
fn ids_in_json(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "(SELECT unhex(replace(value, '-', '')) FROM json_each($1))",
        Backend::Postgres => {
            "(SELECT value::uuid FROM json_array_elements_text($1::json) AS c(value))"
        }
    }
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
        let rows = with_pool!(self, pool => {
            let mut query = QueryBuilder::new(
                "SELECT job_id, user_name, cluster, action, intent_hash, cid_count, created_at, duplicate_of, confirm_duplicate FROM jobs",
            );
            push_scan_where(&mut query, range);
            if let Some(k) = after {
                query.push(" AND (user_name, cluster, action, intent_hash, created_at, job_id) > (");
                let mut row = query.separated(", ");
                row.push_bind(k.user_name.as_str())
                    .push_bind(k.cluster.as_str())
                    .push_bind(k.action.as_str())
                    .push_bind(k.intent_hash.as_str())
                    .push_bind(k.created_at)
                    .push_bind(k.job_id);
                query.push(")");
            }
            query
                .push(" ORDER BY user_name, cluster, action, intent_hash, created_at, job_id LIMIT ")
                .push_bind(i64::from(limit));
            query.build_query_as().fetch_all(pool).await
        })?;
        Ok(rows)
    }

    /// How many jobs a scan of `range` reads (for progress bars).
    #[tracing::instrument(skip_all)]
    pub async fn count_scanned_jobs(&self, range: &ScanRange) -> Result<i64> {
        let n: i64 = with_pool!(self, pool => {
            let mut query = QueryBuilder::new("SELECT COUNT(*) FROM jobs");
            push_scan_where(&mut query, range);
            query.build_query_scalar().fetch_one(pool).await
        })?;
        Ok(n)
    }

    /// Sets `duplicate_of` on each `(job, first)` pair in one transaction,
    /// only where it is still unset, so running it again changes nothing.
    /// Returns how many jobs were marked.
    #[tracing::instrument(skip_all, fields(marks = marks.len()))]
    pub async fn mark_duplicates(&self, marks: &[(JobId, JobId)]) -> Result<u64> {
        let marks = marks.to_vec();
        write_tx!(self, |tx| async move {
            lock_job_batches(tx).await?;
            let mut marked = 0;
            for (job, first) in &marks {
                marked += tx
                    .execute(
                        "UPDATE jobs SET duplicate_of = $2 WHERE job_id = $1 AND duplicate_of IS NULL AND job_id <> $2",
                        &args![*job, *first],
                    )
                    .await?;
            }
            Ok(marked)
        })
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
        let mut rows = Vec::with_capacity(jobs.len());
        for job in jobs {
            let cids = serde_json::to_string(&job.cids).map_err(anyhow::Error::from)?;
            rows.push((job.clone(), cids));
        }
        write_tx!(self, |tx| async move {
            let mut inserted = Vec::with_capacity(rows.len());
            for (job, cids_json) in &rows {
                let n = tx
                    .execute(
                        "INSERT INTO jobs (job_id, user_name, idempotency_key, payload_hash, intent_hash, cluster, \
                         action, action_code, cids, cid_count, status, response_summary, created_at, finished_at, \
                         finalized_at, duration_ms, imported, legacy_id, ok_count) \
                         VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8, $9, 'succeeded', $10, $11, $11, $11, NULL, TRUE, $12, $9) \
                         ON CONFLICT DO NOTHING",
                        &args![
                            job.job_id,
                            &job.user,
                            &job.payload_hash,
                            &job.intent_hash,
                            &job.cluster,
                            &job.action,
                            job.action_code,
                            cids_json,
                            job.cids.len() as i64,
                            job.response_summary.as_deref(),
                            job.created_at,
                            job.legacy_id.as_deref(),
                        ],
                    )
                    .await?;
                if n == 1 && !job.cids.is_empty() {
                    tx.execute(
                        insert_job_cids_sql(tx.backend()),
                        &args![job.job_id, cids_json, job.created_at],
                    )
                    .await?;
                }
                inserted.push(n == 1);
            }
            Ok(inserted)
        })
    }

    /// Deletes up to `batch` of the oldest links of the audit chain, when
    /// they were created before `cutoff`, with their CID rows, in one
    /// transaction, and moves the chain's anchor to the last one removed, so
    /// what is kept still verifies. Only a prefix of the chain goes: it
    /// stops at the first job created since `cutoff`, and at the first job a
    /// kept job is marked a duplicate of. Returns how many were deleted.
    #[tracing::instrument(skip_all)]
    pub async fn purge_sealed_before(&self, cutoff: DateTime<Utc>, batch: u32) -> Result<u64> {
        write_tx!(self, |tx| async move {
            lock_job_batches(tx).await?;
            let boundary = tx
                .fetch_optional(
                    "SELECT MIN(audit_seq) FROM jobs WHERE audit_seq IS NOT NULL AND (created_at >= $1 \
                     OR EXISTS (SELECT 1 FROM jobs AS kept WHERE kept.duplicate_of = jobs.job_id AND kept.created_at >= $1))",
                    &args![cutoff],
                )
                .await?
                .map_or(Ok(None), |row| row.get::<Option<i64>>(0))?
                .unwrap_or(i64::MAX);
            let doomed = tx
                .fetch(
                    "SELECT job_id, audit_seq, audit_hash FROM jobs WHERE audit_seq IS NOT NULL AND audit_seq < $1 \
                     ORDER BY audit_seq LIMIT $2",
                    &args![boundary, i64::from(batch)],
                )
                .await?;
            let Some(last) = doomed.last() else {
                return Ok(0);
            };
            let anchor = ChainTip {
                seq: last.get(1)?,
                hash: last.get(2)?,
            };
            let ids = doomed
                .iter()
                .map(|row| row.get::<Uuid>(0).map(|id| id.to_string()))
                .collect::<Result<Vec<_>>>()?;
            let ids = serde_json::to_string(&ids).map_err(anyhow::Error::from)?;
            let list = ids_in_json(tx.backend());
            for sql in [
                format!("DELETE FROM job_cids WHERE job_id IN {list}"),
                format!("DELETE FROM busy_cids WHERE job_id IN {list}"),
                // Marks between two old jobs deleted in different batches.
                format!("UPDATE jobs SET duplicate_of = NULL WHERE duplicate_of IN {list} AND job_id NOT IN {list}"),
                format!("DELETE FROM jobs WHERE job_id IN {list}"),
            ] {
                tx.execute(&sql, &args![ids.as_str()]).await?;
            }
            let removed = doomed.len() as i64;
            tx.execute(
                "INSERT INTO audit_anchor (id, audit_seq, audit_hash, removed, anchored_at) VALUES (1, $1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET audit_seq = excluded.audit_seq, audit_hash = excluded.audit_hash, \
                 removed = audit_anchor.removed + excluded.removed, anchored_at = excluded.anchored_at",
                &args![anchor.seq, anchor.hash, removed, crate::domain::job::now_millis()],
            )
            .await?;
            Ok(removed as u64)
        })
    }
}
