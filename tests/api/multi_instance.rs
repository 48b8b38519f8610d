//! Several instances behind a load balancer, sharing one store: the
//! exactly-once rule, sessions and login throttling hold across them, and a
//! crashed instance's job is resolved by another.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::helpers::{
    free_port, new_key, SandboxServer, ServerProcess, TestApp, TestStore, ADMIN_PASSWORD,
};

fn shared_body(cids: Value) -> Value {
    json!({"cluster": "shared", "action": "Trans-Begin", "cids": cids, "token": "sandbox-token"})
}

/// Two in-process instances on one fresh store and one shared sandbox.
async fn two_instances(sandbox: &SandboxServer) -> (TestApp, TestApp) {
    let store = Arc::new(TestStore::new().await);
    let a = TestApp::spawn_on(store.clone(), |c| sandbox.configure(c)).await;
    let b = TestApp::spawn_on(store, |c| sandbox.configure(c)).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_sent_to_two_instances_at_once_makes_one_job_and_one_upstream_call() {
    // Arrange
    let sandbox = SandboxServer::start().await;
    let (a, b) = two_instances(&sandbox).await;
    let on_a = a.admin().await;
    let on_b = b.admin().await;
    let key = new_key();
    let body = shared_body(json!(["DELAY300-X1", "C7001"]));

    // Act: 20 requests with one key, alternating between the instances.
    let replies = futures::future::join_all((0..20).map(|i| {
        let session = if i % 2 == 0 { &on_a } else { &on_b };
        session.set_action(&key, &body)
    }))
    .await;

    // Assert
    let mut job_ids = std::collections::HashSet::new();
    for reply in &replies {
        match reply.status {
            201 => {
                job_ids.insert(
                    reply.json()["job"]["job_id"]
                        .as_str()
                        .expect("job_id")
                        .to_owned(),
                );
            }
            409 => {
                let problem = reply.expect_problem(409, "request_in_progress");
                job_ids.insert(problem["job_id"].as_str().expect("job_id").to_owned());
            }
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    assert_eq!(job_ids.len(), 1, "answers named several jobs: {job_ids:?}");
    assert_eq!(on_a.jobs("").await.len(), 1);
    assert_eq!(on_b.jobs("").await.len(), 1);
    assert_eq!(sandbox.requests().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_keys_for_the_same_customers_on_two_instances_run_once() {
    // The recent-duplicate guard and the per-customer lock are decided by the
    // store, so two instances cannot both start the same intent.
    let sandbox = SandboxServer::start().await;
    let (a, b) = two_instances(&sandbox).await;
    let on_a = a.admin().await;
    let on_b = b.admin().await;
    let body = shared_body(json!(["DELAY200-Y1", "C8001"]));

    let replies = futures::future::join_all((0..10).map(|i| {
        let session = if i % 2 == 0 { &on_a } else { &on_b };
        let key = new_key();
        let body = body.clone();
        async move { session.set_action(&key, &body).await }
    }))
    .await;

    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status != 201) {
        let code = reply.json()["code"].as_str().unwrap_or_default().to_owned();
        assert!(
            code == "recent_duplicate" || code == "cids_busy",
            "{}",
            reply.text()
        );
    }
    assert_eq!(sandbox.requests().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_started_on_one_instance_works_on_the_other() {
    let sandbox = SandboxServer::start().await;
    let (a, b) = two_instances(&sandbox).await;

    let session = a.admin().await.via(&b);

    let me = session.get("/api/v1/me").await.expect(200);
    assert_eq!(me["user"]["username"], "admin");
    let reply = session
        .set_action(&new_key(), &shared_body(json!(["C9001"])))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    session
        .post_json("/api/v1/tokens", &json!({"name": "x"}))
        .await
        .assert_status(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failed_logins_spread_over_two_instances_throttle_both() {
    let sandbox = SandboxServer::start().await;
    let (a, b) = two_instances(&sandbox).await;

    for attempt in 0..5 {
        let instance = if attempt < 3 { &a } else { &b };
        instance
            .try_login("admin", "wrong-password")
            .await
            .expect_problem(401, "invalid_credentials");
    }

    a.try_login("admin", ADMIN_PASSWORD)
        .await
        .expect_problem(429, "rate_limited");
    b.try_login("admin", ADMIN_PASSWORD)
        .await
        .expect_problem(429, "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_an_instance_killed_mid_action_is_resolved_by_the_other() {
    // Arrange: two server processes on one store; a SLOW action on the first.
    let store = TestStore::new().await;
    let env = [
        ("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("TMS_UPSTREAM_TIMEOUT", "2s"),
    ];
    let mut first = ServerProcess::start(&store, free_port(), "first.log", &env).await;
    let second = ServerProcess::start(&store, free_port(), "second.log", &env).await;
    let admin = first.login("admin", ADMIN_PASSWORD).await;
    let request = admin
        .request(reqwest::Method::POST, "/api/v1/actions")
        .header("Idempotency-Key", new_key())
        .header("content-type", "application/json")
        .body(json!({"cluster": "sandbox", "action": "Suspend", "cids": ["SLOW-K1"]}).to_string());
    let in_flight = tokio::spawn(request.send());
    let job_id = admin.wait_for_pending_job().await["job_id"]
        .as_str()
        .expect("job_id")
        .to_owned();

    // Act
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("wait");
    let _ = in_flight.await;

    // Assert: within timeout + 5 s + one sweep period, the second resolves it.
    let on_second = admin.via(&second);
    let job = on_second
        .wait_for_job(&job_id, |j| j["status"] != "pending", || second.log())
        .await;
    assert_eq!(job["status"], "unknown", "{job}");
    assert!(job["error"]
        .as_str()
        .unwrap_or_default()
        .contains("interrupted"));
    assert_eq!(on_second.jobs("").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_waits_for_the_deadline_of_the_instance_that_started_the_job() {
    // Arrange: the first instance gives clusters 30 s; the second only 1 s.
    let store = TestStore::new().await;
    let mut first = ServerProcess::start(
        &store,
        free_port(),
        "first.log",
        &[
            ("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("TMS_UPSTREAM_TIMEOUT", "30s"),
        ],
    )
    .await;
    let second = ServerProcess::start(
        &store,
        free_port(),
        "second.log",
        &[("TMS_UPSTREAM_TIMEOUT", "1s")],
    )
    .await;
    let admin = first.login("admin", ADMIN_PASSWORD).await;
    let request = admin
        .request(reqwest::Method::POST, "/api/v1/actions")
        .header("Idempotency-Key", new_key())
        .header("content-type", "application/json")
        .body(json!({"cluster": "sandbox", "action": "Suspend", "cids": ["SLOW-D1"]}).to_string());
    let in_flight = tokio::spawn(request.send());
    let job_id = admin.wait_for_pending_job().await["job_id"]
        .as_str()
        .expect("job_id")
        .to_owned();

    // Act: the first instance dies; the second sweeps every 500 ms.
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("wait");
    let _ = in_flight.await;
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;

    // Assert: past the second's own timeout plus grace (6 s), the job is
    // still pending: its deadline is the first instance's (35 s).
    let job = admin
        .via(&second)
        .get(&format!("/api/v1/jobs/{job_id}"))
        .await
        .expect(200)["job"]
        .clone();
    assert_eq!(job["status"], "pending", "{job}\n{}", second.log());
}
