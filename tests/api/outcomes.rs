//! Every outcome of the upstream call is recorded, once, with the right answer.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{action_body, assert_job, new_key, TestApp};

/// Runs one action on `app` twice under the same key; asserts that the
/// second is a replay and that exactly one job and one upstream call exist.
/// Returns the original status and job.
async fn run_once_and_replay(app: &TestApp, cids: Value) -> (u16, Value) {
    let admin = app.admin().await;
    let key = new_key();
    let body = action_body("Trans-Begin", cids);
    let original = admin.set_action(&key, &body).await;
    let replay = admin.set_action(&key, &body).await;

    assert!(!original.replayed());
    assert!(replay.replayed());
    assert_eq!(replay.status, original.status);
    assert_eq!(replay.body, original.body);
    let jobs = admin.jobs("").await;
    assert_eq!(jobs.len(), 1, "jobs: {jobs:?}");
    assert_eq!(app.sandbox_requests().await, 1);
    let job = original.json()["job"].clone();
    assert_job(&job);
    assert_eq!(jobs[0]["job_id"], job["job_id"]);
    assert_eq!(jobs[0]["status"], job["status"]);
    (original.status, job)
}

#[tokio::test]
async fn a_failing_cluster_makes_a_failed_job_answered_with_502() {
    let app = TestApp::spawn().await;

    let (status, job) = run_once_and_replay(&app, json!(["FAIL1"])).await;

    assert_eq!(status, 502);
    assert_eq!(job["status"], "failed");
    assert_eq!(job["upstream_status"], 500);
    assert!(
        !job["error"].as_str().unwrap_or_default().is_empty(),
        "{job}"
    );
    assert!(job["finished_at"].is_string());
}

#[tokio::test]
async fn a_rejecting_cluster_makes_a_failed_job_with_upstream_status_200() {
    let app = TestApp::spawn().await;

    let (status, job) = run_once_and_replay(&app, json!(["REJECT1"])).await;

    assert_eq!(status, 502);
    assert_eq!(job["status"], "failed");
    assert_eq!(job["upstream_status"], 200);
    assert!(
        !job["error"].as_str().unwrap_or_default().is_empty(),
        "{job}"
    );
}

#[tokio::test]
async fn a_cluster_that_does_not_answer_in_time_makes_a_timed_out_job_answered_with_504() {
    let app = TestApp::spawn_with(|c| c.upstream_timeout = Duration::from_secs(1)).await;

    let (status, job) = run_once_and_replay(&app, json!(["SLOW1"])).await;

    assert_eq!(status, 504);
    assert_eq!(job["status"], "timed_out");
    assert_eq!(job["upstream_status"], json!(null));
    let error = job["error"].as_str().unwrap_or_default().to_lowercase();
    let says_how_long = ["1s", "1 s", "1000ms", "1000 ms", "1 second"]
        .iter()
        .any(|d| error.contains(d));
    assert!(says_how_long, "error does not say after how long: {error}");
}

#[tokio::test]
async fn a_delayed_success_is_recorded_as_succeeded_with_its_duration() {
    let app = TestApp::spawn().await;

    let (status, job) = run_once_and_replay(&app, json!(["DELAY200-A"])).await;

    assert_eq!(status, 201);
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["upstream_status"], 200);
    assert_eq!(job["error"], json!(null));
    assert!(
        job["duration_ms"].as_u64().expect("duration_ms") >= 200,
        "{job}"
    );
}
