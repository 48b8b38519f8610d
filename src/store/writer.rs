//! Group commit for SQLite. SQLite has one writer at a time and every commit
//! waits for an fsync (`synchronous=FULL`), so concurrent Set Actions that
//! each commit on their own queue behind the write lock. Instead, one writer
//! takes the hot path's writes (claims, finalisations, replays) from a queue
//! and runs whatever is waiting in one transaction:
//!
//! - each claim runs in a savepoint, decided by the same unique constraints
//!   as on its own, and a refused claim rolls back only its savepoint;
//! - every request is answered after the commit that made its row durable;
//! - if any write or the commit fails, the whole transaction is rolled back
//!   and every request of the batch gets the error: nothing half-written.
//!
//! No delay is added to gather a batch: requests that arrive while one
//! batch commits form the next.
//!
//! The writer owns a connection on a thread of its own. The pool's driver
//! runs each statement on a worker thread and wakes the caller after it;
//! profiles of Set Action under load showed those hand-offs, not SQLite,
//! taking most of the time. Here a whole batch costs one hand-off. The SQL
//! is the hot path's own (`store::jobs`), bound the way the pool binds it.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::jobs::{
    busy_cids_insert, busy_cids_lookup, job_cids_insert, Claim, ClaimDecision, Finalisation,
    NewJob, CLAIM_INSERT_SQL, FINALIZE_SQL, RECENT_INTENT_SQL, RECORD_REPLAY_SQL, RELEASE_CIDS_SQL,
};
use super::Arg;
use crate::domain::job::JobId;
use crate::error::{Error, Result};

/// Most writes one transaction takes; bounds the time a batch holds the lock.
const MAX_BATCH: usize = 256;
/// Writes that may wait for the writer before callers wait to enqueue.
const QUEUE_CAPACITY: usize = 4096;

/// A write waiting for the writer, what the batch decided for it, and where
/// its answer goes once the batch is committed.
enum Write {
    Claim {
        new: Box<NewJob>,
        decided: Option<ClaimDecision>,
        reply: oneshot::Sender<Result<ClaimDecision>>,
    },
    Finalize {
        done: Box<Finalisation>,
        finalised: bool,
        reply: oneshot::Sender<Result<bool>>,
    },
    Replay {
        job_id: JobId,
        at: DateTime<Utc>,
        reply: oneshot::Sender<Result<()>>,
    },
}

