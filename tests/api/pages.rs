//! The web console in a real browser (headless Chromium): login, Customer Set
//! under double clicks and double Enter, outcomes, the audit, roles, and the
//! pages' security. Job counts are checked through the API.

use std::time::Duration;

use serde_json::json;

use crate::browser::Browser;
use crate::helpers::{action_body, new_key, password_of, Session, TestApp, ADMIN_PASSWORD};

const ENTER: &str = "\u{e007}";

/// Runs `count` jobs through the API with distinct CIDs `<prefix><n>`.
async fn run_jobs(session: &Session, action: &str, prefix: &str, count: usize) {
    for n in 0..count {
        let body = action_body(action, json!([format!("{prefix}{n}")]));
        session
            .set_action(&new_key(), &body)
            .await
            .assert_status(201);
    }
}

/// Waits a moment for any stray second request, then returns every job.
async fn settled_jobs(admin: &Session) -> Vec<serde_json::Value> {
    tokio::time::sleep(Duration::from_millis(700)).await;
    admin.jobs("limit=500").await
}

#[tokio::test]
async fn a_bad_password_is_refused_then_the_right_one_logs_in() {
    // Arrange
    let app = TestApp::spawn().await;
    let browser = Browser::desktop(&app.address, "login").await;

    // Act: the console sends a visitor to the login page first.
    browser.goto("/").await;
    let path = browser.wait_for_path("/login").await;
    assert_eq!(path, "/login?next=%2F");
    browser.screenshot("form").await;
    browser.type_into("#username", "admin").await;
    browser.type_into("#password", "not-the-password").await;
    browser.click("#login").await;

    // Assert
    let message = browser
        .wait_for_text("#login-message", "Wrong username or password")
        .await;
    assert!(!message.contains("not-the-password"));
    browser.screenshot("wrong-password").await;
    browser.type_into("#password", ADMIN_PASSWORD).await;
    browser.click("#login").await;
    browser.wait_for_exact_path("/").await;
    assert_eq!(browser.text("#current-user").await, "admin");
    assert_eq!(browser.text("#current-role").await.to_lowercase(), "admin");
    browser.screenshot("customer-set").await;

    // Logging out ends the session.
    browser.click("#logout").await;
    browser.wait_for_path("/login?logged_out").await;
    browser.goto("/jobs").await;
    assert_eq!(browser.wait_for_path("/login").await, "/login?next=%2Fjobs");
    browser.close().await;
}

#[tokio::test]
async fn five_wrong_passwords_throttle_the_login_with_minutes_to_wait() {
    // Arrange
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        app.try_login("admin", "wrong-password")
            .await
            .assert_status(401);
    }
    let browser = Browser::desktop(&app.address, "throttled").await;

    // Act
    browser.goto("/login").await;
    browser.type_into("#username", "admin").await;
    browser.type_into("#password", ADMIN_PASSWORD).await;
    browser.click("#login").await;

    // Assert
    let message = browser
        .wait_for_text("#login-message", "Too many failed attempts")
        .await;
    assert!(message.contains("15 minutes"), "{message}");
    browser.screenshot("login").await;
    browser.close().await;
}

