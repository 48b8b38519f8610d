//! Logging in and out, throttling, CSRF, bearer tokens.

use serde_json::json;

use crate::helpers::{action_body, new_key, TestApp, ADMIN_PASSWORD};

#[tokio::test]
async fn logging_in_returns_the_user_and_a_csrf_token_and_sets_a_strict_http_only_cookie() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let reply = app.try_login("admin", ADMIN_PASSWORD).await;

    // Assert
    let body = reply.expect(200);
    let user = &body["user"];
    assert_eq!(user["username"], "admin");
    assert_eq!(user["role"], "admin");
    assert_eq!(user["disabled"], false);
    let created_at = user["created_at"].as_str().expect("created_at");
    chrono::DateTime::parse_from_rfc3339(created_at).expect("created_at is RFC 3339");
    assert!(!body["csrf_token"].as_str().unwrap_or_default().is_empty());
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let cookie = reply.header("set-cookie").expect("a session cookie");
    let lower = cookie.to_ascii_lowercase();
    assert!(lower.contains("httponly"), "cookie not HttpOnly: {cookie}");
    assert!(
        lower.contains("samesite=strict"),
        "cookie not SameSite=Strict: {cookie}"
    );
    assert!(
        !lower
            .split(';')
            .any(|attribute| attribute.trim() == "secure"),
        "Secure by default: {cookie}"
    );
}

#[tokio::test]
async fn a_wrong_password_gets_401_invalid_credentials() {
    let app = TestApp::spawn().await;

    let wrong_password = app.try_login("admin", "not-the-password").await;
    let unknown_user = app.try_login("nobody", ADMIN_PASSWORD).await;

    wrong_password.expect_problem(401, "invalid_credentials");
    unknown_user.expect_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn five_failed_logins_lock_the_username_with_429_even_for_the_right_password() {
    // Arrange
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        app.try_login("admin", "wrong-password")
            .await
            .expect_problem(401, "invalid_credentials");
    }

    // Act
    let reply = app.try_login("admin", ADMIN_PASSWORD).await;

    // Assert
    let problem = reply.expect_problem(429, "rate_limited");
    let retry_after_s = problem["retry_after_s"].as_f64().expect("retry_after_s");
    assert!(retry_after_s > 0.0 && retry_after_s <= 900.0, "{problem}");
    let header: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(header > 0 && header <= 900, "Retry-After: {header}");
}

#[tokio::test]
async fn a_cookie_authenticated_post_without_the_csrf_header_gets_403_csrf_failed() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    // Act
    let reply = admin
        .without_csrf()
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["C1001"])))
        .await;

    // Assert
    reply.expect_problem(403, "csrf_failed");
    assert!(admin.jobs("").await.is_empty());
    assert_eq!(app.sandbox_requests().await, 0);
}

#[tokio::test]
async fn a_bearer_request_needs_no_csrf_token() {
    // Arrange
    let app = TestApp::spawn().await;
    let (_, token) = app.admin().await.create_token("script").await;
    let script = app.bearer(&token);

    // Act
    let reply = script
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["C1001"])))
        .await;

    // Assert
    let body = reply.expect(201);
    assert_eq!(body["job"]["user"], "admin");
    assert_eq!(body["job"]["status"], "succeeded");
}

#[tokio::test]
async fn logging_out_ends_the_session() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin.get("/api/v1/me").await.assert_status(200);

    // Act
    let reply = admin.delete("/api/v1/session").await;

    // Assert
    reply.assert_status(204);
    admin
        .get("/api/v1/me")
        .await
        .expect_problem(401, "unauthenticated");
    admin
        .get("/api/v1/jobs")
        .await
        .expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn me_returns_the_current_user_and_requires_a_login() {
    let app = TestApp::spawn().await;
    let operator = app.create_user("operator").await;

    let me = operator.get("/api/v1/me").await;
    let anonymous = app.get("/api/v1/me").await;

    let body = me.expect(200);
    assert_eq!(body["user"]["username"], operator.username.as_str());
    assert_eq!(body["user"]["role"], "operator");
    assert_eq!(body["user"]["disabled"], false);
    assert!(body["user"]["created_at"].is_string());
    anonymous.expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn failed_logins_of_invented_usernames_are_forgotten_once_older_than_the_window() {
    // Arrange: a failed login for each of many names nobody has, some of
    // them older than the throttling window.
    let store = crate::store::TestStore::new().await;
    let db = tms_dashboard::store::Db::open(&store.url, &Default::default())
        .await
        .expect("store");
    let now = tms_dashboard::time::now_millis();
    let window = chrono::Duration::minutes(15);
    for n in 0..40 {
        let at = if n < 30 {
            now - chrono::Duration::minutes(20)
        } else {
            now
        };
        db.record_login_failure(&format!("invented-{n}"), at, window, 5)
            .await
            .expect("failure");
    }
    assert_eq!(db.count_login_failures().await.expect("count"), 40);

    // Act: the sweep's clean-up.
    db.delete_expired_sessions(now, now - window)
        .await
        .expect("clean-up");

    // Assert: only the recent ones are left.
    assert_eq!(db.count_login_failures().await.expect("count"), 10);
}
