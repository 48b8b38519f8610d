//! Single sign-on against a real OpenID provider (the certified
//! `oidc-provider` package under Node.js, `tests/oidc-provider/`), driven in
//! headless Chromium: who gets a session and with which role, and a clear
//! page without a session for everything that goes wrong.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tms_dashboard::config::OidcConfig;
use tms_dashboard::domain::secret::Secret;

use crate::browser::{Browser, WAIT};
use crate::helpers::{
    action_body, free_port, list_of, new_key, oidc_provider_dir, require, Needs, TestApp,
    ADMIN_PASSWORD, INSTALL_HINT,
};

const CLIENT_ID: &str = "tms-dashboard";
const CLIENT_SECRET: &str = "test-client-secret";

/// The provider, its users in a JSON file the test may rewrite, killed on drop.
struct Provider {
    port: u16,
    child: Child,
    users: tempfile::NamedTempFile,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// Starts the provider on `port` for the app at `app` and waits until
    /// its discovery document answers (`sso_app` checked that it is installed).
    async fn start(port: u16, app: &str, users: Value, env: &[(&str, &str)]) -> Provider {
        let file = tempfile::NamedTempFile::new().expect("users file");
        std::fs::write(file.path(), users.to_string()).expect("users");
        let child = Command::new("node")
            .arg("server.js")
            .current_dir(oidc_provider_dir())
            .env("PORT", port.to_string())
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URI", format!("{app}/auth/oidc/callback"))
            .env("USERS_FILE", file.path())
            .env("NODE_NO_WARNINGS", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("node could not start the test provider ({e}). {INSTALL_HINT}")
            });
        let mut provider = Provider {
            port,
            child,
            users: file,
        };
        let url = format!("{}/.well-known/openid-configuration", issuer(port));
        let started = Instant::now();
        loop {
            if let Some(status) = provider.child.try_wait().expect("try_wait") {
                panic!("the test provider exited with {status}");
            }
            if let Ok(r) = reqwest::get(&url).await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(started.elapsed() < WAIT, "the test provider never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        provider.port = port;
        provider
    }

    /// Replaces the provider's users; read at the next sign-in.
    fn set_users(&self, users: Value) {
        std::fs::write(self.users.path(), users.to_string()).expect("users");
    }
}

fn issuer(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The `[oidc]` table of the example in docs/configuration.md, for the provider on `port`.
fn oidc_config(port: u16, local_login: bool) -> OidcConfig {
    let mut oidc = OidcConfig::new(&issuer(port), CLIENT_ID);
    oidc.client_secret_env = Some("TMS_OIDC_CLIENT_SECRET".into());
    oidc.client_secret = Some(Secret::new(CLIENT_SECRET));
    oidc.label = "Company SSO".into();
    oidc.scopes = ["openid", "profile", "email", "groups"]
        .map(String::from)
        .to_vec();
    oidc.roles = [
        ("tms-admins", "admin"),
        ("tms-operators", "operator"),
        ("tms-auditors", "auditor"),
    ]
    .into_iter()
    .map(|(g, r)| (g.to_owned(), r.to_owned()))
    .collect();
    oidc.local_login = local_login;
    oidc
}

fn test_users() -> Value {
    json!({
        "ana": {"groups": ["staff", "tms-operators"], "email": "ana@example.com"},
        "bo": {"groups": ["tms-auditors"]},
        "cy": {"groups": ["tms-admins", "tms-auditors"]},
        "eve": {"groups": ["staff"]},
        "admin": {"groups": ["tms-admins"]},
    })
}

/// An app configured for single sign-on and its provider.
async fn sso_app(local_login: bool, provider_env: &[(&str, &str)]) -> (TestApp, Provider) {
    // Before the app starts: a missing browser or provider fails here, at once.
    require(Needs::BrowserAndProvider);
    let port = free_port();
    let app = TestApp::spawn_with(|c| c.oidc = Some(oidc_config(port, local_login))).await;
    let provider = Provider::start(port, &app.address, test_users(), provider_env).await;
    (app, provider)
}

/// Clicks `#sso-login` and goes through the provider's pages as `login`
/// (its sign-in form, then consent; a provider session skips the form)
/// until the browser is back on the console showing a user or an error.
async fn sign_in(browser: &Browser, provider: &Provider, login: &str) {
    browser.goto("/login").await;
    browser.click("#sso-login").await;
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "the sign-in as {login} never came back"
        );
        let url = browser.client.current_url().await.expect("url");
        if url.port() == Some(provider.port) {
            if browser.exists("input[name='login']").await {
                browser.type_into("input[name='login']", login).await;
                browser
                    .type_into("input[name='password']", "any-password")
                    .await;
                browser.click("button.login-submit").await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            } else if browser.exists("button.login-submit").await {
                browser.click("button.login-submit").await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        } else if browser.exists("#current-user").await || browser.exists("#error-message").await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The role the page header shows (styled in capitals).
async fn role(browser: &Browser) -> String {
    browser.text("#current-role").await.to_lowercase()
}

/// The browser holds no session: the console sends it to the login page.
async fn assert_no_session(browser: &Browser) {
    browser.goto("/").await;
    assert_eq!(browser.wait_for_path("/login").await, "/login?next=%2F");
}

/// The error page's message, after checking it is the sign-in failure page.
async fn sign_in_failure(browser: &Browser) -> String {
    assert!(browser.text("h1").await.contains("Sign-in failed"));
    assert!(browser.exists("#back-to-login").await);
    browser.text("#error-message").await
}

#[tokio::test]
async fn an_operator_signs_in_with_sso_and_runs_an_action_under_their_name() {
    // Arrange
    let (app, provider) = sso_app(true, &[]).await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "oidc-operator").await;
    browser.goto("/login").await;
    assert_eq!(browser.text("#sso-login").await, "Company SSO");
    assert!(browser.exists("#password").await);
    browser.screenshot("login").await;

    // Act
    sign_in(&browser, &provider, "ana").await;

    // Assert: a session as an operator, created at this first login.
    assert_eq!(browser.text("#current-user").await, "ana");
    assert_eq!(role(&browser).await, "operator");
    browser.wait_for_exact_path("/").await;
    browser
        .fill_customer_set("Trans-Begin", "C7001 C7002")
        .await;
    browser.click("#set-action").await;
    browser
        .wait_for_text("#confirm-dialog", "2 customer IDs")
        .await;
    browser.click("#confirm-yes").await;
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "success", "{text}");
    let job_id = browser.text("#job-id").await;
    browser.screenshot("result").await;
    let job = admin
        .get(&format!("/api/v1/jobs/{job_id}"))
        .await
        .expect(200);
    assert_eq!(job["job"]["user"], "ana");
    let users = admin.get("/api/v1/users").await.expect(200);
    let ana = list_of(&users, "users")
        .iter()
        .find(|u| u["username"] == "ana")
        .expect("ana was created")
        .clone();
    assert_eq!(ana["role"], "operator");
    // An SSO user has no password to log in with.
    app.try_login("ana", "any-password")
        .await
        .expect_problem(401, "invalid_credentials");
    browser.goto(&format!("/jobs/{job_id}")).await;
    assert_eq!(browser.text("#job-user").await, "ana");
    browser.close().await;
}

#[tokio::test]
async fn an_auditor_signs_in_with_sso_and_gets_no_set_action_form() {
    // Arrange
    let (app, provider) = sso_app(true, &[]).await;
    let browser = Browser::desktop(&app.address, "oidc-auditor").await;

    // Act
    sign_in(&browser, &provider, "bo").await;

    // Assert
    assert_eq!(role(&browser).await, "auditor");
    browser.goto("/").await;
    browser.find("#no-set-action").await;
    assert!(!browser.exists("#set-action").await);
    browser.screenshot("customer-set").await;
    browser.close().await;
}

#[tokio::test]
async fn the_highest_role_of_several_groups_wins() {
    let (app, provider) = sso_app(true, &[]).await;
    let browser = Browser::desktop(&app.address, "oidc-admin").await;

    sign_in(&browser, &provider, "cy").await;

    assert_eq!(role(&browser).await, "admin");
    browser.close().await;
}

#[tokio::test]
async fn a_user_in_no_mapped_group_is_refused_without_a_session() {
    // Arrange
    let (app, provider) = sso_app(true, &[]).await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "oidc-no-role").await;

