//! The one SQLite writer of the process, with group commit.
//!
//! SQLite has one writer at a time and every commit waits for an fsync
//! (`synchronous=FULL`). Every write of the store (claims, finalisations,
//! replays, users, sessions, the sealer, imports, marks, retention) is
//! queued here and run on one connection, on a thread of its own, so writes
//! of this process never wait on each other's locks. Whatever is waiting
//! when a batch starts runs in one `BEGIN IMMEDIATE` transaction:
//!
//! - each write runs in a savepoint; a write that fails (a refused claim, a
//!   taken username, a broken statement) rolls back its savepoint only and
//!   its caller gets the error, while the others go on;
//! - every caller is answered after the commit that made its write durable;
//! - if the commit fails, or SQLite abandons the transaction, every write of
//!   the batch gets the error: nothing is half-written.
//!
//! No delay is added to gather a batch: writes that arrive while one batch
//! commits form the next. A whole batch costs one hand-off between threads;
//! the pool's driver costs one per statement, which profiles of Set Action
//! under load showed taking most of the time.

use std::panic::AssertUnwindSafe;
use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::tx::{is_sqlite_busy, SqliteTx};
use crate::error::{Error, Result};

/// Most writes one transaction takes; bounds the time a batch holds the lock.
const MAX_BATCH: usize = 256;
/// Writes that may wait for the writer before callers wait to enqueue.
const QUEUE_CAPACITY: usize = 4096;
/// How long the writer waits for another process (a command such as
/// `audit dedupe --apply` run beside `serve`) to release the store's lock.
const BUSY_WAIT_MS: i32 = 10_000;

/// A write waiting for the writer, and where its answer goes.
trait PendingWrite: Send {
    /// Runs the write in the batch's transaction; false when it failed.
    fn run(&mut self, tx: &mut SqliteTx<'_>) -> bool;
    /// Answers the caller: its own result once the batch committed, or the
    /// batch's failure.
    fn answer(self: Box<Self>, batch_failure: Option<Error>);
}

struct Pending<T, F> {
    write: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> PendingWrite for Pending<T, F>
where
    T: Send,
    F: FnOnce(&mut SqliteTx<'_>) -> Result<T> + Send,
{
    fn run(&mut self, tx: &mut SqliteTx<'_>) -> bool {
        let Some(write) = self.write.take() else {
            return false;
        };
        // A panicking write must not take the writer (and every later
        // write) down with it.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| write(tx)))
            .unwrap_or_else(|_| Err(Error::Internal(anyhow::anyhow!("a store write panicked"))));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, batch_failure: Option<Error>) {
        let this = *self;
        let result = match batch_failure {
            Some(e) => Err(e),
            None => this.result.unwrap_or_else(|| {
                Err(Error::Internal(anyhow::anyhow!(
                    "a committed write was never run"
                )))
            }),
        };
        // A caller that went away no longer needs its answer; the write is
        // durable (or rolled back) either way.
        let _ = this.reply.send(result);
    }
}

type Queued = Box<dyn PendingWrite>;

/// The handle writes reach the writer through; cheap to clone.
#[derive(Clone, Debug)]
pub struct Writer {
    queue: mpsc::Sender<Queued>,
}

/// The writer's side of the queue.
pub struct WriterInbox {
    queue: mpsc::Receiver<Queued>,
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

    /// Runs `write` in the writer's next batch and answers once its batch
    /// is committed. Use the `write_tx!` macro rather than calling this.
    pub(crate) async fn run<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteTx<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            write: Some(write),
            result: None,
            reply,
        };
        // A closed queue or a dropped reply means the writer stopped (the
        // store is closing): the client may retry.
        self.queue
            .send(Box::new(pending))
            .await
            .map_err(|_| Error::Unavailable)?;
        answer.await.map_err(|_| Error::Unavailable)?
    }

