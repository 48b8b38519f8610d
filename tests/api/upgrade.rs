//! Upgrades: a store written by the previous release (the fixtures in
//! `tests/fixtures/<release>/`, made by `scripts/make-upgrade-fixtures.sh`
//! with that release's binary) opens with this binary, keeps its chains
//! intact, and goes on serving: its jobs readable, its waiting approval
//! decidable, new jobs chained onto the old ones. And the previous
//! release's binary (`TMS_PREVIOUS_BINARY`, which `scripts/test.sh` builds)
//! and this one serving one PostgreSQL database side by side, as during a
//! rolling upgrade.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{action_body, free_port, new_key, ServerProcess, ADMIN_PASSWORD};
use crate::store::{Backend, TestStore};

/// The newest release with fixtures.
const PREVIOUS_RELEASE: &str = "release-2026-12-03";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(PREVIOUS_RELEASE)
}

fn explain(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn tms(store: &TestStore, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tms-dashboard"))
        .args(args)
        .args(["--database-url", &store.url])
        .current_dir(store.dir())
        .env_remove("TMS_CONFIG")
        .output()
        .expect("tms-dashboard")
}

/// Puts the previous release's store in place of this test's.
fn load_fixture(store: &TestStore) {
    match store.backend {
        Backend::Sqlite => {
            let path = store.url.trim_start_matches("sqlite://");
            std::fs::copy(fixtures().join("store.db"), path).expect("copy the fixture store");
        }
        Backend::Postgres => {
            let out = Command::new("psql")
                .args(["-q", "-v", "ON_ERROR_STOP=1", "-f"])
                .arg(fixtures().join("postgres.sql"))
                .arg(&store.url)
                .output()
                .expect("psql");
            assert!(
                out.status.success(),
                "loading the fixture: {}",
                explain(&out)
            );
        }
    }
}

fn verify_both_chains(store: &TestStore) {
    for command in [["audit", "verify"], ["events", "verify"]] {
        let out = tms(store, &command);
        assert!(out.status.success(), "{command:?}: {}", explain(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("PASS"),
            "{command:?}: {}",
            explain(&out)
        );
    }
}

async fn serve(store: &TestStore, log: &str, binary: Option<&Path>) -> ServerProcess {
    let config = fixtures().join("tms.toml");
    let config = config.to_str().expect("utf-8");
    let env = [("TMS_CONFIG", config)];
    match binary {
        None => ServerProcess::start(store, free_port(), log, &env).await,
        Some(binary) => ServerProcess::start_binary(binary, store, free_port(), log, &env).await,
    }
}

#[tokio::test]
async fn a_store_written_by_the_previous_release_opens_verifies_and_goes_on_serving() {
    // Arrange: the previous release's store.
    let store = TestStore::new().await;
    load_fixture(&store);

    // Act: this binary migrates it and serves it.
    let migrated = tms(&store, &["migrate"]);
    assert!(migrated.status.success(), "{}", explain(&migrated));
    verify_both_chains(&store);
    let server = serve(&store, "upgraded.log", None).await;
    let admin = server.login("admin", ADMIN_PASSWORD).await;

    // Assert: what the old release recorded reads as it did ...
    let jobs = admin.jobs("limit=500").await;
    let of = |cids: Value| jobs.iter().find(|j| j["cids"] == cids).cloned();
    let partial = of(json!(["C1003", "NOPE-7", "LOST-8"])).expect("the partial job");
    assert_eq!(partial["status"], "partial");
    assert_eq!(
        partial["outcomes"],
        json!({"ok": 1, "failed": 1, "unknown": 1, "pending": 0})
    );
    assert_eq!(
        of(json!(["FAIL-1"])).expect("the failed job")["status"],
        "failed"
    );
    let approved = of(json!(["P1"])).expect("the approved job");
    assert_eq!(approved["approved_by"], "admin");
    let runs = admin.get("/api/v1/runs").await.expect(200);
    assert_eq!(runs["runs"][0]["status"], "finished", "{runs}");
    assert_eq!(runs["runs"][0]["cid_count"], 250);
    let olga = server.login("olga", "olga-password-1").await;
    assert_eq!(
        olga.jobs("limit=500").await.len(),
        jobs.iter().filter(|j| j["user"] == "olga").count(),
        "an operator still sees only their own jobs"
    );

    // ... the approval left waiting is decided now, and runs once ...
    let waiting = admin
        .get("/api/v1/approvals?status=awaiting")
        .await
        .expect(200);
    let id = waiting["approvals"][0]["approval_id"]
        .as_str()
        .expect("the waiting approval")
        .to_owned();
    admin
        .post_json(&format!("/api/v1/approvals/{id}/approve"), &json!({}))
        .await
        .expect(201);
    let again = admin
        .post_json(&format!("/api/v1/approvals/{id}/approve"), &json!({}))
        .await;
    again.expect_problem(409, "already_decided");

    // ... and new jobs chain onto the old ones.
    admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["UPG-1"])))
        .await
        .expect(201);
    drop(server);
    verify_both_chains(&store);
    let after = tms(&store, &["jobs", "list", "--limit", "500", "--json"]);
    assert!(after.status.success(), "{}", explain(&after));
}

