//! Passwords and tokens never reach the store or the logs; the process
//! prints its generated admin password and stops cleanly on SIGTERM.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{action_body, free_port, new_key, ServerProcess, TestStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_token_reaches_the_database_file_or_the_logs() {
    // Arrange
    let admin_password = "Adm1n-Secret-Pa55word-7q";
    let operator_password = "Operat0r-Secret-Pa55word-9z";
    let wrong_password = "Wr0ng-Secret-Pa55word-3k";
    let typed_token = "typed-upstream-token-5x";
    let store = TestStore::new().await;
    let env = [("TMS_ADMIN_PASSWORD", admin_password)];
    let mut server = ServerProcess::start(&store, free_port(), "server.log", &env).await;

    // Act: log in, make a user and a token, run actions in every outcome.
    server
        .try_login("admin", wrong_password)
        .await
        .assert_status(401);
    let admin = server.login("admin", admin_password).await;
    let operator = json!({"username": "olga", "password": operator_password, "role": "operator"});
    admin
        .post_json("/api/v1/users", &operator)
        .await
        .assert_status(201);
    server.login("olga", operator_password).await;
    let (_, api_token) = admin.create_token("ci").await;
    let script = server.bearer(&api_token);
    for cids in [
        json!(["C1001"]),
        json!(["FAIL1"]),
        json!(["REJECT1"]),
        json!(["SLOW1"]),
    ] {
        let mut body = action_body("Trans-Begin", cids);
        body["token"] = json!(typed_token);
        let reply = script.set_action(&new_key(), &body).await;
        assert!(matches!(reply.status, 201 | 502 | 504), "{}", reply.text());
    }
    let exit = server.terminate().await;

    // Assert
    assert_eq!(exit, Some(0), "log:\n{}", server.log());
    let mut haystacks = vec![(
        "the log".to_owned(),
        std::fs::read(&server.log_path).expect("log"),
    )];
    haystacks.push(("the store".to_owned(), store.dump()));
    assert!(haystacks.len() >= 2, "the database file is missing");
    for secret in [
        admin_password,
        operator_password,
        wrong_password,
        typed_token,
        &api_token,
        "sandbox-token",
    ] {
        for (name, bytes) in &haystacks {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{secret:?} appears in {name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_admin_password_is_printed_once_and_logs_in() {
    // Arrange
    let store = TestStore::new().await;

    // Act
    let server = ServerProcess::start(&store, free_port(), "server.log", &[]).await;

    // Assert
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let log = server.log();
        let lines: Vec<String> = log
            .lines()
            .filter(|line| line.contains("admin password: "))
            .map(str::to_owned)
            .collect();
        if !lines.is_empty() || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(lines.len(), 1, "log:\n{}", server.log());
    let after = lines[0]
        .split("admin password: ")
        .nth(1)
        .unwrap_or_default();
    let password = after
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_matches('"');
    assert!(!password.is_empty(), "no password on: {}", lines[0]);
    server.login("admin", password).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_the_server_down_with_exit_code_zero() {
    let store = TestStore::new().await;
    let env = [("TMS_ADMIN_PASSWORD", "whatever-pass-123")];
    let mut server = ServerProcess::start(&store, free_port(), "server.log", &env).await;

    let exit = server.terminate().await;

    assert_eq!(exit, Some(0), "log:\n{}", server.log());
}