    /// Writes waiting for the writer.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
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

/// The writer's connection: an answered write must survive a power cut.
fn open(path: &Path) -> anyhow::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // Only another process can hold the lock now (this one writes through
    // here alone). Retry every millisecond rather than with SQLite's
    // back-off, which sleeps up to 100 ms between tries while the whole
    // batch waits; each wait is counted, so a profile can tell.
    connection.busy_handler(Some(|attempt: i32| {
        metrics::counter!("tms_store_busy_waits_total").increment(1);
        std::thread::sleep(std::time::Duration::from_millis(1));
        attempt < BUSY_WAIT_MS
    }))?;
    connection.set_prepared_statement_cache_capacity(128);
    Ok(connection)
}

/// Why a whole batch failed.
#[derive(Debug)]
enum BatchFailure {
    Sqlite(rusqlite::Error),
    /// SQLite ended the transaction itself after a failed statement (for
    /// example a full disk): nothing of the batch was kept.
    TransactionLost,
}

impl From<rusqlite::Error> for BatchFailure {
    fn from(e: rusqlite::Error) -> Self {
        BatchFailure::Sqlite(e)
    }
}

/// Runs `writes` in one transaction and answers each after the commit, or
/// answers each with the batch's failure.
fn run_batch(connection: &mut Connection, mut writes: Vec<Queued>) {
    match run_in_one_transaction(connection, &mut writes) {
        Ok(()) => writes.into_iter().for_each(|w| w.answer(None)),
        Err(failure) => {
            // The transaction was rolled back when it dropped.
            tracing::error!(error = ?failure, writes = writes.len(), "a batch of store writes failed; all of it was rolled back");
            let busy = matches!(&failure, BatchFailure::Sqlite(e) if is_sqlite_busy(e));
            for write in writes {
                write.answer(Some(if busy {
                    Error::Unavailable
                } else {
                    Error::Internal(anyhow::anyhow!(
                        "the store transaction of this write failed"
                    ))
                }));
            }
        }
    }
}

fn run_in_one_transaction(
    connection: &mut Connection,
    writes: &mut [Queued],
) -> std::result::Result<(), BatchFailure> {
    let mut tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for write in writes.iter_mut() {
        let mut savepoint = tx.savepoint()?;
        let ok = write.run(&mut SqliteTx::new(&savepoint));
        if savepoint.is_autocommit() {
            return Err(BatchFailure::TransactionLost);
        }
        if !ok {
            savepoint.rollback()?;
        }
        savepoint.commit()?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use sqlx::Connection as _;
    use uuid::Uuid;

    use super::*;
    use crate::domain::job::now_millis;
    use crate::store::tx::{args, Tx};
    use crate::store::{Db, PoolSettings};

    fn path(dir: &tempfile::TempDir) -> std::path::PathBuf {
        dir.path().join("writer.db")
    }

    /// A migrated store in `dir`, and a read-write sqlx connection to it.
    async fn store(dir: &tempfile::TempDir) -> sqlx::SqliteConnection {
        let url = format!("sqlite://{}", path(dir).display());
        let db = Db::open(&url, &PoolSettings::default()).await.unwrap();
        db.close().await;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO users (username, role, created_at) VALUES ('ops', 'operator', '2026-01-01')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn
    }

    type TestWrite<T> = Box<dyn FnOnce(&mut SqliteTx<'_>) -> Result<T> + Send>;

    /// Queues `n` writes, then starts the writer once all of them wait, so
    /// they form one batch.
    async fn in_one_batch<T: Send + 'static>(
        dir: &tempfile::TempDir,
        writes: Vec<TestWrite<T>>,
    ) -> Vec<Result<T>> {
        let (writer, inbox) = channel();
        let n = writes.len();
        let tasks: Vec<_> = writes
            .into_iter()
            .map(|write| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.run(write).await })
            })
            .collect();
        for _ in 0..10_000 {
            if writer.queued() == n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(writer.queued(), n, "the writes never reached the queue");
        inbox.start(&path(dir)).unwrap();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    }

    fn insert_token(name: &'static str) -> TestWrite<u64> {
        Box::new(move |tx| {
            futures::executor::block_on(tx.execute(
                "INSERT INTO api_tokens (id, username, name, token_hash, created_at) VALUES ($1, 'ops', $2, $2, $3)",
                &args![Uuid::now_v7(), name, now_millis()],
            ))
        })
    }