    // Act
    sign_in(&browser, &provider, "eve").await;

    // Assert
    let message = sign_in_failure(&browser).await;
    assert!(
        message.contains("eve") && message.contains("none of their groups"),
        "{message}"
    );
    browser.screenshot("refused").await;
    assert_no_session(&browser).await;
    let users = admin.get("/api/v1/users").await.expect(200);
    assert!(!users.to_string().contains("\"eve\""), "{users}");
    browser.close().await;
}

#[tokio::test]
async fn a_local_account_is_not_taken_over_by_the_same_name_at_the_provider() {
    let (app, provider) = sso_app(true, &[]).await;
    let browser = Browser::desktop(&app.address, "oidc-takeover").await;

    sign_in(&browser, &provider, "admin").await;

    let message = sign_in_failure(&browser).await;
    assert!(message.contains("local account"), "{message}");
    assert_no_session(&browser).await;
    browser.close().await;
}

#[tokio::test]
async fn a_role_change_at_the_provider_applies_at_the_next_login() {
    // Arrange: ana signs in as an operator, then logs out.
    let (app, provider) = sso_app(true, &[]).await;
    let browser = Browser::desktop(&app.address, "oidc-role-change").await;
    sign_in(&browser, &provider, "ana").await;
    assert_eq!(role(&browser).await, "operator");
    browser.click("#logout").await;
    browser.wait_for_path("/login?logged_out").await;

    // Act: the provider moves her to the auditors.
    provider.set_users(json!({"ana": {"groups": ["tms-auditors"]}}));
    sign_in(&browser, &provider, "ana").await;

    // Assert
    assert_eq!(role(&browser).await, "auditor");
    assert!(!browser.exists("#set-action").await);

    // And out of every mapped group: refused, the role no longer used.
    browser.click("#logout").await;
    browser.wait_for_path("/login?logged_out").await;
    provider.set_users(json!({"ana": {"groups": ["staff"]}}));
    sign_in(&browser, &provider, "ana").await;
    let message = sign_in_failure(&browser).await;
    assert!(message.contains("none of their groups"), "{message}");
    assert_no_session(&browser).await;
    browser.close().await;
}