#[tokio::test]
async fn the_happy_path_shows_a_job_id_that_links_to_its_page() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "happy-path").await;
    browser.login("admin", ADMIN_PASSWORD).await;

    // Act
    browser
        .fill_customer_set("Trans-Begin", "C1001, C1002\nC1001")
        .await;
    let count = browser.wait_for_text("#cid-count", "2 valid").await;
    assert!(
        count.contains("0 invalid") && count.contains("1 repeated"),
        "{count}"
    );
    assert!(!browser.find("#token").await.is_displayed().await.unwrap());
    browser.screenshot("filled").await;
    browser.click("#set-action").await;
    let question = browser
        .wait_for_text("#confirm-dialog", "2 customer IDs")
        .await;
    assert!(
        question.contains("Trans-Begin") && question.contains("Sandbox (simulated)"),
        "{question}"
    );
    browser.screenshot("confirm").await;
    browser.click("#confirm-yes").await;

    // Assert
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "success", "{text}");
    let job_id = browser.text("#job-id").await;
    browser.screenshot("result").await;
    let jobs = settled_jobs(&admin).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["job_id"], job_id.as_str());
    assert_eq!(jobs[0]["cids"], json!(["C1001", "C1002"]));

    browser.click("#job-id").await;
    assert_eq!(
        browser.wait_for_path("/jobs/").await,
        format!("/jobs/{job_id}")
    );
    assert_eq!(browser.text("#job-page-id").await, job_id);
    assert_eq!(browser.text("#job-status").await, "succeeded");
    let request = browser.text("#job-request").await;
    assert!(
        request.contains("Authorization: Bearer [redacted]"),
        "{request}"
    );
    assert!(
        request.contains(&format!("Idempotency-Key: {job_id}")),
        "{request}"
    );
    assert!(request.contains("\"action_code\": 1"), "{request}");
    let source = browser.client.source().await.expect("source");
    assert!(
        !source.contains("sandbox-token"),
        "the cluster token leaked"
    );
    browser.screenshot("job-page").await;
    browser
        .screenshot_at("#request-title", "job-page-request")
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_double_click_on_set_action_makes_one_job() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "double-click-set-action").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.fill_customer_set("Suspend", "C2001 C2002").await;

    // Act
    browser.double_click("#set-action").await;
    browser
        .wait_until(
            "the confirmation is open",
            "return document.getElementById('confirm-dialog').open;",
        )
        .await;
    browser.click("#confirm-yes").await;

    // Assert
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "success", "{text}");
    assert_eq!(settled_jobs(&admin).await.len(), 1);
    assert_eq!(app.sandbox_requests().await, 1);
    browser.close().await;
}

#[tokio::test]
async fn a_double_click_on_confirm_makes_one_job() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "double-click-confirm").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.fill_customer_set("Resume", "C3001").await;
    browser.click("#set-action").await;
    browser
        .wait_until(
            "the confirmation is open",
            "return document.getElementById('confirm-dialog').open;",
        )
        .await;

    // Act: a real double click, then two clicks fired in the same instant.
    browser.double_click("#confirm-yes").await;
    browser.result().await;
    browser.fill_customer_set("Resume", "C3002").await;
    browser.click("#set-action").await;
    browser
        .wait_until(
            "the confirmation is open",
            "return document.getElementById('confirm-dialog').open;",
        )
        .await;
    browser
        .js("const b = document.getElementById('confirm-yes'); b.click(); b.click(); b.click(); return true;")
        .await;

    // Assert
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "success", "{text}");
    let jobs = settled_jobs(&admin).await;
    assert_eq!(jobs.len(), 2, "one job per confirmation: {jobs:?}");
    assert_eq!(app.sandbox_requests().await, 2);
    browser.close().await;
}

#[tokio::test]
async fn enter_pressed_twice_makes_one_job() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "double-enter").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.fill_customer_set("Reprocess", "C4001").await;

    // Act: Enter in a field opens the confirmation, whose default button
    // takes the second Enter; a third finds nothing to confirm.
    let reason = browser.find("#reason").await;
    reason
        .send_keys(&format!("{ENTER}{ENTER}"))
        .await
        .expect("keys");
    let (kind, text) = browser.result().await;
    let focused = browser.client.active_element().await.expect("focus");
    focused.send_keys(ENTER).await.expect("keys");

    // Assert
    assert_eq!(kind, "success", "{text}");
    let jobs = settled_jobs(&admin).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(app.sandbox_requests().await, 1);
    browser.close().await;
}

#[tokio::test]
async fn a_fail_cid_shows_a_failure_and_its_job() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "failure").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.fill_customer_set("Trans-End", "FAIL-1 C5001").await;

    // Act
    browser.click("#set-action").await;
    browser.click("#confirm-yes").await;

    // Assert
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "failure", "{text}");
    assert!(text.contains("Failed"), "{text}");
    let job_id = browser.text("#job-id").await;
    browser.screenshot("result").await;
    let jobs = settled_jobs(&admin).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["job_id"], job_id.as_str());
    assert_eq!(jobs[0]["status"], "failed");
    browser.click("#job-id").await;
    browser.wait_for_path("/jobs/").await;
    assert_eq!(browser.text("#job-status").await, "failed");
    assert!(!browser.text("#job-error").await.is_empty());
    browser.screenshot("job-page").await;
    browser.close().await;
}