    async fn token_names(conn: &mut sqlx::SqliteConnection) -> Vec<String> {
        sqlx::query_scalar("SELECT name FROM api_tokens ORDER BY name")
            .fetch_all(conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_failing_write_rolls_back_only_itself_and_the_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = store(&dir).await;
        let mut writes = vec![insert_token("t1")];
        // Writes a row, then fails: its row must not stay.
        writes.push(Box::new(|tx| {
            futures::executor::block_on(async {
                tx.execute(
                    "INSERT INTO api_tokens (id, username, name, token_hash, created_at) VALUES ($1, 'ops', 'half', 'half', $2)",
                    &args![Uuid::now_v7(), now_millis()],
                )
                .await?;
                tx.execute("INSERT INTO no_such_table VALUES (1)", &[]).await
            })
        }));
        writes.push(Box::new(|_| panic!("a write that panics")));
        writes.push(insert_token("t3"));
        let answers = in_one_batch(&dir, writes).await;
        assert!(answers[0].is_ok() && answers[3].is_ok(), "{answers:?}");
        assert!(answers[1].is_err() && answers[2].is_err(), "{answers:?}");
        assert_eq!(token_names(&mut conn).await, ["t1", "t3"]);
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_write_of_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = store(&dir).await;
        // A deferred foreign key is checked at the commit: the token of an
        // unknown user makes the whole commit fail.
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut conn)
            .await
            .unwrap();
        let mut writes = vec![insert_token("t1")];
        writes.push(Box::new(|tx| {
            futures::executor::block_on(async {
                tx.execute("PRAGMA defer_foreign_keys = ON", &[]).await?;
                tx.execute(
                    "INSERT INTO api_tokens (id, username, name, token_hash, created_at) VALUES ($1, 'nobody', 'x', 'x', $2)",
                    &args![Uuid::now_v7(), now_millis()],
                )
                .await
            })
        }));
        let answers = in_one_batch(&dir, writes).await;
        assert!(answers.iter().all(|a| a.is_err()), "{answers:?}");
        assert!(token_names(&mut conn).await.is_empty());

        // The writer goes on: the next batch commits.
        let writer = Writer::start(&path(&dir)).unwrap();
        assert!(writer.run(insert_token("t2")).await.is_ok());
        assert_eq!(token_names(&mut conn).await, ["t2"]);
    }

    #[tokio::test]
    async fn the_writer_stores_values_as_sqlx_reads_them_and_reads_what_sqlx_stores() {
        // The writer binds UUIDs, times and booleans itself; the pool reads
        // them with sqlx's decoders, and the other way round.
        let dir = tempfile::tempdir().unwrap();
        let mut conn = store(&dir).await;
        let writer = Writer::start(&path(&dir)).unwrap();
        let id = Uuid::now_v7();
        let at: DateTime<Utc> = "2026-11-29T10:00:00.123Z".parse().unwrap();
        let whole: DateTime<Utc> = "2026-11-29T10:00:01Z".parse().unwrap();
        writer
            .run(move |tx| {
                futures::executor::block_on(tx.execute(
                    "INSERT INTO users (username, role, created_at, disabled, sso) VALUES ('w', 'auditor', $1, $2, TRUE)",
                    &args![at, true],
                ))?;
                futures::executor::block_on(tx.execute(
                    "INSERT INTO api_tokens (id, username, name, token_hash, created_at, last_used_at) VALUES ($1, 'w', 'n', 'h', $2, $3)",
                    &args![id, whole, None::<DateTime<Utc>>],
                ))
            })
            .await
            .unwrap();
        let (read_id, created, last): (Uuid, DateTime<Utc>, Option<DateTime<Utc>>) =
            sqlx::query_as("SELECT id, created_at, last_used_at FROM api_tokens WHERE name = 'n'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!((read_id, created, last), (id, whole, None));
        let (user_at, disabled): (DateTime<Utc>, bool) =
            sqlx::query_as("SELECT created_at, disabled FROM users WHERE username = 'w'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!((user_at, disabled), (at, true));
        // Text as sqlx writes it, so both order alike in SQL.
        let stored: String =
            sqlx::query_scalar("SELECT created_at FROM users WHERE username = 'w'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        let (_, sqlx_text): (i64, String) = sqlx::query_as("SELECT 1, $1")
            .bind(at)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(stored, sqlx_text);

        // What sqlx wrote, the writer reads back.
        let other = Uuid::now_v7();
        sqlx::query("INSERT INTO api_tokens (id, username, name, token_hash, created_at) VALUES ($1, 'w', 'm', 'h2', $2)")
            .bind(other)
            .bind(at)
            .execute(&mut conn)
            .await
            .unwrap();
        let (read, read_at, sso) = writer
            .run(|tx| {
                let row = futures::executor::block_on(tx.fetch_optional(
                    "SELECT t.id, t.created_at, u.sso FROM api_tokens t JOIN users u ON u.username = t.username WHERE t.name = 'm'",
                    &[],
                ))?
                .expect("the row");
                Ok((row.get::<Uuid>(0)?, row.get::<DateTime<Utc>>(1)?, row.get::<bool>(2)?))
            })
            .await
            .unwrap();
        assert_eq!((read, read_at, sso), (other, at, true));
    }
}
