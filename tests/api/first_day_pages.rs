//! The console as a first-day user meets it (SPEC §16), in Chromium: a
//! spreadsheet paste runs on the customers it shows, the confirmation lists
//! them, links to a job only for someone who may open it, and forms that
//! create something survive a reload.

use std::time::Duration;

use serde_json::{json, Value};

use crate::browser::Browser;
use crate::helpers::{action_body, new_key, password_of, Session, TestApp, ADMIN_PASSWORD};
use crate::run_pages::{open_customer_set, paste};
use crate::runs::cids;

/// Waits a moment for any stray second request, then returns every job.
async fn settled_jobs(admin: &Session) -> Vec<Value> {
    tokio::time::sleep(Duration::from_millis(700)).await;
    admin.jobs("limit=500").await
}

async fn confirm_open(browser: &Browser) {
    browser
        .wait_until(
            "the confirmation is open",
            "return document.getElementById('confirm-dialog').open;",
        )
        .await;
}

#[tokio::test]
async fn a_column_pasted_with_its_header_runs_on_the_cids_below_it() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "paste-header").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    open_customer_set(&browser, "Trans-Begin").await;

    // Act: a spreadsheet column copied with its header cell.
    paste(&browser, "Customer ID\r\nH1001\r\nH1002\r\nH1003\r\n").await;

    // Assert: three counted, the header named as left out.
    let count = browser.wait_for_text("#cid-count", "3 valid").await;
    assert!(count.contains("0 invalid"), "{count}");
    assert!(count.contains("header “Customer ID” left out"), "{count}");
    browser.screenshot("counted").await;
    browser.click("#set-action").await;
    confirm_open(&browser).await;
    assert_eq!(browser.text("#confirm-cids").await, "H1001, H1002, H1003");
    browser.screenshot("confirm").await;
    browser.click("#confirm-yes").await;
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "success", "{text}");
    let jobs = settled_jobs(&admin).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["cids"], json!(["H1001", "H1002", "H1003"]));
    browser.close().await;
}

#[tokio::test]
async fn spreadsheet_rows_give_only_their_first_cell() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "paste-rows").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    open_customer_set(&browser, "Trans-Begin").await;

    // Act: two columns copied from a spreadsheet.
    paste(
        &browser,
        "TAB001\tAcme Corp\nTAB002\tBeta, Ltd\tEU\nTAB003\tGamma Inc\n",
    )
    .await;

    // Assert
    let count = browser.wait_for_text("#cid-count", "3 valid").await;
    assert!(count.contains("0 invalid"), "{count}");
    assert!(count.contains("3 lines with extra cells"), "{count}");
    browser.screenshot("counted").await;
    browser.click("#set-action").await;
    confirm_open(&browser).await;
    assert_eq!(
        browser.text("#confirm-cids").await,
        "TAB001, TAB002, TAB003"
    );
    browser.click("#confirm-yes").await;
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "success", "{text}");
    let jobs = settled_jobs(&admin).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["cids"], json!(["TAB001", "TAB002", "TAB003"]));
    browser.close().await;
}

#[tokio::test]
async fn a_text_file_is_read_by_the_paste_rule() {
    // Arrange
    let app = TestApp::spawn().await;
    let browser = Browser::desktop(&app.address, "paste-file").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    open_customer_set(&browser, "Trans-Begin").await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("export.txt");
    std::fs::write(&file, "cid\tname\nF1\tAcme Corp\nF2\tBeta\n").expect("txt");

    // Act
    browser
        .find("#cids-file")
        .await
        .send_keys(&file.display().to_string())
        .await
        .expect("upload");

    // Assert
    let count = browser.wait_for_text("#cid-count", "2 valid").await;
    assert!(count.contains("0 invalid"), "{count}");
    assert!(count.contains("header “cid” left out"), "{count}");
    assert!(count.contains("2 lines with extra cells"), "{count}");
    let note = browser.wait_for_text("#cids-file-note", "export.txt").await;
    assert!(note.contains("“cid”"), "{note}");
    browser.close().await;
}