impl Write {
    /// Answers after the commit. A caller that went away no longer needs its
    /// answer; the write is durable either way.
    fn answer(self) {
        match self {
            Write::Claim { decided, reply, .. } => {
                let _ = reply.send(decided.ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("a committed claim was not decided"))
                }));
            }
            Write::Finalize {
                finalised, reply, ..
            } => {
                let _ = reply.send(Ok(finalised));
            }
            Write::Replay { reply, .. } => {
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn fail(self, error: Error) {
        match self {
            Write::Claim { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Write::Finalize { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Write::Replay { reply, .. } => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// The handle requests use to reach the writer; cheap to clone.
#[derive(Clone, Debug)]
pub struct Writer {
    queue: mpsc::Sender<Write>,
}

/// The writer's side of the queue.
pub struct WriterInbox {
    queue: mpsc::Receiver<Write>,
}

/// A writer handle and its inbox; `WriterInbox::start` must be called for
/// writes to be answered.
pub fn channel() -> (Writer, WriterInbox) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    (Writer { queue: tx }, WriterInbox { queue: rx })
}

impl Writer {
    /// Starts a writer on the SQLite file at `path`, running until every
    /// handle is dropped.
    pub fn start(path: &Path) -> anyhow::Result<Self> {
        let (writer, inbox) = channel();
        inbox.start(path)?;
        Ok(writer)
    }

    pub async fn claim(&self, new: NewJob) -> Result<ClaimDecision> {
        self.submit(|reply| Write::Claim {
            new: Box::new(new),
            decided: None,
            reply,
        })
        .await
    }

    pub async fn finalize(&self, done: Finalisation) -> Result<bool> {
        self.submit(|reply| Write::Finalize {
            done: Box::new(done),
            finalised: false,
            reply,
        })
        .await
    }

    pub async fn record_replay(&self, job_id: JobId, at: DateTime<Utc>) -> Result<()> {
        self.submit(|reply| Write::Replay { job_id, at, reply })
            .await
    }

    /// Writes waiting for the writer.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    async fn submit<T>(
        &self,
        write: impl FnOnce(oneshot::Sender<Result<T>>) -> Write,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        // A closed queue or a dropped reply means the writer stopped (the
        // store is closing): the client may retry.
        self.queue
            .send(write(reply))
            .await
            .map_err(|_| Error::Unavailable)?;
        answer.await.map_err(|_| Error::Unavailable)?
    }
}

impl WriterInbox {
    /// Opens the writer's connection and runs batches on a thread of its own
    /// until every `Writer` handle is dropped.
    pub fn start(self, path: &Path) -> anyhow::Result<()> {
        let connection = open(path)?;
        std::thread::Builder::new()
            .name("tms-store-writer".into())
            .spawn(move || self.run(connection))?;
        Ok(())
    }

    fn run(mut self, mut connection: Connection) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = self.queue.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match self.queue.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            metrics::histogram!("tms_store_write_batch_size").record(batch.len() as f64);
            run_batch(&mut connection, std::mem::take(&mut batch));
        }
    }
}

/// The writer's connection, set up as the pool's are: an answered job must
/// survive a power cut.
fn open(path: &Path) -> anyhow::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // While the sealer or an admin command holds the write lock, retry
    // every millisecond (for up to 10 s) rather than with SQLite's default
    // back-off, which sleeps up to 100 ms between tries: the batch waiting
    // here holds every request in it.
    connection.busy_handler(Some(|attempt: i32| {
        std::thread::sleep(std::time::Duration::from_millis(1));
        attempt < 10_000
    }))?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// Runs `writes` in one transaction and answers each after the commit, or
/// answers each with the failure.
fn run_batch(connection: &mut Connection, mut writes: Vec<Write>) {
    match decide_and_commit(connection, &mut writes) {
        Ok(()) => writes.into_iter().for_each(Write::answer),
        Err(e) => {
            // The transaction was rolled back when it dropped.
            tracing::error!(error = %e, writes = writes.len(), "a batch of store writes failed; all of it was rolled back");
            let busy = matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            );
            for write in writes {
                write.fail(if busy {
                    Error::Unavailable
                } else {
                    Error::Internal(anyhow::anyhow!(
                        "the store transaction of this write failed"
                    ))
                });
            }
        }
    }
}

fn decide_and_commit(connection: &mut Connection, writes: &mut [Write]) -> rusqlite::Result<()> {
    let mut tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for write in writes.iter_mut() {
        match write {
            Write::Claim { new, decided, .. } => {
                let mut savepoint = tx.savepoint()?;
                let decision = claim(&savepoint, new)?;
                if matches!(decision, ClaimDecision::Refused(_)) {
                    savepoint.rollback()?;
                }
                savepoint.commit()?;
                *decided = Some(decision);
            }
            Write::Finalize {
                done, finalised, ..
            } => {
                *finalised = finalize(&tx, done)?;
            }
            Write::Replay { job_id, at, .. } => {
                execute(&tx, RECORD_REPLAY_SQL, &[uuid(job_id.as_uuid()), time(*at)])?;
            }
        }
    }
    tx.commit()
}