#[tokio::test]
async fn a_slow_cid_past_the_server_timeout_shows_a_timeout_and_its_job() {
    // Arrange
    let app = TestApp::spawn_with(|c| c.upstream_timeout = Duration::from_secs(1)).await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "timeout").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.fill_customer_set("Purge-Cache", "SLOW-1").await;

    // Act
    browser.click("#set-action").await;
    browser.click("#confirm-yes").await;
    let busy = browser.find("#set-action").await;
    assert!(
        !busy.is_enabled().await.unwrap(),
        "the button must be disabled while running"
    );
    assert!(browser
        .find("#progress")
        .await
        .is_displayed()
        .await
        .unwrap());
    browser.screenshot("running").await;

    // Assert
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "timeout", "{text}");
    assert!(text.contains("Timed out"), "{text}");
    let job_id = browser.text("#job-id").await;
    browser.screenshot("result").await;
    let jobs = settled_jobs(&admin).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["job_id"], job_id.as_str());
    assert_eq!(jobs[0]["status"], "timed_out");
    browser.close().await;
}

#[tokio::test]
async fn invalid_cids_are_flagged_live_and_nothing_is_sent() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "invalid-cids").await;
    browser.login("admin", ADMIN_PASSWORD).await;

    // Act
    browser
        .fill_customer_set("Trans-Begin", "C1, bad!, -x\nC1 C2")
        .await;

    // Assert: flagged while typing, each invalid value named.
    let count = browser.wait_for_text("#cid-count", "2 valid").await;
    assert!(
        count.contains("2 valid") && count.contains("1 repeated"),
        "{count}"
    );
    let invalid = browser.text("#cid-invalid").await;
    assert!(
        invalid.contains("bad!") && invalid.contains("-x"),
        "{invalid}"
    );
    browser.screenshot("flagged").await;
    browser.click("#set-action").await;
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "notice", "{text}");
    assert!(text.contains("bad!"), "{text}");
    let open = browser
        .js("return document.getElementById('confirm-dialog').open;")
        .await;
    assert_eq!(open, json!(false), "no confirmation for invalid CIDs");
    assert!(settled_jobs(&admin).await.is_empty());
    assert_eq!(app.sandbox_requests().await, 0);
    browser.close().await;
}

#[tokio::test]
async fn a_recent_duplicate_is_shown_and_runs_again_only_when_confirmed() {
    // Arrange: the same action on the same CIDs ran a moment ago.
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let earlier = admin
        .set_action(&new_key(), &action_body("Suspend", json!(["C6001"])))
        .await
        .expect(201)["job"]["job_id"]
        .as_str()
        .expect("job_id")
        .to_owned();
    let browser = Browser::desktop(&app.address, "recent-duplicate").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.fill_customer_set("Suspend", "C6001").await;

    // Act: refuse first.
    browser.click("#set-action").await;
    browser.click("#confirm-yes").await;
    let warning = browser.wait_for_text("#duplicate-dialog", "admin").await;
    assert!(warning.contains(&earlier), "{warning}");
    browser.screenshot("dialog").await;
    browser.click("#duplicate-no").await;
    assert_eq!(settled_jobs(&admin).await.len(), 1);

    // Act: then run it again on purpose.
    browser.click("#set-action").await;
    browser.click("#confirm-yes").await;
    browser.wait_for_text("#duplicate-dialog", "admin").await;
    browser.double_click("#duplicate-yes").await;

    // Assert
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "success", "{text}");
    let jobs = settled_jobs(&admin).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0]["confirm_duplicate"], true);
    browser.close().await;
}

