//! Guard rails beyond the old dashboard: visible replays, the timeline of
//! each job, and the tamper-evident seal.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{action_body, new_key, TestApp};

fn time(job: &Value, phase: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    job["phases"][phase]
        .as_str()
        .map(|t| t.parse().unwrap_or_else(|e| panic!("{phase}: {t}: {e}")))
}

#[tokio::test]
async fn replays_are_counted_on_the_job_while_the_replayed_body_stays_the_original() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let key = new_key();
    let body = action_body("Trans-Begin", json!(["R1"]));
    let first = admin.set_action(&key, &body).await;

    let second = admin.set_action(&key, &body).await;
    let third = admin.set_action(&key, &body).await;

    assert_eq!(first.text(), second.text());
    assert_eq!(first.text(), third.text());
    assert_eq!(first.json()["job"]["replay_count"], 0);
    let job_id = first.json()["job"]["job_id"]
        .as_str()
        .expect("job_id")
        .to_owned();
    let job = admin
        .get(&format!("/api/v1/jobs/{job_id}"))
        .await
        .expect(200)["job"]
        .clone();
    assert_eq!(job["replay_count"], 2, "{job}");
    assert!(job["last_replay_at"].is_string(), "{job}");
}

#[tokio::test]
async fn each_phase_of_a_job_is_recorded_in_order() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let job = admin
        .set_action(
            &new_key(),
            &action_body("Trans-Begin", json!(["DELAY50-P1"])),
        )
        .await
        .expect(201)["job"]
        .clone();

    let claimed = time(&job, "claimed_at").expect("claimed_at");
    let sent = time(&job, "sent_at").expect("sent_at");
    let answered = time(&job, "answered_at").expect("answered_at");
    let finalized = time(&job, "finalized_at").expect("finalized_at");
    assert!(
        claimed <= sent && sent <= answered && answered <= finalized,
        "{job}"
    );
    assert!((answered - sent).num_milliseconds() >= 50, "{job}");
}

#[tokio::test]
async fn a_timed_out_job_was_sent_but_never_answered() {
    let app = TestApp::spawn_with(|c| c.upstream_timeout = Duration::from_millis(500)).await;
    let admin = app.admin().await;

    let reply = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["SLOW-P2"])))
        .await;

    let job = reply.expect(504)["job"].clone();
    assert!(time(&job, "sent_at").is_some(), "{job}");
    assert!(time(&job, "answered_at").is_none(), "{job}");
    assert!(time(&job, "finalized_at").is_some(), "{job}");
}

#[tokio::test]
async fn finalised_jobs_are_sealed_into_one_chain() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for cid in ["S1", "FAIL-S2", "REJECT-S3", "S4"] {
        let reply = admin
            .set_action(&new_key(), &action_body("Suspend", json!([cid])))
            .await;
        ids.push(
            reply.json()["job"]["job_id"]
                .as_str()
                .expect("job_id")
                .to_owned(),
        );
    }

    let mut hashes = std::collections::HashSet::new();
    for id in &ids {
        let job = admin
            .wait_for_job(id, |j| j["audit_hash"].is_string(), String::new)
            .await;
        let hash = job["audit_hash"].as_str().expect("hash").to_owned();
        assert_eq!(hash.len(), 64, "{job}");
        hashes.insert(hash);
    }
    assert_eq!(hashes.len(), ids.len(), "every job has its own link");
}

