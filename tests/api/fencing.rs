//! A paused instance is fenced: one frozen by its host (SIGSTOP, as a VM
//! migration or a long GC pause would) while its claim of a job waits on
//! the store wakes up after the job's deadline, when every other instance
//! may already call the job interrupted. It must not send the job then.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{action_body, free_port, new_key, ServerProcess, ADMIN_PASSWORD};
use crate::store::{Backend, TestStore};

fn signal(server: &ServerProcess, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name}");
}

/// A write lock on the store held by someone else (a long migration, a
/// vacuum, a slow transaction): claims wait until it is released.
enum StoreLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl StoreLock {
    async fn take(store: &TestStore) -> StoreLock {
        match store.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&store.url)
                    .await
                    .expect("connect");
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .expect("BEGIN IMMEDIATE");
                StoreLock::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&store.url)
                    .await
                    .expect("connect");
                sqlx::query("BEGIN")
                    .execute(&mut conn)
                    .await
                    .expect("BEGIN");
                sqlx::query("LOCK TABLE jobs IN EXCLUSIVE MODE")
                    .execute(&mut conn)
                    .await
                    .expect("LOCK TABLE");
                StoreLock::Postgres(conn)
            }
        }
    }

    /// Waits until a claim is queued behind the lock (PostgreSQL names the
    /// waiter; SQLite's writer retries quietly, so give it a moment).
    async fn wait_for_a_waiter(&mut self, store: &TestStore) {
        match self {
            StoreLock::Sqlite(_) => tokio::time::sleep(Duration::from_millis(800)).await,
            StoreLock::Postgres(_) => {
                let mut watcher = sqlx::PgConnection::connect(&store.url)
                    .await
                    .expect("connect");
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let waiting: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    )
                    .fetch_one(&mut watcher)
                    .await
                    .expect("pg_stat_activity");
                    if waiting > 0 {
                        return;
                    }
                    assert!(Instant::now() < deadline, "no claim waited on the lock");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn release(self) {
        match self {
            StoreLock::Sqlite(mut conn) => {
                sqlx::query("COMMIT")
                    .execute(&mut conn)
                    .await
                    .expect("COMMIT");
            }
            StoreLock::Postgres(mut conn) => {
                sqlx::query("COMMIT")
                    .execute(&mut conn)
                    .await
                    .expect("COMMIT");
            }
        }
    }
}

#[tokio::test]
async fn an_instance_paused_while_claiming_a_job_never_sends_it_after_its_deadline() {
    // Arrange: two instances on one store, each with its own simulated
    // cluster, an upstream timeout of 1 s (deadline: 6 s after creation)
    // and a sweep every 500 ms.
    let store = TestStore::new().await;
    let env = [("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    let paused = ServerProcess::start(&store, free_port(), "paused.log", &env).await;
    let other = ServerProcess::start(&store, free_port(), "other.log", &env).await;
    let admin = paused.admin().await;
    let cids = json!(["FENCE-1", "FENCE-2"]);

    // Act: the claim waits on a lock; the instance is frozen; the lock goes;
    // the instance stays frozen past the job's deadline, then wakes.
    let mut lock = StoreLock::take(&store).await;
    let request = {
        let admin = admin.clone();
        let body = action_body("Trans-Begin", cids.clone());
        tokio::spawn(async move { admin.set_action(&new_key(), &body).await })
    };
    lock.wait_for_a_waiter(&store).await;
    signal(&paused, "STOP");
    lock.release().await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    signal(&paused, "CONT");
    let answer = request.await.expect("the request");

    // Assert: one job, and its cluster never heard of it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let jobs: Vec<Value> = other
        .admin()
        .await
        .jobs("limit=10")
        .await
        .into_iter()
        .filter(|job| job["cids"] == cids)
        .collect();
    assert_eq!(
        jobs.len(),
        1,
        "one job: {jobs:?}\nanswer: {}",
        answer.text()
    );
    let job = &jobs[0];
    let job_id = job["job_id"].as_str().expect("job_id");
    let keys = paused.get("/sandbox/api/v1/_keys").await.expect(200);
    let sent: Vec<&Value> = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["key"] == job_id)
        .collect();
    assert!(
        sent.is_empty(),
        "job {job_id} ({}) reached the cluster at {} although its deadline passed while the \
         instance was frozen; answer {} {}\nthe paused instance's log:\n{}\nthe other's:\n{}",
        job["status"],
        sent[0]["first_at"],
        answer.status,
        answer.text(),
        paused.log(),
        other.log()
    );
    assert!(
        matches!(job["status"].as_str(), Some("failed" | "unknown")),
        "{job}"
    );
    assert_eq!(job["outcomes"]["ok"], 0, "{job}");
}