#[tokio::test]
async fn the_audit_filters_and_pages_through_120_jobs() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let operator = app.create_user("operator").await;
    run_jobs(&admin, "Trans-Begin", "A", 100).await;
    run_jobs(&operator, "Suspend", "B", 20).await;
    let browser = Browser::desktop(&app.address, "audit").await;
    browser.login("admin", ADMIN_PASSWORD).await;

    // Act + Assert: three pages forward, then back.
    browser.goto("/jobs").await;
    browser.find("#jobs-table").await;
    assert_eq!(browser.all("#jobs-table tbody tr").await.len(), 50);
    let first_row = browser.text("#jobs-table tbody tr").await;
    assert!(browser.text("#chart-title").await.contains("120 jobs"));
    assert!(browser.exists("#jobs-chart").await);
    browser.screenshot("page-1").await;
    browser.screenshot_at("#table-title", "page-1-table").await;
    browser.click("#next-page").await;
    browser.wait_for_text("#table-title", "page 2").await;
    assert_eq!(browser.all("#jobs-table tbody tr").await.len(), 50);
    let second_page_row = browser.text("#jobs-table tbody tr").await;
    browser.click("#next-page").await;
    browser.wait_for_text("#table-title", "page 3").await;
    assert_eq!(browser.all("#jobs-table tbody tr").await.len(), 20);
    assert!(!browser.exists("#next-page").await);
    browser.click("#prev-page").await;
    browser.wait_for_text("#table-title", "page 2").await;
    assert_eq!(browser.text("#jobs-table tbody tr").await, second_page_row);
    browser.click("#prev-page").await;
    browser.wait_for_text("#table-title", "page 1").await;
    assert_eq!(browser.text("#jobs-table tbody tr").await, first_row);
    assert!(!browser.exists("#prev-page").await);

    // Filters live in the URL.
    browser
        .find("#f-action")
        .await
        .select_by_value("Suspend")
        .await
        .expect("select");
    browser
        .find("#f-user")
        .await
        .select_by_value(&operator.username)
        .await
        .expect("select");
    browser.click("#apply-filters").await;
    browser
        .wait_until(
            "the filters are in the URL",
            "return location.search.includes('action=Suspend')",
        )
        .await;
    let path = browser.path().await;
    assert!(path.starts_with("/jobs?"), "{path}");
    assert_eq!(browser.all("#jobs-table tbody tr").await.len(), 20);
    browser.screenshot("filtered").await;
    browser.goto("/jobs?cid=A7&status=succeeded").await;
    assert_eq!(browser.all("#jobs-table tbody tr").await.len(), 1);
    assert_eq!(
        browser
            .find("#f-cid")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("A7")
    );
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today + chrono::Duration::days(1);
    browser.goto(&format!("/jobs?since={tomorrow}")).await;
    assert!(browser.exists("#no-jobs").await);
    browser
        .goto(&format!("/jobs?since={today}&until={today}&status=failed"))
        .await;
    assert!(browser.exists("#no-jobs").await);
    browser.close().await;
}

#[tokio::test]
async fn the_csv_export_link_carries_the_filters() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    run_jobs(&admin, "Trans-Begin", "E", 3).await;
    run_jobs(&admin, "Suspend", "S", 2).await;
    let browser = Browser::desktop(&app.address, "export").await;
    browser.login("admin", ADMIN_PASSWORD).await;

    // Act
    browser.goto("/jobs?action=Suspend").await;
    let href = browser
        .find("#export-csv")
        .await
        .attr("href")
        .await
        .expect("attr")
        .expect("href");

    // Assert
    assert!(href.starts_with("/api/v1/jobs/export?format=csv"), "{href}");
    assert!(href.contains("action=Suspend"), "{href}");
    let csv = admin.get(&href).await;
    csv.assert_status(200);
    assert!(csv
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/csv"));
    let text = csv.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "job_id,created_at,finished_at,user,cluster,action,action_code,status,cid_count,cids,upstream_status,duration_ms,error,duplicate_of"
    );
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(",Suspend,3,succeeded,1,")),
        "{text}"
    );
    browser.close().await;
}

#[tokio::test]
async fn an_operator_never_sees_another_users_job() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let theirs = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["C7001"])))
        .await
        .expect(201)["job"]["job_id"]
        .as_str()
        .expect("job_id")
        .to_owned();
    let operator = app.create_user("operator").await;
    let browser = Browser::desktop(&app.address, "operator").await;
    browser
        .login(&operator.username, &password_of(&operator.username))
        .await;

    // Act + Assert
    browser.goto("/jobs").await;
    assert!(browser.exists("#no-jobs").await);
    assert!(
        !browser.exists("#f-user").await,
        "operators get no user filter"
    );
    browser.screenshot("audit").await;
    browser.goto("/jobs?user=admin").await;
    assert!(browser.exists("#no-jobs").await);
    browser.goto(&format!("/jobs/{theirs}")).await;
    let message = browser.text("#error-message").await;
    assert!(message.contains("nothing you may see"), "{message}");
    assert!(!browser.client.source().await.unwrap().contains("C7001"));
    browser.screenshot("other-job").await;
    assert!(!browser.exists("a[href='/admin/users']").await);
    browser.close().await;
    let page = operator.get(&format!("/jobs/{theirs}")).await;
    assert_eq!(page.status, 404);
}