#[tokio::test]
async fn groups_only_in_userinfo_are_read_from_there() {
    let (app, provider) = sso_app(true, &[("GROUPS_IN", "userinfo")]).await;
    let browser = Browser::desktop(&app.address, "oidc-userinfo").await;

    sign_in(&browser, &provider, "ana").await;

    assert_eq!(browser.text("#current-user").await, "ana");
    assert_eq!(role(&browser).await, "operator");
    browser.close().await;
}

#[tokio::test]
async fn a_forged_state_is_refused_without_a_session() {
    // Arrange: a login under way, the browser at the provider.
    let (app, provider) = sso_app(true, &[]).await;
    let browser = Browser::desktop(&app.address, "oidc-forged-state").await;
    browser.goto("/login").await;
    browser.click("#sso-login").await;
    browser.find("input[name='login']").await;
    assert_eq!(
        browser.client.current_url().await.expect("url").port(),
        Some(provider.port)
    );

    // Act: an answer that does not carry the login's state.
    browser
        .goto("/auth/oidc/callback?code=stolen-code&state=forged-state")
        .await;

    // Assert
    let message = sign_in_failure(&browser).await;
    assert!(message.contains("not valid"), "{message}");
    browser.screenshot("refused").await;
    assert_no_session(&browser).await;
    // Without the browser's login cookie at all: the same refusal.
    app.get("/auth/oidc/callback?code=x&state=y")
        .await
        .assert_status(400);
    browser.close().await;
}