#[tokio::test]
async fn the_audit_finds_retried_jobs_and_jobs_by_reason() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let key = new_key();
    let mut ticket = action_body("Suspend", json!(["Q1"]));
    ticket["reason"] = json!("Ticket OPS-4711_b: customer asked");
    admin.set_action(&key, &ticket).await.expect(201);
    admin.set_action(&key, &ticket).await.expect(201); // a double click
    admin
        .set_action(&new_key(), &action_body("Suspend", json!(["Q2"])))
        .await
        .expect(201);

    let retried = admin.jobs("retried=true").await;
    let not_retried = admin.jobs("retried=false").await;
    let by_reason = admin.jobs("reason=ops-4711_B").await;
    let wildcard = admin.jobs("reason=OPS-4711%25").await;

    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0]["cids"], json!(["Q1"]));
    assert_eq!(not_retried.len(), 1);
    assert_eq!(by_reason.len(), 1, "case is ignored");
    assert!(wildcard.is_empty(), "% is matched literally");
    admin
        .get("/api/v1/jobs?retried=maybe")
        .await
        .expect_problem(400, "invalid_query");
}

#[tokio::test]
async fn an_action_that_requires_a_reason_refuses_none_or_a_short_one_and_stores_it_trimmed() {
    let app = TestApp::spawn_with(|c| {
        c.actions = Some(vec![tms_dashboard::config::ActionConfig {
            name: "Purge-Cache".into(),
            code: 6,
            description: None,
            max_cids: None,
            reason_required: Some(true),
            approval_required: None,
            method: None,
            path: None,
        }]);
    })
    .await;
    let admin = app.admin().await;
    let body = |reason: Value| {
        let mut b = action_body("Purge-Cache", json!(["Z1"]));
        if !reason.is_null() {
            b["reason"] = reason;
        }
        b
    };

    for bad in [
        Value::Null,
        json!(""),
        json!("  ab  "),
        json!("x".repeat(501)),
    ] {
        admin
            .set_action(&new_key(), &body(bad))
            .await
            .expect_problem(422, "reason_required");
    }
    let job = admin
        .set_action(&new_key(), &body(json!("  INC-42 purge after migration  ")))
        .await
        .expect(201)["job"]
        .clone();

    assert_eq!(job["reason"], "INC-42 purge after migration");
    assert_eq!(
        admin.jobs("").await.len(),
        1,
        "refused requests stored nothing"
    );
    let catalog = admin.get("/api/v1/catalog").await.expect(200);
    assert_eq!(catalog["actions"][0]["reason_required"], true);
}

/// Changes a job's error directly in the store, as an intruder would.
async fn tamper(store: &crate::helpers::TestStore, job_id: &str) {
    use sqlx::Connection;
    let id = uuid::Uuid::parse_str(job_id).expect("uuid");
    let sql = "UPDATE jobs SET error = 'quietly changed' WHERE job_id = $1";
    match store.backend {
        crate::store::Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&store.url)
                .await
                .expect("connect");
            sqlx::query(sql)
                .bind(id)
                .execute(&mut c)
                .await
                .expect("update");
        }
        crate::store::Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&store.url)
                .await
                .expect("connect");
            sqlx::query(sql)
                .bind(id)
                .execute(&mut c)
                .await
                .expect("update");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_passes_on_an_intact_store_and_names_the_job_a_direct_edit_changed() {
    // Arrange: three sealed jobs.
    let store = std::sync::Arc::new(crate::helpers::TestStore::new().await);
    let app = TestApp::spawn_on(store.clone(), |_| {}).await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for cid in ["V1", "V2", "V3"] {
        let reply = admin
            .set_action(&new_key(), &action_body("Resume", json!([cid])))
            .await;
        ids.push(
            reply.expect(201)["job"]["job_id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    for id in &ids {
        admin
            .wait_for_job(id, |j| j["audit_hash"].is_string(), String::new)
            .await;
    }
    let intact = crate::legacy::cli(&store, &["audit", "verify"]).await;
    intact.expect_code(0);
    assert!(intact.stdout.contains("PASS"), "{}", intact.stdout);

    // Act
    tamper(&store, &ids[1]).await;

    // Assert: broken exactly at the changed job.
    let broken = crate::legacy::cli(&store, &["audit", "verify"]).await;
    broken.expect_code(1);
    assert!(broken.stdout.contains(&ids[1]), "{}", broken.all_output());
    assert!(!broken.stdout.contains(&ids[2]), "{}", broken.all_output());
}