#[tokio::test]
async fn an_auditor_has_no_set_action_form() {
    // Arrange
    let app = TestApp::spawn().await;
    let auditor = app.create_user("auditor").await;
    let browser = Browser::desktop(&app.address, "auditor").await;
    browser
        .login(&auditor.username, &password_of(&auditor.username))
        .await;

    // Act
    browser.goto("/").await;

    // Assert
    let note = browser.text("#no-set-action").await;
    assert!(note.contains("cannot run actions"), "{note}");
    assert!(!browser.exists("#set-action").await);
    assert!(!browser.exists("#cids").await);
    assert!(!browser.exists("a[href='/admin/users']").await);
    browser.screenshot("customer-set").await;
    browser.goto("/admin/users").await;
    assert!(browser.text("h1").await.contains("Forbidden"));
    browser.close().await;
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_login_with_next() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act + Assert (plain HTTP, no browser)
    for (path, next) in [
        ("/", "%2F"),
        ("/jobs?status=failed", "%2Fjobs%3Fstatus%3Dfailed"),
        (
            "/jobs/0193f1c2-0000-7000-8000-000000000000",
            "%2Fjobs%2F0193f1c2-0000-7000-8000-000000000000",
        ),
        ("/account", "%2Faccount"),
        ("/admin/users", "%2Fadmin%2Fusers"),
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 303, "{path}");
        assert_eq!(
            reply.header("location").unwrap(),
            format!("/login?next={next}")
        );
    }

    // And the browser comes back where it started.
    let browser = Browser::desktop(&app.address, "next").await;
    browser.goto("/jobs?status=failed").await;
    browser.wait_for_path("/login?next=").await;
    browser.type_into("#username", "admin").await;
    browser.type_into("#password", ADMIN_PASSWORD).await;
    browser.click("#login").await;
    assert_eq!(browser.wait_for_path("/jobs").await, "/jobs?status=failed");
    browser.close().await;
}

