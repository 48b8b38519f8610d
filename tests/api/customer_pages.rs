//! Per-customer outcomes in the browser: the job page's customers table and
//! its filter, the confirmed "retry the failed ones" (a double click makes
//! one job), links between a job and its retry, partial counts on the Jobs
//! Audit, and the customer search that opens a customer's history.

use std::time::Duration;

use serde_json::json;

use crate::browser::Browser;
use crate::helpers::{action_body, new_key, TestApp, ADMIN_PASSWORD};

#[tokio::test]
async fn the_failed_customers_are_retried_once_from_the_job_page_even_on_a_double_click() {
    // Arrange: a partial job, refused for two of its four customers.
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let original = admin
        .set_action(
            &new_key(),
            &action_body("Suspend", json!(["RT1", "NOPE-RT2", "RT3", "NOPE-RT4"])),
        )
        .await
        .json()["job"]
        .clone();
    let original_id = original["job_id"].as_str().unwrap().to_owned();
    let browser = Browser::desktop(&app.address, "retry-failed").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.goto(&format!("/jobs/{original_id}")).await;
    browser
        .wait_until(
            "the retry button is ready",
            "return document.getElementById('retry-panel')?.dataset.ready === 'true';",
        )
        .await;
    assert_eq!(browser.all("#customers tbody tr").await.len(), 4);
    assert_eq!(browser.text("#job-status").await, "partial");
    browser.screenshot("job-page").await;

    // The table's filter keeps the failed ones.
    browser
        .goto(&format!("/jobs/{original_id}?outcome=failed"))
        .await;
    let rows = browser.all("#customers tbody tr").await;
    assert_eq!(rows.len(), 2);
    browser
        .wait_until(
            "the retry button is ready",
            "return document.getElementById('retry-panel')?.dataset.ready === 'true';",
        )
        .await;

    // Act: open the confirmation, which names the count, and double-click it.
    browser.click("#retry-failed").await;
    browser
        .wait_until(
            "the confirmation is open",
            "return document.getElementById('retry-dialog').open;",
        )
        .await;
    assert!(browser.text("#retry-count").await.contains("2 customers"));
    browser.screenshot("retry-dialog").await;
    browser.double_click("#retry-yes").await;
    let new_id = browser.wait_for_text("#retry-job", "-").await;
    browser.screenshot("retried").await;

    // Assert: one new job, of the two refused customers, linked both ways.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let jobs = admin.jobs("").await;
    assert_eq!(jobs.len(), 2, "one retry per confirmation: {jobs:?}");
    let retry = admin
        .get(&format!("/api/v1/jobs/{new_id}"))
        .await
        .expect(200)["job"]
        .clone();
    assert_eq!(retry["cids"], json!(["NOPE-RT2", "NOPE-RT4"]));
    assert_eq!(retry["retry_of"], original_id.as_str());
    browser.click("#retry-job").await;
    browser
        .wait_for_exact_path(&format!("/jobs/{new_id}"))
        .await;
    assert_eq!(browser.text("#retry-of").await, original_id);
    browser.goto(&format!("/jobs/{original_id}")).await;
    assert!(browser.text("#retries").await.contains(&new_id));
    browser.close().await;
}

#[tokio::test]
async fn the_audit_shows_partial_counts_and_the_customer_search_opens_a_history() {
    // Arrange
    let app = TestApp::spawn_with(|c| c.duplicate_guard_window = Duration::ZERO).await;
    let admin = app.admin().await;
    for cids in [json!(["CS1", "NOPE-CS2"]), json!(["CS1"]), json!(["CS3"])] {
        admin
            .set_action(&new_key(), &action_body("Resume", cids))
            .await;
    }
    let browser = Browser::desktop(&app.address, "customer-search").await;
    browser.login("admin", ADMIN_PASSWORD).await;

    // The partial job's counts stand in its row.
    browser.goto("/jobs").await;
    let counts = browser.text("#jobs-table .counts").await;
    assert_eq!(counts, "1 ok, 1 failed");
    browser.screenshot("audit").await;

    // Act
    browser.type_into("#customer-search", "CS1").await;
    browser.click("#customer-search-go").await;

    // Assert: the history, newest first, and filtered through the URL.
    browser.wait_for_exact_path("/customers/CS1").await;
    assert_eq!(browser.text("#customer-cid").await, "CS1");
    assert_eq!(browser.all("#history tbody tr").await.len(), 2);
    browser.screenshot("history").await;
    browser
        .goto("/customers/CS1?outcome=ok&action=Resume")
        .await;
    assert_eq!(browser.all("#history tbody tr").await.len(), 2);
    browser.goto("/customers/CS1?outcome=failed").await;
    assert!(browser.exists("#no-history").await);
    browser.close().await;

    let phone = Browser::phone(&app.address, "customer-search").await;
    phone.login("admin", ADMIN_PASSWORD).await;
    phone.goto("/customers/CS1").await;
    let overflow = phone
        .js("return document.documentElement.scrollWidth > window.innerWidth;")
        .await;
    assert_eq!(overflow, json!(false), "the history is wider than a phone");
    phone.screenshot("history-phone").await;
    phone.close().await;
}
