//! A server killed mid-action: the next one resolves the job as `unknown`.

use serde_json::json;

use crate::helpers::{action_body, free_port, new_key, ServerProcess, TestStore, ADMIN_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_left_pending_by_a_killed_server_becomes_unknown_after_restart_and_replays_502() {
    // Arrange: a SLOW1 action in flight on a server we then SIGKILL.
    let store = TestStore::new().await;
    let port = free_port();
    let env = [
        ("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("TMS_UPSTREAM_TIMEOUT", "3s"),
    ];
    let mut first = ServerProcess::start(&store, port, "first.log", &env).await;
    let admin = first.login("admin", ADMIN_PASSWORD).await;
    let key = new_key();
    let body = action_body("Trans-Begin", json!(["SLOW1"]));
    let in_flight = {
        let request = admin
            .request(reqwest::Method::POST, "/api/v1/actions")
            .header("Idempotency-Key", key.clone())
            .header("content-type", "application/json")
            .body(body.to_string());
        tokio::spawn(async move { request.send().await })
    };
    let pending = admin.wait_for_pending_job().await;
    let job_id = pending["job_id"].as_str().expect("job_id").to_owned();
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("wait");
    assert!(
        in_flight.await.expect("task").is_err(),
        "the killed server answered"
    );

    // Act: restart on the same database and port.
    let env = [
        ("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("TMS_UPSTREAM_TIMEOUT", "1s"),
    ];
    let second = ServerProcess::start(&store, port, "second.log", &env).await;
    let admin = second.login("admin", ADMIN_PASSWORD).await;
    let job = admin
        .wait_for_job(&job_id, |j| j["status"] != "pending", || second.log())
        .await;

    // Assert
    assert_eq!(job["status"], "unknown", "{job}");
    let error = job["error"].as_str().unwrap_or_default();
    assert!(error.contains("interrupted"), "error: {error}");
    assert_eq!(admin.jobs("").await.len(), 1);
    let replay = admin.set_action(&key, &body).await;
    assert!(replay.replayed(), "no Idempotent-Replayed: true");
    let replayed = replay.expect(502);
    assert_eq!(replayed["job"]["job_id"], job_id.as_str());
    assert_eq!(replayed["job"]["status"], "unknown");
    assert_eq!(admin.jobs("").await.len(), 1);
}