/// Signs in as ana against a provider that tampers with the ID token as
/// `tamper` says, and returns the failure page's message.
async fn refused_id_token(tamper: &str) -> String {
    let (app, provider) = sso_app(true, &[("TAMPER_ID_TOKEN", tamper)]).await;
    let browser = Browser::desktop(&app.address, &format!("oidc-token-{tamper}")).await;
    sign_in(&browser, &provider, "ana").await;
    let message = sign_in_failure(&browser).await;
    browser.screenshot("refused").await;
    assert_no_session(&browser).await;
    browser.close().await;
    message
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_refused() {
    let message = refused_id_token("audience").await;
    assert!(
        message.contains("could not be verified") && message.contains("audience"),
        "{message}"
    );
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let message = refused_id_token("expired").await;
    assert!(
        message.contains("could not be verified") && message.contains("Expired"),
        "{message}"
    );
}

#[tokio::test]
async fn an_id_token_signed_with_another_key_is_refused() {
    let message = refused_id_token("signature").await;
    assert!(
        message.contains("could not be verified") && message.contains("Signature"),
        "{message}"
    );
}

#[tokio::test]
async fn cancelling_at_the_provider_gives_a_clear_page() {
    let (app, _provider) = sso_app(true, &[]).await;
    let browser = Browser::desktop(&app.address, "oidc-cancel").await;
    browser.goto("/login").await;
    browser.click("#sso-login").await;
    browser.find("input[name='login']").await;

    browser.click("a[href*='abort']").await;

    browser.find("#error-message").await;
    let message = sign_in_failure(&browser).await;
    assert!(
        message.contains("refused the sign-in") && message.contains("access_denied"),
        "{message}"
    );
    assert_no_session(&browser).await;
    browser.close().await;
}

#[tokio::test]
async fn a_provider_that_is_down_gives_a_clear_page() {
    // Arrange: nothing listens at the issuer.
    let port = free_port();
    let app = TestApp::spawn_with(|c| c.oidc = Some(oidc_config(port, true))).await;
    let browser = Browser::desktop(&app.address, "oidc-provider-down").await;

    // Act
    browser.goto("/login").await;
    browser.click("#sso-login").await;

    // Assert
    browser.find("#error-message").await;
    let message = sign_in_failure(&browser).await;
    assert!(message.contains("not answering"), "{message}");
    browser.screenshot("down").await;
    assert_no_session(&browser).await;
    app.get("/auth/oidc/login").await.assert_status(503);
    // The password form still works.
    browser.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(browser.text("#current-user").await, "admin");
    browser.close().await;
}

#[tokio::test]
async fn without_local_logins_only_admin_gets_the_password_form() {
    // Arrange
    let port = free_port();
    let app = TestApp::spawn_with(|c| c.oidc = Some(oidc_config(port, false))).await;
    let admin = app.admin().await;
    let operator = "local-operator";
    admin
        .post_json(
            "/api/v1/users",
            &json!({"username": operator, "password": "operator-pass-123", "role": "operator"}),
        )
        .await
        .expect(201);
    let browser = Browser::desktop(&app.address, "oidc-sso-only").await;

    // Act + Assert: the page offers single sign-on only ...
    browser.goto("/login").await;
    assert_eq!(browser.text("#sso-login").await, "Company SSO");
    assert!(!browser.exists("#password").await);
    browser.screenshot("login").await;

    // ... the API refuses local logins but admin's ...
    app.try_login(operator, "operator-pass-123")
        .await
        .expect_problem(403, "local_login_disabled");
    app.try_login("admin", ADMIN_PASSWORD)
        .await
        .assert_status(200);

    // ... and the break-glass form takes admin alone.
    browser.click("#local-login").await;
    browser.find("#admin-only").await;
    browser.type_into("#username", operator).await;
    browser.type_into("#password", "operator-pass-123").await;
    browser.click("#login").await;
    let message = browser
        .wait_for_text("#login-message", "Local logins are turned off")
        .await;
    assert!(message.contains("Company SSO"), "{message}");
    assert!(!browser.exists("#password").await);
    browser.goto("/login?local=1").await;
    browser.screenshot("break-glass").await;
    browser.type_into("#username", "admin").await;
    browser.type_into("#password", ADMIN_PASSWORD).await;
    browser.click("#login").await;
    browser.wait_for_exact_path("/").await;
    assert_eq!(browser.text("#current-user").await, "admin");
    browser.close().await;
}

#[tokio::test]
async fn a_session_from_sso_works_with_the_api_and_its_csrf_token() {
    // Arrange: a session started in the browser, its cookie taken out.
    let (app, provider) = sso_app(true, &[]).await;
    let browser = Browser::desktop(&app.address, "oidc-api").await;
    sign_in(&browser, &provider, "ana").await;
    let cookie = browser
        .client
        .get_named_cookie("tms_session")
        .await
        .expect("session cookie");
    let csrf = browser
        .js("return document.querySelector('meta[name=csrf-token]').content;")
        .await;
    let csrf = csrf.as_str().expect("csrf token").to_owned();
    let client = reqwest::Client::new();

    // Act: a Set Action through the API with the cookie and CSRF token.
    let reply = client
        .post(format!("{}/api/v1/actions", app.address))
        .header("cookie", format!("tms_session={}", cookie.value()))
        .header("x-csrf-token", csrf)
        .header("idempotency-key", new_key())
        .json(&action_body("Trans-Begin", json!(["C7101"])))
        .send()
        .await
        .expect("send");

    // Assert
    assert_eq!(reply.status(), 201);
    let body: Value = reply.json().await.expect("json");
    assert_eq!(body["job"]["user"], "ana");
    browser.close().await;
}
