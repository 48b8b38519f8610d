//! Backup and restore: a copy taken while Set Actions run is a consistent
//! store of its own, whose sealed-job chain and event feed verify, and which
//! holds only what the live store held (nothing invented, nothing changed).
//! On SQLite with `backup` and `restore`; on PostgreSQL with the documented
//! `pg_dump` / `pg_restore` recipe.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::helpers::{action_body, new_key, TestApp};
use crate::store::{Backend, TestStore};

/// Runs the real binary in `dir` on the store at `url`.
fn tms(dir: &Path, args: &[&str], url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tms-dashboard"))
        .args(args)
        .args(["--database-url", url])
        .current_dir(dir)
        .env_remove("TMS_CONFIG")
        .env_remove("TMS_DATABASE_URL")
        .output()
        .expect("tms-dashboard")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn explain(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every job of the store at `url` by id, with its status.
fn job_statuses(dir: &Path, url: &str) -> HashMap<String, String> {
    let out = tms(dir, &["jobs", "export", "--format", "ndjson"], url);
    assert!(out.status.success(), "{}", explain(&out));
    stdout(&out)
        .lines()
        .map(|line| {
            let job: Value = serde_json::from_str(line).expect("an NDJSON job");
            (
                job["job_id"].as_str().expect("job_id").to_owned(),
                job["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

/// Every event of the store at `url`, in seq order.
fn events(dir: &Path, url: &str) -> Vec<Value> {
    let out = tms(dir, &["events", "tail", "--after", "0"], url);
    assert!(out.status.success(), "{}", explain(&out));
    stdout(&out)
        .lines()
        .map(|line| serde_json::from_str(line).expect("an NDJSON event"))
        .collect()
}

/// Makes the copy while the load runs: `backup` on SQLite, `pg_dump` on
/// PostgreSQL. Answers the copy's path.
fn take_backup(store: &TestStore) -> std::path::PathBuf {
    match store.backend {
        Backend::Sqlite => {
            let path = store.dir().join("backup.db");
            let out = tms(store.dir(), &["backup", "backup.db"], &store.url);
            assert!(out.status.success(), "{}", explain(&out));
            assert!(stdout(&out).contains("integrity ok"), "{}", explain(&out));
            path
        }
        Backend::Postgres => {
            let path = store.dir().join("backup.dump");
            let out = Command::new("pg_dump")
                .args(["--format=custom", "--file"])
                .arg(&path)
                .arg(&store.url)
                .output()
                .expect("pg_dump");
            assert!(out.status.success(), "pg_dump: {}", explain(&out));
            path
        }
    }
}

/// Restores the copy as a new store and answers its URL.
async fn restore(store: &TestStore, backup: &Path, restored: &TestStore) -> String {
    match store.backend {
        Backend::Sqlite => {
            let url = format!(
                "sqlite://{}",
                restored.dir().join("restored/tms.db").display()
            );
            let out = tms(
                store.dir(),
                &["restore", backup.to_str().expect("utf-8")],
                &url,
            );
            assert!(out.status.success(), "{}", explain(&out));
            let said = stdout(&out);
            assert!(
                said.contains("PASS: the chain of") && !said.contains("FAIL"),
                "{said}"
            );
            url
        }
        Backend::Postgres => {
            let out = Command::new("pg_restore")
                .args(["--no-owner", "--dbname"])
                .arg(&restored.url)
                .arg(backup)
                .output()
                .expect("pg_restore");
            assert!(out.status.success(), "pg_restore: {}", explain(&out));
            restored.url.clone()
        }
    }
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_to_a_store_whose_chains_verify() {
    // Arrange: Set Actions from six clients, going on until the copy is made.
    let store = Arc::new(TestStore::new().await);
    let app = TestApp::spawn_on(store.clone(), |_| {}).await;
    let admin = app.admin().await;
    let backed_up = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..6 {
        let admin = admin.clone();
        let backed_up = backed_up.clone();
        clients.push(tokio::spawn(async move {
            let mut after_backup = 0;
            for i in 0..2000 {
                let cids = json!([format!("B{client}X{i}")]);
                let reply = admin
                    .set_action(&new_key(), &action_body("Trans-Begin", cids))
                    .await;
                assert_eq!(reply.status, 201, "{}", reply.text());
                if backed_up.load(Ordering::SeqCst) {
                    after_backup += 1;
                    if after_backup == 10 {
                        break;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // Act: copy the live store, let the load go on, then restore the copy.
    let backup = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || take_backup(&store))
            .await
            .expect("the backup")
    };
    backed_up.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("a client");
    }
    let restored_store = TestStore::new().await;
    let restored = restore(&store, &backup, &restored_store).await;

    // Assert: both chains verify on the restored store ...
    let dir = store.dir();
    let verified = tms(dir, &["audit", "verify"], &restored);
    assert!(verified.status.success(), "{}", explain(&verified));
    let verified = tms(dir, &["events", "verify"], &restored);
    assert!(verified.status.success(), "{}", explain(&verified));

    // ... it holds jobs from before the copy and none from after ...
    let live = job_statuses(dir, &store.url);
    let copy = job_statuses(dir, &restored);
    assert!(!copy.is_empty(), "the copy was taken under load");
    assert!(
        copy.len() < live.len(),
        "the load went on after the copy: {} jobs copied of {}",
        copy.len(),
        live.len()
    );
    for (job_id, status) in &copy {
        let now = live
            .get(job_id)
            .unwrap_or_else(|| panic!("the copy holds job {job_id}, which the store never had"));
        if status != "pending" {
            assert_eq!(
                status, now,
                "job {job_id} was {status} in the copy and is {now} in the store"
            );
        }
    }

    // ... and its feed is the first events of the live feed, hash for hash.
    let live_events = events(dir, &store.url);
    let copy_events = events(dir, &restored);
    assert!(!copy_events.is_empty());
    assert!(copy_events.len() < live_events.len());
    for (copied, original) in copy_events.iter().zip(&live_events) {
        assert_eq!(copied["seq"], original["seq"]);
        assert_eq!(copied["hash"], original["hash"], "event {}", copied["seq"]);
    }
    eprintln!(
        "backup under load ({:?}): {} of {} jobs and {} of {} events copied; both chains verify on the restored store",
        store.backend,
        copy.len(),
        live.len(),
        copy_events.len(),
        live_events.len()
    );
}

#[tokio::test]
async fn backup_and_restore_never_overwrite_a_file() {
    let store = TestStore::on(Backend::Sqlite).await;
    let dir = store.dir();
    let created = tms(dir, &["migrate"], &store.url);
    assert!(created.status.success(), "{}", explain(&created));
    std::fs::write(dir.join("taken.db"), b"someone's file").expect("write");

    let backup = tms(dir, &["backup", "taken.db"], &store.url);
    let restore_url = format!("sqlite://{}", dir.join("taken.db").display());
    let restore = tms(dir, &["restore", "missing.db"], &restore_url);
    let restore_over = {
        let ok = tms(dir, &["backup", "copy.db"], &store.url);
        assert!(ok.status.success(), "{}", explain(&ok));
        tms(dir, &["restore", "copy.db"], &restore_url)
    };
    let postgres = tms(
        dir,
        &["backup", "x.db"],
        "postgres://nobody@127.0.0.1:1/none",
    );

    assert_eq!(backup.status.code(), Some(2), "{}", explain(&backup));
    assert!(
        explain(&backup).contains("already exists"),
        "{}",
        explain(&backup)
    );
    assert_eq!(restore.status.code(), Some(2), "{}", explain(&restore));
    assert_eq!(
        restore_over.status.code(),
        Some(2),
        "{}",
        explain(&restore_over)
    );
    assert_eq!(
        std::fs::read(dir.join("taken.db")).expect("read"),
        b"someone's file"
    );
    assert_eq!(postgres.status.code(), Some(2), "{}", explain(&postgres));
    assert!(
        explain(&postgres).contains("pg_dump"),
        "{}",
        explain(&postgres)
    );
}