#[tokio::test]
async fn the_confirmation_lists_a_thousand_cids_as_their_ends_and_the_count_between() {
    // Arrange
    let app = TestApp::spawn_with(|c| c.max_run_cids = 2000).await;
    let browser = Browser::desktop(&app.address, "confirm-1000").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    open_customer_set(&browser, "Trans-Begin").await;
    let list = cids("K", 1000);

    // Act
    paste(&browser, &list.join("\n")).await;
    browser.wait_for_text("#cid-count", "1,000 valid").await;
    browser.click("#set-action").await;
    confirm_open(&browser).await;

    // Assert
    let shown = browser.text("#confirm-cids").await;
    let expected = format!(
        "{} … 950 more … {}",
        list[..25].join(", "),
        list[975..].join(", ")
    );
    assert_eq!(shown, expected);
    let batches = browser.text("#confirm-batches").await;
    assert!(batches.contains("2 batches"), "{batches}");
    browser.screenshot("confirm").await;
    browser.click("#confirm-no").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_is_told_whose_job_holds_the_cids_without_a_link_they_cannot_open() {
    // Arrange: another operator's slow job holds C7001, and that operator
    // ran C7101 a moment ago.
    let app = TestApp::spawn_with(|c| c.upstream_timeout = Duration::from_secs(10)).await;
    let ana = app.create_user("operator").await;
    let bob = app.create_user("operator").await;
    ana.set_action(&new_key(), &action_body("Suspend", json!(["C7101"])))
        .await
        .assert_status(201);
    let browser = Browser::desktop(&app.address, "busy-operator").await;
    browser
        .login(&bob.username, &password_of(&bob.username))
        .await;
    browser.fill_customer_set("Suspend", "C7001").await;
    let slow = {
        let ana = ana.clone();
        tokio::spawn(async move {
            let body = action_body("Trans-Begin", json!(["DELAY6000-A", "C7001"]));
            ana.set_action(&new_key(), &body).await
        })
    };
    ana.wait_for_pending_job().await;

    // Act: the busy customer.
    browser.click("#set-action").await;
    confirm_open(&browser).await;
    browser.click("#confirm-yes").await;

    // Assert: named, not linked.
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "failure", "{text}");
    assert!(text.contains(&format!("{}'s job", ana.username)), "{text}");
    assert!(text.contains(" UTC"), "{text}");
    assert!(!browser.exists("#result a").await, "{text}");
    browser.screenshot("busy").await;

    // Act: the recent duplicate of the other operator's job.
    browser.fill_customer_set("Suspend", "C7101").await;
    browser.click("#set-action").await;
    confirm_open(&browser).await;
    browser.click("#confirm-yes").await;
    let warning = browser
        .wait_for_text("#duplicate-dialog", ana.username.as_str())
        .await;

    // Assert: the dialog names the user and time; no link to open.
    assert!(warning.contains(" UTC"), "{warning}");
    assert!(
        !browser
            .find("#duplicate-job")
            .await
            .is_displayed()
            .await
            .expect("displayed"),
        "{warning}"
    );
    assert!(!browser.exists("#result a").await);
    browser.screenshot("duplicate").await;
    browser.click("#duplicate-no").await;
    assert!(!browser.exists("#result a").await);
    slow.await.expect("slow request").assert_status(201);
    browser.close().await;
}

/// Posts an HTML form of `session` (its CSRF token in the body).
async fn post_form(session: &Session, path: &str, body: &str) -> crate::helpers::Reply {
    let csrf = session.csrf_token.clone().expect("a cookie session");
    crate::helpers::send(
        session
            .request(reqwest::Method::POST, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf_token={}&{body}", crate::helpers::enc(&csrf))),
    )
    .await
}

/// The secret a page shows in its read-only `token-value` box, if any.
fn shown_secret(page: &str) -> Option<String> {
    let marker = r#"class="mono token-value" type="text" readonly value=""#;
    let start = page.find(marker)? + marker.len();
    let end = start + page[start..].find('"')?;
    Some(
        page[start..end]
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

#[tokio::test]
async fn a_new_token_is_made_once_and_shown_on_the_redirect_and_one_reload_then_gone() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    // Act
    let created = post_form(&admin, "/account/tokens", "name=nightly").await;

    // Assert: a redirect whose URL holds no secret.
    assert_eq!(created.status, 303, "{}", created.text());
    let location = created.header("location").expect("location");
    assert!(location.starts_with("/account?"), "{location}");
    let first = admin.get(&location).await;
    assert_eq!(first.status, 200);
    let token = shown_secret(&first.text()).expect("the token on the first page");
    assert!(!location.contains(&token), "{location}");
    let reload = admin.get(&location).await.text();
    assert_eq!(shown_secret(&reload), Some(token.clone()), "one reload");
    let again = admin.get(&location).await.text();
    assert_eq!(shown_secret(&again), None, "then gone");
    assert!(again.contains("no longer shown"), "{again}");
    // Someone else with the id sees nothing.
    let other = app.create_user("admin").await;
    assert_eq!(shown_secret(&other.get(&location).await.text()), None);

    // One token, and it works.
    let tokens = admin.get("/api/v1/tokens").await.expect(200);
    let tokens = tokens["tokens"].as_array().expect("tokens").clone();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0]["name"], "nightly");
    let me = app.bearer(&token).get("/api/v1/me").await.expect(200);
    assert_eq!(me["user"]["username"], "admin");
}

