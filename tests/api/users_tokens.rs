//! User management (admin) and personal API tokens.

use serde_json::json;

use crate::helpers::{list_of, password_of, TestApp};

#[tokio::test]
async fn an_admin_creates_lists_and_updates_users() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let new_user =
        json!({"username": "olivia", "password": "olivia-pw-123456", "role": "operator"});

    // Act
    let created = admin.post_json("/api/v1/users", &new_user).await;
    let listed = admin.get("/api/v1/users").await;
    let promoted = admin
        .patch_json("/api/v1/users/olivia", &json!({"role": "auditor"}))
        .await;

    // Assert
    let user = &created.expect(201)["user"];
    assert_eq!(user["username"], "olivia");
    assert_eq!(user["role"], "operator");
    assert_eq!(user["disabled"], false);
    assert!(user["created_at"].is_string());
    assert!(!created.text().contains("olivia-pw-123456"));
    let listed = listed.expect(200);
    let users = list_of(&listed, "users");
    let names: Vec<_> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default())
        .collect();
    assert!(
        names.contains(&"admin") && names.contains(&"olivia"),
        "{listed}"
    );
    assert_eq!(promoted.expect(200)["user"]["role"], "auditor");
    let me = app
        .login("olivia", "olivia-pw-123456")
        .await
        .get("/api/v1/me")
        .await;
    assert_eq!(me.expect(200)["user"]["role"], "auditor");
}

#[tokio::test]
async fn a_changed_password_replaces_the_old_one() {
    let app = TestApp::spawn().await;
    let operator = app.create_user("operator").await;
    let path = format!("/api/v1/users/{}", operator.username);

    let reply = app
        .admin()
        .await
        .patch_json(&path, &json!({"password": "brand-new-pw-98765"}))
        .await;

    assert_eq!(
        reply.expect(200)["user"]["username"],
        operator.username.as_str()
    );
    app.try_login(&operator.username, &password_of(&operator.username))
        .await
        .expect_problem(401, "invalid_credentials");
    app.login(&operator.username, "brand-new-pw-98765").await;
}

#[tokio::test]
async fn a_disabled_user_can_no_longer_log_in_nor_use_tokens_or_sessions() {
    // Arrange
    let app = TestApp::spawn().await;
    let operator = app.create_user("operator").await;
    let (_, token) = operator.create_token("script").await;
    app.bearer(&token)
        .get("/api/v1/me")
        .await
        .assert_status(200);
    let path = format!("/api/v1/users/{}", operator.username);

    // Act
    let reply = app
        .admin()
        .await
        .patch_json(&path, &json!({"disabled": true}))
        .await;

    // Assert
    assert_eq!(reply.expect(200)["user"]["disabled"], true);
    app.try_login(&operator.username, &password_of(&operator.username))
        .await
        .expect_problem(401, "invalid_credentials");
    app.bearer(&token)
        .get("/api/v1/me")
        .await
        .expect_problem(401, "unauthenticated");
    operator
        .get("/api/v1/me")
        .await
        .expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn an_api_token_is_shown_once_works_as_bearer_and_stops_working_when_deleted() {
    // Arrange
    let app = TestApp::spawn().await;
    let operator = app.create_user("operator").await;

    // Act
    let created = operator
        .post_json("/api/v1/tokens", &json!({"name": "ci"}))
        .await;
    let created = created.expect(201);
    let token = created["token"].as_str().expect("token").to_owned();
    let id = match &created["id"] {
        serde_json::Value::String(id) => id.clone(),
        other => other.to_string(),
    };
    let me = app.bearer(&token).get("/api/v1/me").await;
    let listed = operator.get("/api/v1/tokens").await;
    let deleted = operator.delete(&format!("/api/v1/tokens/{id}")).await;

    // Assert
    assert_eq!(created["name"], "ci");
    assert!(!token.is_empty());
    assert_eq!(
        me.expect(200)["user"]["username"],
        operator.username.as_str()
    );
    let listed_body = listed.expect(200);
    assert!(!listed.text().contains(&token), "the list shows the secret");
    let tokens = list_of(&listed_body, "tokens");
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["name"], "ci");
    assert_eq!(tokens[0]["id"], created["id"]);
    assert!(tokens[0].get("token").is_none());
    deleted.assert_status(204);
    app.bearer(&token)
        .get("/api/v1/me")
        .await
        .expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn the_command_line_goes_through_the_user_rules_and_keeps_an_enabled_admin() {
    // Arrange: a store whose only admin is `admin`.
    let store = std::sync::Arc::new(crate::store::TestStore::new().await);
    let _app = TestApp::spawn_on(store.clone(), |_| {}).await;
    let cli = |args: &'static [&'static str]| {
        let store = store.clone();
        async move { crate::legacy::cli(&store, args).await }
    };

    // Act and assert: the last enabled admin can be neither disabled nor demoted.
    let refused = cli(&["users", "disable", "admin"]).await;
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("last enabled admin"),
        "{}",
        refused.all_output()
    );
    cli(&["users", "set-role", "admin", "operator"])
        .await
        .expect_code(2);
    // A role the console does not know is refused before anything is opened.
    cli(&["users", "add", "olga", "--role", "nobody"])
        .await
        .expect_code(2);
    cli(&["users", "add", "root2", "--role", "admin"])
        .await
        .expect_code(0);
    cli(&["users", "disable", "admin"]).await.expect_code(0);
    cli(&["users", "disable", "root2"]).await.expect_code(2);
}

#[tokio::test]
async fn a_token_that_is_not_valid_is_told_so_rather_than_asked_to_log_in() {
    // Arrange
    let app = TestApp::spawn().await;
    let operator = app.create_user("operator").await;
    let (id, token) = operator.create_token("script").await;
    operator
        .delete(&format!("/api/v1/tokens/{id}"))
        .await
        .assert_status(204);

    // Act
    let unknown = app.bearer("tms_no-such-token").get("/api/v1/me").await;
    let revoked = app.bearer(&token).get("/api/v1/me").await;
    let anonymous = app.get("/api/v1/me").await;

    // Assert: the same status and code the spec fixes; only the detail differs.
    for reply in [&unknown, &revoked] {
        let problem = reply.expect_problem(401, "unauthenticated");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("token is not valid"), "{detail}");
        assert!(detail.contains("revoked"), "{detail}");
        assert_eq!(problem["type"], "about:blank");
    }
    let problem = anonymous.expect_problem(401, "unauthenticated");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("authentication is required"), "{detail}");
}