#[tokio::test]
async fn a_next_leading_off_the_site_is_not_followed() {
    // Arrange
    let app = TestApp::spawn().await;
    let page = app.get("/login?next=//evil.example/x").await.text();
    assert!(page.contains(r#"name="next" value="/""#), "{page}");
    let browser = Browser::desktop(&app.address, "foreign-next").await;

    // Act
    browser.goto("/login?next=//evil.example/x").await;
    browser.type_into("#username", "admin").await;
    browser.type_into("#password", ADMIN_PASSWORD).await;
    browser.click("#login").await;

    // Assert
    browser.wait_for_exact_path("/").await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.host_str(), Some("127.0.0.1"));
    assert_eq!(browser.path().await, "/");
    browser.close().await;
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_no_inline_code() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let job = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["C8001"])))
        .await
        .expect(201)["job"]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act + Assert
    let login = app.get("/login").await;
    assert_eq!(login.status, 200);
    assert!(login.header("content-security-policy").is_some());
    for path in [
        "/",
        "/jobs",
        &format!("/jobs/{job}"),
        "/account",
        "/admin/users",
    ] {
        let reply = admin.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert_eq!(
            reply.header("content-security-policy").as_deref(),
            Some("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
            "{path}"
        );
        assert_eq!(
            reply.header("x-frame-options").as_deref(),
            Some("DENY"),
            "{path}"
        );
        assert_eq!(
            reply.header("referrer-policy").as_deref(),
            Some("same-origin"),
            "{path}"
        );
        assert_eq!(
            reply.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        let html = reply.text();
        assert!(!html.contains(" style="), "{path} has an inline style");
        assert!(
            !html.contains("<script>") && !html.contains(" onclick="),
            "{path} has inline script"
        );
    }
    let css = app.get("/static/app.css").await;
    assert_eq!(
        css.header("content-type").as_deref(),
        Some("text/css; charset=utf-8")
    );
    let js = app.get("/static/customer-set.js").await;
    assert_eq!(
        js.header("content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.header("cache-control").as_deref(), Some("no-cache"));
    assert!(js.header("etag").is_some());
}

#[tokio::test]
async fn user_supplied_text_is_shown_escaped() {
    // Arrange
    let app = TestApp::spawn().await;
    let browser = Browser::desktop(&app.address, "escaping").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    let payload = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>";

    // Act: the payload as a CID filter and as a token name.
    browser
        .goto(&format!("/jobs?cid={}", crate::helpers::enc(payload)))
        .await;
    let shown = browser.find("#f-cid").await.prop("value").await.unwrap();
    browser.screenshot("cid-filter").await;
    browser.goto("/account").await;
    browser.type_into("#token-name", payload).await;
    browser.click("#create-token").await;
    browser.find("#new-token-value").await;
    browser.screenshot("token-name").await;

    // Assert
    assert_eq!(shown.as_deref(), Some(payload));
    let source = browser.client.source().await.unwrap();
    assert!(source.contains("&lt;script&gt;"), "the name is escaped");
    assert!(!source.contains("<script>window.__xss"));
    assert_eq!(
        browser.js("return window.__xss === undefined;").await,
        json!(true)
    );
    browser.close().await;
}

#[tokio::test]
async fn an_admin_adds_a_user_who_then_changes_their_password_and_makes_a_token() {
    // Arrange
    let app = TestApp::spawn().await;
    let browser = Browser::desktop(&app.address, "accounts").await;
    browser.login("admin", ADMIN_PASSWORD).await;

    // Act: the admin adds an operator.
    browser.goto("/admin/users").await;
    browser.type_into("#new-username", "olga").await;
    browser
        .type_into("#new-user-password", "first-pass-123")
        .await;
    browser.click("#create-user").await;
    browser.wait_for_text("#notice", "olga was created").await;
    assert!(browser.text("#users-table").await.contains("olga"));
    browser.screenshot("users").await;
    browser.click("#logout").await;

    // Act: olga logs in, changes her password and makes a token.
    browser.login("olga", "first-pass-123").await;
    browser.goto("/account").await;
    browser
        .type_into("#current-password", "wrong-pass-000")
        .await;
    browser.type_into("#new-password", "second-pass-456").await;
    browser
        .type_into("#confirm-password", "second-pass-456")
        .await;
    browser.click("#change-password").await;
    browser
        .wait_for_text("#form-error", "current password is wrong")
        .await;
    browser
        .type_into("#current-password", "first-pass-123")
        .await;
    browser.type_into("#new-password", "second-pass-456").await;
    browser
        .type_into("#confirm-password", "second-pass-456")
        .await;
    browser.click("#change-password").await;
    browser
        .wait_for_text("#notice", "password was changed")
        .await;
    browser.type_into("#token-name", "nightly report").await;
    browser.click("#create-token").await;
    let token = browser
        .find("#new-token-value")
        .await
        .prop("value")
        .await
        .unwrap()
        .expect("token");
    browser.screenshot("account").await;

    // Assert: the new password and the token work; the old password does not.
    app.try_login("olga", "first-pass-123")
        .await
        .assert_status(401);
    app.try_login("olga", "second-pass-456")
        .await
        .assert_status(200);
    let me = app.bearer(&token).get("/api/v1/me").await.expect(200);
    assert_eq!(me["user"]["username"], "olga");
    browser.goto("/account").await;
    assert!(
        !browser.exists("#new-token-value").await,
        "a token is shown once"
    );
    browser.click("#tokens-table button").await;
    browser.wait_for_text("#notice", "revoked").await;
    app.bearer(&token)
        .get("/api/v1/me")
        .await
        .assert_status(401);
    browser.close().await;
}

#[tokio::test]
async fn the_console_fits_a_phone() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    run_jobs(&admin, "Trans-Begin", "P", 3).await;
    app.create_user("operator").await;
    let browser = Browser::phone(&app.address, "phone").await;
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth;";

    // Act + Assert: no page is wider than the screen.
    browser.goto("/login").await;
    browser.screenshot("login").await;
    assert_eq!(browser.js(fits).await, json!(true), "login");
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.fill_customer_set("Trans-Begin", "C1 C2 bad!").await;
    browser.wait_for_text("#cid-count", "1 invalid").await;
    browser.screenshot("customer-set").await;
    assert_eq!(browser.js(fits).await, json!(true), "customer set");
    browser.type_into("#cids", "C9001 C9002").await;
    browser.click("#set-action").await;
    browser.find("#confirm-yes").await;
    browser.screenshot("confirm").await;
    browser.click("#confirm-yes").await;
    let (kind, _) = browser.result().await;
    assert_eq!(kind, "success");
    browser.screenshot("result").await;
    for (path, name) in [
        ("/jobs", "audit"),
        ("/account", "account"),
        ("/admin/users", "users"),
    ] {
        browser.goto(path).await;
        browser.find("h1").await;
        browser.screenshot(name).await;
        if path == "/jobs" {
            browser.screenshot_at("#table-title", "audit-table").await;
        }
        assert_eq!(browser.js(fits).await, json!(true), "{path}");
    }
    browser.goto("/jobs").await;
    browser.click(".job-link").await;
    browser.wait_for_path("/jobs/").await;
    browser.screenshot("job-page").await;
    assert_eq!(browser.js(fits).await, json!(true), "job page");
    browser.close().await;
}

/// `name=value` of a `Set-Cookie` header of `reply` for `name`.
fn set_cookie(reply: &crate::helpers::Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

#[tokio::test]
async fn logging_in_through_the_form_needs_its_token_and_rotates_the_session() {
    // Arrange: a browser that already holds a session.
    let app = TestApp::spawn().await;
    let old = app.admin().await;
    let form = format!(
        "username=admin&password={}&next=%2Fjobs&login_token=T0KEN",
        crate::helpers::enc(ADMIN_PASSWORD)
    );
    let post = |cookie: &str| {
        old.request(reqwest::Method::POST, "/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie.to_owned())
            .body(form.clone())
    };

    // Act: without the login cookie the form is refused (login CSRF) ...
    let refused = crate::helpers::send(post("tms_other=1")).await;
    // ... with it, the login starts a new session.
    let accepted = crate::helpers::send(post("tms_login=T0KEN")).await;

    // Assert
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("login form had expired"));
    assert_eq!(accepted.status, 303);
    assert_eq!(accepted.header("location").as_deref(), Some("/jobs"));
    let new_cookie = set_cookie(&accepted, "tms_session").expect("a new session cookie");
    old.get("/api/v1/me").await.assert_status(401);
    let me = crate::helpers::send(
        app.anonymous()
            .request(reqwest::Method::GET, "/api/v1/me")
            .header("cookie", new_cookie),
    )
    .await;
    assert_eq!(me.expect(200)["user"]["username"], "admin");
}

#[tokio::test]
async fn html_forms_without_the_sessions_csrf_token_are_refused() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let csrf = admin.csrf_token.clone().expect("csrf");
    let form = |path: &str, body: String| {
        admin
            .without_csrf()
            .request(reqwest::Method::POST, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };

    // Act
    let forged = crate::helpers::send(form("/account/tokens", "name=x".into())).await;
    let wrong = crate::helpers::send(form(
        "/admin/users",
        "csrf_token=nope&username=mallory&role=admin&password=mallory-pw-123".into(),
    ))
    .await;
    let logout = crate::helpers::send(form("/logout", String::new())).await;
    let genuine = crate::helpers::send(form(
        "/account/tokens",
        format!("csrf_token={csrf}&name=ok"),
    ))
    .await;

    // Assert
    assert_eq!(forged.status, 403);
    assert_eq!(wrong.status, 403);
    assert_eq!(logout.status, 403, "no other site may log a user out");
    assert_eq!(genuine.status, 303, "created, then redirected");
    let tokens = admin.get("/api/v1/tokens").await.expect(200);
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 1);
    let users = admin.get("/api/v1/users").await.expect(200);
    assert_eq!(
        users["users"].as_array().unwrap().len(),
        1,
        "mallory was not created"
    );
}

#[tokio::test]
async fn a_browser_gets_a_page_for_an_unknown_path_and_the_api_a_problem() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let page = crate::helpers::send(
        app.anonymous()
            .request(reqwest::Method::GET, "/no-such-page")
            .header("accept", "text/html,application/xhtml+xml"),
    )
    .await;
    let api = app.get("/api/v1/no-such-thing").await;

    // Assert
    assert_eq!(page.status, 404);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().contains("Not Found"));
    api.expect_problem(404, "not_found");
}

