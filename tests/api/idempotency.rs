//! The `Idempotency-Key` rules of SPEC §3: replay, in flight, reuse, malformed keys.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{action_body, new_key, send, Session, TestApp};

/// `POST /api/v1/actions` with the `Idempotency-Key` header given raw, or not at all.
async fn post_action_with_key_header(
    session: &Session,
    key: Option<&str>,
) -> crate::helpers::Reply {
    let body = action_body("Trans-Begin", json!(["C1001"]));
    let mut request = session
        .request(Method::POST, "/api/v1/actions")
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    send(request).await
}

#[tokio::test]
async fn a_replay_returns_the_original_status_and_body_byte_for_byte() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let key = new_key();
    let body = action_body("Trans-Begin", json!(["C1001", "C1002"]));
    let original = admin.set_action(&key, &body).await;
    original.assert_status(201);

    // Act
    let replay = admin.set_action(&key, &body).await;

    // Assert
    assert!(!original.replayed());
    assert!(replay.replayed(), "replay lacks Idempotent-Replayed: true");
    assert_eq!(replay.status, 201);
    assert_eq!(replay.body, original.body, "replayed body differs");
    assert_eq!(admin.jobs("").await.len(), 1);
    assert_eq!(app.sandbox_requests().await, 1);
}

#[tokio::test]
async fn a_quoted_key_is_the_same_key_as_the_bare_value() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let body = action_body("Trans-Begin", json!(["C1001"]));
    let original = admin.set_action("\"abc-123\"", &body).await;

    let replay = admin.set_action("abc-123", &body).await;

    original.assert_status(201);
    assert!(replay.replayed());
    assert_eq!(replay.body, original.body);
    assert_eq!(admin.jobs("").await.len(), 1);
    assert_eq!(app.sandbox_requests().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_while_the_first_request_is_in_flight_gets_409_request_in_progress() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let key = new_key();
    let body = action_body("Trans-Begin", json!(["DELAY1500-x"]));
    let first = {
        let (admin, key, body) = (admin.clone(), key.clone(), body.clone());
        tokio::spawn(async move { admin.set_action(&key, &body).await })
    };
    let pending = admin.wait_for_pending_job().await;

    // Act
    let second = admin.set_action(&key, &body).await;

    // Assert
    let problem = second.expect_problem(409, "request_in_progress");
    assert_eq!(problem["job_id"], pending["job_id"]);
    let first = first.await.expect("first request");
    assert_eq!(first.expect(201)["job"]["job_id"], pending["job_id"]);
    let after = admin.set_action(&key, &body).await;
    assert!(after.replayed());
    assert_eq!(after.body, first.body);
    assert_eq!(admin.jobs("").await.len(), 1);
    assert_eq!(app.sandbox_requests().await, 1);
}

#[tokio::test]
async fn the_same_key_with_a_different_payload_gets_422_idempotency_key_reused() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let key = new_key();
    admin
        .set_action(&key, &action_body("Trans-Begin", json!(["C1001", "C1002"])))
        .await
        .assert_status(201);
    let other_cids = action_body("Trans-Begin", json!(["C1001"]));
    let other_action = action_body("Suspend", json!(["C1001", "C1002"]));
    let other_cluster =
        json!({"cluster": "elsewhere", "action": "Trans-Begin", "cids": ["C1001", "C1002"]});

    // Act
    let replies = [
        admin.set_action(&key, &other_cids).await,
        admin.set_action(&key, &other_action).await,
        admin.set_action(&key, &other_cluster).await,
    ];

    // Assert
    for reply in &replies {
        reply.expect_problem(422, "idempotency_key_reused");
    }
    assert_eq!(admin.jobs("").await.len(), 1);
    assert_eq!(app.sandbox_requests().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_with_a_different_payload_while_the_first_is_pending_gets_422() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let key = new_key();
    let first = {
        let (admin, key) = (admin.clone(), key.clone());
        tokio::spawn(async move {
            let body = action_body("Trans-Begin", json!(["DELAY1500-y"]));
            admin.set_action(&key, &body).await
        })
    };
    admin.wait_for_pending_job().await;

    // Act
    let reply = admin
        .set_action(&key, &action_body("Trans-Begin", json!(["C1001"])))
        .await;

    // Assert
    reply.expect_problem(422, "idempotency_key_reused");
    first.await.expect("first request").assert_status(201);
    assert_eq!(admin.jobs("").await.len(), 1);
    assert_eq!(app.sandbox_requests().await, 1);
}