/// The claim's reads and writes, in the order of `Db::claim_job` on
/// PostgreSQL: the key, the recent-duplicate guard, the per-customer lock.
fn claim(connection: &Connection, new: &NewJob) -> rusqlite::Result<ClaimDecision> {
    let job_uuid = new.job_id.as_uuid();
    let cids_json = serde_json::to_string(&new.cids)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    let inserted = execute(
        connection,
        CLAIM_INSERT_SQL,
        &[
            uuid(job_uuid),
            Value::Text(new.user.clone()),
            Value::Text(new.key.clone()),
            Value::Text(new.payload_hash.clone()),
            Value::Text(new.intent_hash.clone()),
            Value::Text(new.cluster.clone()),
            Value::Text(new.action.clone()),
            Value::Integer(new.action_code),
            Value::Text(cids_json),
            Value::Integer(new.cids.len() as i64),
            new.reason.clone().map_or(Value::Null, Value::Text),
            time(new.created_at),
            Value::Integer(i64::from(new.confirm_duplicate)),
        ],
    )?;
    if inserted == 0 {
        return Ok(ClaimDecision::KeyTaken);
    }
    if let Some(since) = new.duplicate_guard_since {
        let recent = query(
            connection,
            RECENT_INTENT_SQL,
            &[
                Value::Text(new.intent_hash.clone()),
                time(since),
                uuid(job_uuid),
            ],
            |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            },
        )?;
        if let Some((job_id, user, created_at)) = recent.into_iter().next() {
            return Ok(ClaimDecision::Refused(Claim::RecentDuplicate {
                job_id: JobId::from_uuid(blob_uuid(&job_id)?),
                user,
                created_at: parse_time(&created_at)?,
            }));
        }
    }
    let (busy_sql, busy_args) = busy_cids_insert(&new.cluster, job_uuid, &new.cids);
    let locked = execute(connection, &busy_sql, &values(&busy_args))?;
    if locked < new.cids.len() {
        let (lookup_sql, lookup_args) = busy_cids_lookup(&new.cluster, job_uuid, &new.cids);
        let rows = query(connection, &lookup_sql, &values(&lookup_args), |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?;
        let job_id = match rows.first() {
            Some((_, holder)) => JobId::from_uuid(blob_uuid(holder)?),
            None => new.job_id,
        };
        let busy = rows.into_iter().map(|(cid, _)| cid).collect();
        return Ok(ClaimDecision::Refused(Claim::CidsBusy { job_id, busy }));
    }
    let (cid_sql, cid_args) = job_cids_insert(job_uuid, &new.cids);
    execute(connection, &cid_sql, &values(&cid_args))?;
    Ok(ClaimDecision::Claimed)
}

/// Records the outcome of a `pending` job and releases its CIDs; false when
/// it was no longer pending.
fn finalize(connection: &Connection, done: &Finalisation) -> rusqlite::Result<bool> {
    let job = &done.job;
    let text = |v: Option<&str>| v.map_or(Value::Null, |v| Value::Text(v.to_owned()));
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let at = |v: Option<DateTime<Utc>>| v.map_or(Value::Null, time);
    let updated = execute(
        connection,
        FINALIZE_SQL,
        &[
            uuid(job.job_id.as_uuid()),
            Value::Text(job.status.as_str().to_owned()),
            int(job.upstream_status),
            text(job.response_summary.as_deref()),
            text(job.error.as_deref()),
            at(job.finished_at),
            int(job.duration_ms),
            Value::Integer(i64::from(done.response_status)),
            Value::Text(done.response_body.clone()),
            at(job.phases.sent_at),
            at(job.phases.answered_at),
            at(job.phases.finalized_at),
        ],
    )?;
    execute(connection, RELEASE_CIDS_SQL, &[uuid(job.job_id.as_uuid())])?;
    Ok(updated == 1)
}

/// Binds `args` to a statement written with `$N` placeholders: parameter
/// `$N` takes `args[N - 1]`, wherever it first appears (as the pool does).
fn bind(statement: &mut rusqlite::CachedStatement<'_>, args: &[Value]) -> rusqlite::Result<()> {
    for index in 1..=statement.parameter_count() {
        let n = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(index);
        let value = args
            .get(n - 1)
            .ok_or(rusqlite::Error::InvalidParameterCount(n, args.len()))?;
        statement.raw_bind_parameter(index, value)?;
    }
    Ok(())
}

fn execute(connection: &Connection, sql: &str, args: &[Value]) -> rusqlite::Result<usize> {
    let mut statement = connection.prepare_cached(sql)?;
    bind(&mut statement, args)?;
    statement.raw_execute()
}

fn query<T>(
    connection: &Connection,
    sql: &str,
    args: &[Value],
    mut read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = connection.prepare_cached(sql)?;
    bind(&mut statement, args)?;
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read(row)?);
    }
    Ok(out)
}

/// Values stored exactly as the pool stores them, so both can read and
/// order what the other wrote: UUIDs as 16-byte blobs, times as RFC 3339
/// text.
fn uuid(id: Uuid) -> Value {
    Value::Blob(id.as_bytes().to_vec())
}

fn time(t: DateTime<Utc>) -> Value {
    Value::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
}

fn values(args: &[Arg]) -> Vec<Value> {
    args.iter()
        .map(|arg| match arg {
            Arg::Text(v) => Value::Text(v.clone()),
            Arg::Time(v) => time(*v),
            Arg::Uuid(v) => uuid(*v),
            Arg::Int(v) => Value::Integer(*v),
        })
        .collect()
}