#[tokio::test]
async fn the_token_field_shows_only_for_a_cluster_without_a_server_side_token() {
    // Arrange: the sandbox (server-side token) and a cluster whose users type one.
    let app = TestApp::spawn_with(|c| {
        c.sandbox = true;
        c.clusters = vec![tms_dashboard::config::ClusterConfig {
            name: "eu-manual".into(),
            label: Some("EU, own token".into()),
            base_url: "http://127.0.0.1:9".into(),
            token_env: None,
            max_in_flight: None,
            max_per_second: None,
            approval_required: None,
        }];
    })
    .await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "token-field").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.fill_customer_set("Suspend", "C1").await;
    let token = browser.find("#token").await;
    assert!(!token.is_displayed().await.unwrap());

    // Act
    browser
        .find("#cluster")
        .await
        .select_by_value("eu-manual")
        .await
        .expect("select");
    assert!(token.is_displayed().await.unwrap());
    browser.screenshot("shown").await;
    browser.click("#set-action").await;

    // Assert: no token, no confirmation, nothing sent.
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "notice", "{text}");
    assert!(text.contains("needs your token"), "{text}");
    let open = browser
        .js("return document.getElementById('confirm-dialog').open;")
        .await;
    assert_eq!(open, json!(false));
    browser
        .find("#cluster")
        .await
        .select_by_value("sandbox")
        .await
        .expect("select");
    assert!(!token.is_displayed().await.unwrap());
    assert!(settled_jobs(&admin).await.is_empty());
    browser.close().await;
}