/// The previous release's binary, built by `scripts/previous-release.sh`
/// (`scripts/test.sh` builds it and sets the variable).
fn previous_binary() -> PathBuf {
    let path = std::env::var_os("TMS_PREVIOUS_BINARY").expect(
        "TMS_PREVIOUS_BINARY names the previous release's binary: build it with scripts/previous-release.sh",
    );
    PathBuf::from(path)
}

#[tokio::test]
async fn the_previous_release_and_this_one_serve_one_postgresql_side_by_side() {
    // Arrange: the old release serving its own store, as before the upgrade.
    let old = previous_binary();
    let store = TestStore::on(Backend::Postgres).await;
    load_fixture(&store);
    let old_server = serve(&store, "old.log", Some(&old)).await;
    // Act: the new release joins (migrating what it needs), and both serve.
    let new_server = serve(&store, "new.log", None).await;
    let via_old = old_server.login("admin", ADMIN_PASSWORD).await;
    let via_new = via_old.via(&new_server);

    // The same key sent to both at once makes one job.
    let key = new_key();
    let body = action_body("Trans-Begin", json!(["ROLL-1"]));
    let (a, b) = tokio::join!(
        via_old.set_action(&key, &body),
        via_new.set_action(&key, &body)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert!(
        statuses == [201, 201] || statuses == [201, 409],
        "{} {} / {} {}",
        a.status,
        a.text(),
        b.status,
        b.text()
    );
    // Jobs made by each are read by the other; the approval is decided across versions.
    let on_new = via_new
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["ROLL-2"])))
        .await
        .expect(201);
    let job_id = on_new["job"]["job_id"].as_str().expect("job_id");
    via_old
        .get(&format!("/api/v1/jobs/{job_id}"))
        .await
        .expect(200);
    let olga = old_server.login("olga", "olga-password-1").await;
    let asked = olga
        .set_action(
            &new_key(),
            &json!({"cluster": "sandbox", "action": "Purge-Cache", "cids": ["ROLL-P"], "reason": "INC-3"}),
        )
        .await
        .expect(202);
    let id = asked["approval"]["approval_id"].as_str().expect("id");
    via_new
        .post_json(&format!("/api/v1/approvals/{id}/approve"), &json!({}))
        .await
        .expect(201);

    // Assert: the old instance stops (the upgrade finishes); the chains hold.
    drop(old_server);
    drop(new_server);
    verify_both_chains(&store);
    let rolled: Vec<Value> = {
        let out = tms(&store, &["jobs", "list", "--cid", "ROLL-1", "--json"]);
        assert!(out.status.success(), "{}", explain(&out));
        let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        listed["jobs"].as_array().expect("jobs").clone()
    };
    assert_eq!(
        rolled.len(),
        1,
        "one job for one key across two versions: {rolled:?}"
    );
}