fn blob_uuid(bytes: &[u8]) -> rusqlite::Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, e.into())
    })
}

fn parse_time(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::domain::job::{now_millis, Job, JobStatus};
    use crate::store::{Db, PoolSettings};

    async fn store(dir: &tempfile::TempDir) -> sqlx::SqlitePool {
        let url = format!("sqlite://{}/writer.db", dir.path().display());
        let pool = match Db::open(&url, &PoolSettings::default()).await.unwrap() {
            Db::Sqlite(sqlite) => sqlite.pool,
            Db::Postgres(_) => unreachable!("a sqlite URL opens SQLite"),
        };
        sqlx::query("INSERT INTO users (username, role, created_at) VALUES ('ops', 'operator', '2026-01-01')")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    fn new_job(key: &str, intent: &str, cids: &[&str]) -> NewJob {
        let created_at = now_millis();
        NewJob {
            job_id: JobId::new_at(created_at),
            user: "ops".into(),
            key: key.into(),
            payload_hash: format!("payload-{intent}"),
            intent_hash: intent.into(),
            cluster: "sandbox".into(),
            action: "Trans-Begin".into(),
            action_code: 1,
            cids: cids.iter().map(|c| c.to_string()).collect(),
            reason: None,
            created_at,
            confirm_duplicate: false,
            duplicate_guard_since: None,
        }
    }

    /// Starts the writer once `n` writes wait in its queue, so they form
    /// one batch.
    async fn start_when_queued(
        writer: &Writer,
        inbox: WriterInbox,
        dir: &tempfile::TempDir,
        n: usize,
    ) {
        for _ in 0..10_000 {
            if writer.queued() == n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(writer.queued(), n, "the writes never reached the queue");
        inbox.start(&path(dir)).unwrap();
    }

    fn path(dir: &tempfile::TempDir) -> std::path::PathBuf {
        dir.path().join("writer.db")
    }

    async fn claims_in_one_batch(
        dir: &tempfile::TempDir,
        jobs: Vec<NewJob>,
    ) -> Vec<Result<ClaimDecision>> {
        let (writer, inbox) = channel();
        let n = jobs.len();
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.claim(job).await })
            })
            .collect();
        start_when_queued(&writer, inbox, dir, n).await;
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    }

    fn finalisation(new: &NewJob) -> Finalisation {
        let finished_at = now_millis();
        let job = Job {
            job_id: new.job_id,
            user: new.user.clone(),
            cluster: new.cluster.clone(),
            action: new.action.clone(),
            action_code: new.action_code,
            cids: new.cids.clone(),
            cid_count: new.cids.len() as i64,
            status: JobStatus::Succeeded,
            upstream_status: Some(200),
            response_summary: None,
            error: None,
            created_at: new.created_at,
            finished_at: Some(finished_at),
            duration_ms: Some(0),
            duplicate_of: None,
            reason: None,
            confirm_duplicate: false,
            replay_count: 0,
            last_replay_at: None,
            phases: Default::default(),
            audit_hash: None,
            imported: false,
            legacy_id: None,
        };
        Finalisation {
            job,
            response_status: 200,
            response_body: "{}".into(),
        }
    }

    #[tokio::test]
    async fn one_batch_of_claims_with_the_same_key_inserts_one_job() {
        let dir = tempfile::tempdir().unwrap();
        let pool = store(&dir).await;
        let jobs = (0..10)
            .map(|_| new_job("same-key", "intent-a", &["C1"]))
            .collect();
        let answers = claims_in_one_batch(&dir, jobs).await;
        let claimed = answers
            .iter()
            .filter(|a| matches!(a, Ok(ClaimDecision::Claimed)))
            .count();
        let existing = answers
            .iter()
            .filter(|a| matches!(a, Ok(ClaimDecision::KeyTaken)))
            .count();
        assert_eq!((claimed, existing), (1, 9), "{answers:?}");
        assert_eq!(count(&pool, "jobs").await, 1);
        assert_eq!(count(&pool, "busy_cids").await, 1);
    }

    #[tokio::test]
    async fn refused_claims_in_a_batch_leave_nothing_and_the_others_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let pool = store(&dir).await;
        let mut jobs = vec![
            new_job("k1", "intent-1", &["C1", "C2"]),
            // Overlaps k1's CIDs: refused as busy.
            new_job("k2", "intent-2", &["C2", "C3"]),
            new_job("k3", "intent-3", &["C4"]),
            // Same intent as k3 under a new key, with the guard on.
            new_job("k4", "intent-3", &["C4"]),
        ];
        jobs[3].duplicate_guard_since = Some(jobs[3].created_at - chrono::Duration::minutes(5));
        let answers = claims_in_one_batch(&dir, jobs).await;
        assert!(
            matches!(answers[0], Ok(ClaimDecision::Claimed)),
            "{answers:?}"
        );
        assert!(
            matches!(&answers[1], Ok(ClaimDecision::Refused(Claim::CidsBusy { busy, .. })) if busy == &["C2"]),
            "{answers:?}"
        );
        assert!(
            matches!(answers[2], Ok(ClaimDecision::Claimed)),
            "{answers:?}"
        );
        assert!(
            matches!(
                answers[3],
                Ok(ClaimDecision::Refused(Claim::RecentDuplicate { .. }))
            ),
            "{answers:?}"
        );
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT idempotency_key FROM jobs ORDER BY idempotency_key")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(keys, ["k1", "k3"]);
        assert_eq!(count(&pool, "busy_cids").await, 3);
        assert_eq!(count(&pool, "job_cids").await, 3);
    }

    #[tokio::test]
    async fn a_failing_write_fails_its_whole_batch_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pool = store(&dir).await;
        // A job from an earlier batch, to finalise and replay in the failing one.
        let earlier = new_job("earlier", "intent-0", &["C0"]);
        let writer = Writer::start(&path(&dir)).unwrap();
        assert!(matches!(
            writer.claim(earlier.clone()).await,
            Ok(ClaimDecision::Claimed)
        ));
        // The store refuses one CID: its claim fails inside the batch.
        sqlx::query(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON job_cids WHEN NEW.cid = 'BOOM' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .execute(&pool)
        .await
        .unwrap();

        let (writer, inbox) = channel();
        let mut claims = Vec::new();
        for (key, cid) in [("k1", "C1"), ("k2", "BOOM"), ("k3", "C3")] {
            let writer = writer.clone();
            let job = new_job(key, key, &[cid]);
            claims.push(tokio::spawn(async move { writer.claim(job).await }));
        }
        let finalise = {
            let writer = writer.clone();
            let done = finalisation(&earlier);
            tokio::spawn(async move { writer.finalize(done).await })
        };
        let replay = {
            let writer = writer.clone();
            tokio::spawn(async move { writer.record_replay(earlier.job_id, now_millis()).await })
        };
        start_when_queued(&writer, inbox, &dir, 5).await;
        for claim in claims {
            assert!(claim.await.unwrap().is_err());
        }
        assert!(finalise.await.unwrap().is_err());
        assert!(replay.await.unwrap().is_err());

        // Only the earlier job, still pending, never replayed.
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT idempotency_key, status, replay_count FROM jobs")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(rows, [("earlier".to_owned(), "pending".to_owned(), 0)]);
        assert_eq!(count(&pool, "busy_cids").await, 1);
        assert_eq!(count(&pool, "job_cids").await, 1);

        // The writer goes on: the next batch, without the refused CID, commits.
        let retry = writer.claim(new_job("k1", "k1", &["C1"])).await;
        assert!(matches!(retry, Ok(ClaimDecision::Claimed)), "{retry:?}");
    }

    #[tokio::test]
    async fn a_claim_and_its_finalisation_commit_and_a_job_is_finalised_once() {
        let dir = tempfile::tempdir().unwrap();
        let pool = store(&dir).await;
        let writer = Writer::start(&path(&dir)).unwrap();
        let new = new_job("k1", "intent-1", &["C1"]);
        assert!(matches!(
            writer.claim(new.clone()).await,
            Ok(ClaimDecision::Claimed)
        ));
        let done = finalisation(&new);
        let (first, second) = tokio::join!(writer.finalize(done.clone()), writer.finalize(done));
        assert_eq!(
            [first.unwrap(), second.unwrap()]
                .iter()
                .filter(|f| **f)
                .count(),
            1
        );
        assert_eq!(count(&pool, "busy_cids").await, 0);
        let status: String = sqlx::query_scalar("SELECT status FROM jobs")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(status, "succeeded");
    }

    async fn count(pool: &sqlx::SqlitePool, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap()
    }
}
