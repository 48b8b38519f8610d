//! Group commit for SQLite. SQLite has one writer at a time and every commit
//! waits for an fsync (`synchronous=FULL`), so concurrent Set Actions that
//! each commit on their own queue behind the write lock. Instead, one task
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

use chrono::{DateTime, Utc};
use sqlx::{Acquire, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::jobs::{
    claim_steps_sqlite, finalize_steps_sqlite, record_replay_sqlite, Claim, ClaimStep,
    Finalisation, NewJob,
};
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
        decided: Option<ClaimStep>,
        reply: oneshot::Sender<Result<Claim>>,
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
                let answer = decided
                    .ok_or_else(|| {
                        Error::Internal(anyhow::anyhow!("a committed claim was not decided"))
                    })
                    .and_then(ClaimStep::into_claim);
                let _ = reply.send(answer);
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

/// A writer handle and its inbox; `WriterInbox::run` must be spawned for
/// writes to be answered.
pub fn channel() -> (Writer, WriterInbox) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    (Writer { queue: tx }, WriterInbox { queue: rx })
}

impl Writer {
    /// Starts a writer on `pool`, running until every handle is dropped.
    pub fn spawn(pool: SqlitePool) -> Self {
        let (writer, inbox) = channel();
        tokio::spawn(inbox.run(pool));
        writer
    }

    pub async fn claim(&self, new: NewJob) -> Result<Claim> {
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
    /// Runs batches until every `Writer` handle is dropped.
    pub async fn run(mut self, pool: SqlitePool) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while self.queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            metrics::histogram!("tms_store_write_batch_size").record(batch.len() as f64);
            run_batch(&pool, std::mem::take(&mut batch)).await;
        }
    }
}

/// Runs `writes` in one transaction and answers each after the commit, or
/// answers each with the failure.
async fn run_batch(pool: &SqlitePool, mut writes: Vec<Write>) {
    match decide_and_commit(pool, &mut writes).await {
        Ok(()) => writes.into_iter().for_each(Write::answer),
        Err(e) => {
            // The transaction was rolled back when it dropped.
            tracing::error!(error = %e, writes = writes.len(), "a batch of store writes failed; all of it was rolled back");
            let unavailable = matches!(Error::from(e), Error::Unavailable);
            for write in writes {
                write.fail(if unavailable {
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

async fn decide_and_commit(
    pool: &SqlitePool,
    writes: &mut [Write],
) -> std::result::Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for write in writes.iter_mut() {
        match write {
            Write::Claim { new, decided, .. } => {
                let mut savepoint = tx.begin().await?;
                let step = claim_steps_sqlite(&mut savepoint, new).await?;
                if step.is_refusal() {
                    savepoint.rollback().await?;
                } else {
                    savepoint.commit().await?;
                }
                *decided = Some(step);
            }
            Write::Finalize {
                done, finalised, ..
            } => {
                *finalised = finalize_steps_sqlite(&mut tx, done).await?;
            }
            Write::Replay { job_id, at, .. } => {
                record_replay_sqlite(&mut tx, *job_id, *at).await?;
            }
        }
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::domain::job::{now_millis, Job, JobStatus};
    use crate::store::{Db, PoolSettings};

    async fn store(dir: &tempfile::TempDir) -> SqlitePool {
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
    async fn start_when_queued(writer: &Writer, inbox: WriterInbox, pool: &SqlitePool, n: usize) {
        for _ in 0..10_000 {
            if writer.queued() == n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(writer.queued(), n, "the writes never reached the queue");
        tokio::spawn(inbox.run(pool.clone()));
    }

    async fn claims_in_one_batch(pool: &SqlitePool, jobs: Vec<NewJob>) -> Vec<Result<Claim>> {
        let (writer, inbox) = channel();
        let n = jobs.len();
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.claim(job).await })
            })
            .collect();
        start_when_queued(&writer, inbox, pool, n).await;
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
        let answers = claims_in_one_batch(&pool, jobs).await;
        let claimed = answers
            .iter()
            .filter(|a| matches!(a, Ok(Claim::Claimed)))
            .count();
        let existing = answers
            .iter()
            .filter(|a| matches!(a, Ok(Claim::Existing(_))))
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
        let answers = claims_in_one_batch(&pool, jobs).await;
        assert!(matches!(answers[0], Ok(Claim::Claimed)), "{answers:?}");
        assert!(
            matches!(&answers[1], Ok(Claim::CidsBusy { busy, .. }) if busy == &["C2"]),
            "{answers:?}"
        );
        assert!(matches!(answers[2], Ok(Claim::Claimed)), "{answers:?}");
        assert!(
            matches!(answers[3], Ok(Claim::RecentDuplicate { .. })),
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
        let writer = Writer::spawn(pool.clone());
        assert!(matches!(
            writer.claim(earlier.clone()).await,
            Ok(Claim::Claimed)
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
        start_when_queued(&writer, inbox, &pool, 5).await;
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
        assert!(matches!(retry, Ok(Claim::Claimed)), "{retry:?}");
    }

    #[tokio::test]
    async fn a_claim_and_its_finalisation_commit_and_a_job_is_finalised_once() {
        let dir = tempfile::tempdir().unwrap();
        let pool = store(&dir).await;
        let writer = Writer::spawn(pool.clone());
        let new = new_job("k1", "intent-1", &["C1"]);
        assert!(matches!(
            writer.claim(new.clone()).await,
            Ok(Claim::Claimed)
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

    async fn count(pool: &SqlitePool, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap()
    }
}