#[tokio::test]
async fn reordered_repeated_or_string_form_cids_under_the_same_key_replay_the_job() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let key = new_key();
    let original = admin
        .set_action(&key, &action_body("Trans-Begin", json!(["C1", "C2"])))
        .await;
    original.assert_status(201);

    // Act
    let replies = [
        admin
            .set_action(&key, &action_body("Trans-Begin", json!(["C2", "C1"])))
            .await,
        admin
            .set_action(&key, &action_body("Trans-Begin", json!(["C1", "C2", "C1"])))
            .await,
        admin
            .set_action(&key, &action_body("Trans-Begin", json!("C1, C2")))
            .await,
        admin
            .set_action(&key, &action_body("Trans-Begin", json!("C2\nC1 C2")))
            .await,
    ];

    // Assert
    for reply in &replies {
        assert_eq!(reply.status, 201, "{}", reply.text());
        assert!(reply.replayed());
        assert_eq!(reply.body, original.body);
    }
    assert_eq!(admin.jobs("").await.len(), 1);
    assert_eq!(app.sandbox_requests().await, 1);
}

#[tokio::test]
async fn a_missing_or_empty_key_gets_400_missing_idempotency_key() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let replies = [
        post_action_with_key_header(&admin, None).await,
        post_action_with_key_header(&admin, Some("")).await,
        post_action_with_key_header(&admin, Some("\"\"")).await,
    ];

    for reply in &replies {
        reply.expect_problem(400, "missing_idempotency_key");
    }
    assert!(admin.jobs("").await.is_empty());
    assert_eq!(app.sandbox_requests().await, 0);
}

#[tokio::test]
async fn a_key_with_a_space_or_longer_than_255_characters_gets_400_invalid_idempotency_key() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let replies = [
        post_action_with_key_header(&admin, Some("abc def")).await,
        post_action_with_key_header(&admin, Some(&"k".repeat(256))).await,
        post_action_with_key_header(&admin, Some("tab\tinside")).await,
    ];

    for reply in &replies {
        reply.expect_problem(400, "invalid_idempotency_key");
    }
    assert!(admin.jobs("").await.is_empty());
    assert_eq!(app.sandbox_requests().await, 0);
}

#[tokio::test]
async fn a_key_of_255_visible_characters_is_accepted() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let reply = post_action_with_key_header(&admin, Some(&"k".repeat(255))).await;

    assert_eq!(reply.expect(201)["job"]["status"], "succeeded");
}

#[tokio::test]
async fn the_same_key_used_by_two_users_makes_two_jobs() {
    // Arrange
    let app = TestApp::spawn_with(|c| c.duplicate_guard_window = std::time::Duration::ZERO).await;
    let admin = app.admin().await;
    let operator = app.create_user("operator").await;
    let body = action_body("Trans-Begin", json!(["C1001"]));

    // Act
    let by_admin = admin.set_action("shared-key", &body).await;
    let by_operator = operator.set_action("shared-key", &body).await;

    // Assert
    let (a, b) = (by_admin.expect(201), by_operator.expect(201));
    assert!(!by_admin.replayed() && !by_operator.replayed());
    assert_ne!(a["job"]["job_id"], b["job"]["job_id"]);
    assert_eq!(b["job"]["user"], operator.username.as_str());
    assert_eq!(admin.jobs("").await.len(), 2);
    assert_eq!(app.sandbox_requests().await, 2);
}