#[tokio::test]
async fn the_export_streams_every_matching_job_as_csv_or_ndjson_within_the_callers_view() {
    // Arrange: more jobs than the 500 the stream reads from the store at a time.
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let operator = app.create_user("operator").await;
    run_jobs(&admin, "Trans-Begin", "X", 503).await;
    run_jobs(&operator, "Resume", "Y", 2).await;

    // Act
    let ndjson = admin.get("/api/v1/jobs/export?format=ndjson").await;
    let mine = operator.get("/api/v1/jobs/export?format=csv").await;
    let theirs = operator.get("/api/v1/jobs/export?user=admin").await;
    let bad = admin.get("/api/v1/jobs/export?format=xml").await;

    // Assert
    ndjson.assert_status(200);
    assert_eq!(
        ndjson.header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    let lines: Vec<serde_json::Value> = ndjson
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one job per line"))
        .collect();
    assert_eq!(lines.len(), 505);
    crate::helpers::assert_job(&lines[0]);
    let ids: std::collections::HashSet<_> = lines.iter().map(|j| j["job_id"].clone()).collect();
    assert_eq!(ids.len(), 505, "every job once");
    let csv = mine.text();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",Resume,")), "{csv}");
    theirs.expect_problem(403, "forbidden");
    bad.expect_problem(400, "invalid_query");
}

#[tokio::test]
async fn the_duplicates_page_lists_a_double_click_group_and_an_admin_marks_it() {
    // Arrange: the old bug's shape, two jobs for one intent 0-2 s apart
    // (possible here only with the recent-duplicate guard turned off).
    let app = TestApp::spawn_with(|c| c.duplicate_guard_window = std::time::Duration::ZERO).await;
    let admin = app.admin().await;
    let body = action_body("Trans-Begin", json!(["D1", "D2"]));
    let first = admin.set_action(&new_key(), &body).await.expect(201)["job"]["job_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let second = admin.set_action(&new_key(), &body).await.expect(201)["job"]["job_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let auditor = app.create_user("auditor").await;
    let operator = app.create_user("operator").await;

    // Act + Assert: the auditor sees the group but no mark button.
    let browser = Browser::desktop(&app.address, "duplicates").await;
    browser
        .login(&auditor.username, &password_of(&auditor.username))
        .await;
    browser.goto("/audit/duplicates").await;
    assert_eq!(browser.text("#duplicate-count").await, "1");
    assert!(browser.exists(&format!("a[href='/jobs/{second}']")).await);
    assert!(!browser.exists(".mark-group").await);
    browser.close().await;

    // The admin marks it.
    let browser = Browser::desktop(&app.address, "duplicates").await;
    browser.login("admin", crate::helpers::ADMIN_PASSWORD).await;
    browser.goto("/audit/duplicates").await;
    browser.screenshot("groups").await;
    browser.click(".mark-group").await;
    browser
        .wait_for_text("#mark-confirm", "Mark 1 later job")
        .await;
    browser.screenshot("confirm").await;
    browser.click("#mark-yes").await;
    browser
        .wait_for_text("#marked-notice", "Marked 1 job")
        .await;
    browser.screenshot("marked").await;
    assert_eq!(browser.text("#duplicate-count").await, "0");
    browser.close().await;
    let marked = admin
        .get(&format!("/api/v1/jobs/{second}"))
        .await
        .expect(200)["job"]
        .clone();
    assert_eq!(marked["duplicate_of"], first.as_str());
    assert_eq!(admin.jobs("").await.len(), 2, "nothing deleted");

    // An operator may not open the page.
    let page = operator.get("/audit/duplicates").await;
    assert_eq!(page.status, 403, "{}", page.text());
}
