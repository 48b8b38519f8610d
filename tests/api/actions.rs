//! `POST /api/v1/actions`: one confirmed click, one job — also under concurrency.

use std::collections::HashSet;

use futures::future::join_all;
use serde_json::json;

use crate::helpers::{action_body, assert_job, new_key, TestApp};

#[tokio::test]
async fn a_set_action_returns_201_with_the_complete_job() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    // Act
    let reply = admin
        .set_action(
            &new_key(),
            &action_body("Trans-Begin", json!(["C1001", "C1002"])),
        )
        .await;

    // Assert
    assert!(!reply.replayed());
    let job = reply.expect(201)["job"].clone();
    assert_job(&job);
    assert_eq!(job["user"], "admin");
    assert_eq!(job["cluster"], "sandbox");
    assert_eq!(job["action"], "Trans-Begin");
    assert_eq!(job["action_code"], 1);
    assert_eq!(job["cids"], json!(["C1001", "C1002"]));
    assert_eq!(job["cid_count"], 2);
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["upstream_status"], 200);
    assert_eq!(job["error"], json!(null));
    assert_eq!(job["duplicate_of"], json!(null));
    assert!(job["response_summary"].is_string());
    assert!(job["finished_at"].is_string());
    assert!(job["duration_ms"].is_u64());
    let id = job["job_id"].as_str().unwrap();
    let stored = admin.get(&format!("/api/v1/jobs/{id}")).await.expect(200);
    assert_eq!(stored["job"]["job_id"], id);
    assert_eq!(stored["job"]["status"], "succeeded");
    assert_eq!(app.sandbox_requests().await, 1);
}

#[tokio::test]
async fn the_action_code_recorded_is_the_catalogs_code_for_the_action() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let reply = admin
        .set_action(&new_key(), &action_body("Suspend", json!(["C2001"])))
        .await;

    let job = reply.expect(201)["job"].clone();
    assert_eq!(job["action"], "Suspend");
    assert_eq!(job["action_code"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_requests_with_one_key_make_one_job_and_one_upstream_call() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let key = new_key();
    let body = action_body("Trans-Begin", json!(["DELAY100-K", "C1001"]));
    let requests_before = app.sandbox_requests().await;

    // Act
    let replies = join_all((0..40).map(|_| admin.set_action(&key, &body))).await;

    // Assert
    let jobs = admin.jobs("limit=500").await;
    assert_eq!(jobs.len(), 1, "jobs: {jobs:?}");
    let job_id = jobs[0]["job_id"].clone();
    let mut originals = 0;
    for reply in &replies {
        match reply.status {
            201 => {
                assert_eq!(reply.json()["job"]["job_id"], job_id);
                if !reply.replayed() {
                    originals += 1;
                }
            }
            409 => {
                let problem = reply.expect_problem(409, "request_in_progress");
                assert_eq!(problem["job_id"], job_id);
            }
            other => panic!("unexpected status {other}: {}", reply.text()),
        }
    }
    assert_eq!(originals, 1, "exactly one answer is the original");
    assert_eq!(app.sandbox_requests().await, requests_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_requests_with_different_keys_make_forty_jobs_and_forty_upstream_calls() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let bodies: Vec<_> = (0..40)
        .map(|i| {
            (
                new_key(),
                action_body("Trans-Begin", json!([format!("C{}", 3000 + i)])),
            )
        })
        .collect();

    // Act
    let replies = join_all(bodies.iter().map(|(key, body)| admin.set_action(key, body))).await;

    // Assert
    for reply in &replies {
        assert!(!reply.replayed());
        assert_eq!(reply.expect(201)["job"]["status"], "succeeded");
    }
    let jobs = admin.jobs("limit=500").await;
    assert_eq!(jobs.len(), 40);
    let ids: HashSet<_> = jobs.iter().map(|job| job["job_id"].to_string()).collect();
    assert_eq!(ids.len(), 40);
    assert_eq!(app.sandbox_requests().await, 40);
}

#[tokio::test]
async fn a_new_key_for_a_recent_identical_request_is_refused_unless_confirmed() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let operator = app.create_user("operator").await;
    let body = action_body("Trans-Begin", json!(["C1001", "C1002"]));
    let first = admin.set_action(&new_key(), &body).await.expect(201)["job"].clone();

    // Act
    let same_user = admin
        .set_action(
            &new_key(),
            &action_body("Trans-Begin", json!(["C1002", "C1001"])),
        )
        .await;
    let other_user = operator.set_action(&new_key(), &body).await;
    let mut confirmed_body = body.clone();
    confirmed_body["confirm_duplicate"] = json!(true);
    let confirmed = admin.set_action(&new_key(), &confirmed_body).await;

    // Assert
    for reply in [&same_user, &other_user] {
        let problem = reply.expect_problem(409, "recent_duplicate");
        assert_eq!(problem["job_id"], first["job_id"]);
        assert_eq!(problem["user"], "admin");
        assert!(problem["created_at"].is_string());
    }
    assert_eq!(confirmed.expect(201)["job"]["status"], "succeeded");
    assert_eq!(admin.jobs("").await.len(), 2);
    assert_eq!(app.sandbox_requests().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_touching_a_cid_of_a_pending_job_is_refused_as_cids_busy() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let slow = {
        let admin = admin.clone();
        tokio::spawn(async move {
            let body = action_body("Trans-Begin", json!(["DELAY1500-B", "C5001"]));
            admin.set_action(&new_key(), &body).await
        })
    };
    let pending = admin.wait_for_pending_job().await;

    // Act
    let reply = admin
        .set_action(
            &new_key(),
            &action_body("Suspend", json!(["C5001", "C5002"])),
        )
        .await;

    // Assert
    let problem = reply.expect_problem(409, "cids_busy");
    assert_eq!(problem["job_id"], pending["job_id"]);
    assert_eq!(problem["busy"], json!(["C5001"]));
    assert_eq!(problem["user"], "admin");
    assert_eq!(problem["created_at"], pending["created_at"]);
    slow.await.expect("slow request").assert_status(201);
    assert_eq!(admin.jobs("").await.len(), 1);
}