#[tokio::test]
async fn a_generated_password_survives_one_reload_and_the_user_is_added_once() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    // Act: no password given, so one is generated.
    let created = post_form(&admin, "/admin/users", "username=olga&role=operator").await;

    // Assert
    assert_eq!(created.status, 303, "{}", created.text());
    let location = created.header("location").expect("location");
    assert!(location.starts_with("/admin/users?"), "{location}");
    let first = admin.get(&location).await.text();
    assert!(first.contains("olga was created"), "{first}");
    let password = shown_secret(&first).expect("the generated password");
    assert!(!location.contains(&password), "{location}");
    assert_eq!(
        shown_secret(&admin.get(&location).await.text()),
        Some(password.clone())
    );
    let again = admin.get(&location).await.text();
    assert_eq!(shown_secret(&again), None);
    assert!(again.contains("no longer shown"), "{again}");
    app.try_login("olga", &password).await.assert_status(200);
    let users = admin.get("/api/v1/users").await.expect(200);
    let olgas = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["username"] == "olga")
        .count();
    assert_eq!(olgas, 1);
}

#[tokio::test]
async fn a_job_run_again_on_purpose_is_no_duplicate_unless_asked_for() {
    // Arrange: a job, then the same on purpose after the warning.
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let body = action_body("Suspend", json!(["R1"]));
    admin.set_action(&new_key(), &body).await.assert_status(201);
    let mut again = body.clone();
    again["confirm_duplicate"] = json!(true);
    admin
        .set_action(&new_key(), &again)
        .await
        .assert_status(201);

    // Act
    let default = admin
        .get("/api/v1/audit/duplicates?window_s=60")
        .await
        .expect(200);
    let asked = admin
        .get("/api/v1/audit/duplicates?window_s=60&include_confirmed=true")
        .await
        .expect(200);
    let page = admin.get("/audit/duplicates?window_s=60").await.text();

    // Assert
    assert_eq!(default["count"], 0, "{default}");
    assert_eq!(asked["count"], 1, "{asked}");
    assert!(page.contains("id=\"no-duplicates\""), "{page}");
    let page = admin
        .get("/audit/duplicates?window_s=60&include_confirmed=true")
        .await
        .text();
    assert!(page.contains("id=\"duplicates-table\""), "{page}");
    admin
        .get("/api/v1/audit/duplicates?include_confirmed=maybe")
        .await
        .expect_problem(400, "invalid_query");
    let openapi = app.anonymous().get("/api/v1/openapi.json").await.text();
    assert!(openapi.contains("include_confirmed"));
}

#[tokio::test]
async fn an_admin_marks_one_duplicate_group_after_confirming_and_spans_read_as_durations() {
    // Arrange: two double-click groups (the guard off, as in the old bug).
    let app = TestApp::spawn_with(|c| c.duplicate_guard_window = Duration::ZERO).await;
    let admin = app.admin().await;
    for cids in [json!(["G1"]), json!(["G2"])] {
        let body = action_body("Trans-Begin", cids);
        for _ in 0..2 {
            admin.set_action(&new_key(), &body).await.assert_status(201);
        }
    }
    let browser = Browser::desktop(&app.address, "duplicates-one-group").await;
    browser.login("admin", ADMIN_PASSWORD).await;

    // Act
    browser.goto("/audit/duplicates").await;
    assert_eq!(browser.text("#duplicate-count").await, "2");
    for span in browser.all("#duplicates-table td.span").await {
        let text = span.text().await.expect("text");
        assert!(text.ends_with(" ms") || text.ends_with(" s"), "{text}");
    }
    browser.screenshot("groups").await;
    browser.click(".mark-group").await;
    let question = browser
        .wait_for_text("#mark-confirm", "Mark 1 later job")
        .await;
    assert!(question.contains("nothing is deleted"), "{question}");
    browser.screenshot("confirm").await;
    // Cancel marks nothing.
    browser.click("#mark-no").await;
    browser.find("#duplicates-table").await;
    assert!(!browser.exists("#mark-confirm").await);
    assert_eq!(browser.text("#duplicate-count").await, "2");
    browser.click(".mark-group").await;
    browser.find("#mark-confirm").await;
    browser.click("#mark-yes").await;

    // Assert: one group marked, the other still to mark.
    browser
        .wait_for_text("#marked-notice", "Marked 1 job")
        .await;
    assert_eq!(browser.text("#duplicate-count").await, "1");
    browser.screenshot("marked").await;
    browser.close().await;
    let jobs = admin.jobs("").await;
    let marked = jobs.iter().filter(|j| !j["duplicate_of"].is_null()).count();
    assert_eq!(marked, 1, "{jobs:?}");
}
