//! Four-eyes approval in the browser (SPEC §14 "Pages"): the Customer Set
//! says a dangerous action waits and links to it; the navigation counts what
//! waits; `/approvals` lists it; the requester sees `#cancel-approval` and
//! no way to approve; another operator sees every CID, the reason and the
//! requester, and `#approve` / `#reject` with `#approval-comment`; what ran
//! upstream is exactly the list shown; an auditor sees and cannot decide;
//! the page's forms refuse a missing CSRF token and the requester's own
//! approval, executing nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::approvals::with_dangerous_purge;
use crate::browser::Browser;
use crate::helpers::{password_of, send, Session, TestApp};

async fn awaiting(session: &Session) -> Vec<Value> {
    session
        .get("/api/v1/approvals?status=awaiting")
        .await
        .expect(200)["approvals"]
        .as_array()
        .expect("approvals")
        .clone()
}

async fn logout(browser: &Browser) {
    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
}

#[tokio::test]
async fn a_request_waits_on_its_page_the_requester_cannot_approve_and_another_operator_runs_exactly_what_it_shows(
) {
    // Arrange
    let app = TestApp::spawn_with(with_dangerous_purge).await;
    let ana = app.create_user("operator").await;
    let bob = app.create_user("operator").await;
    let admin = app.admin().await;
    let cids = ["PX-001", "PX-002", "PX-003", "PX-004"];
    let browser = Browser::desktop(&app.address, "approval").await;
    browser
        .login(&ana.username, &password_of(&ana.username))
        .await;

    // Act: ana asks for Purge-Cache from the Customer Set.
    browser
        .fill_customer_set("Purge-Cache", &cids.join("\n"))
        .await;
    browser.type_into("#reason", "INC-77 stale prices").await;
    browser.click("#set-action").await;
    browser
        .wait_until(
            "the confirmation opens",
            "return document.getElementById('confirm-dialog').open;",
        )
        .await;
    browser.click("#confirm-yes").await;

    // Assert: it waits, links to its approval, and nothing ran.
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "notice", "{text}");
    assert!(text.contains("Waiting for approval"), "{text}");
    let approval_id = browser.text("#approval-link").await;
    browser.screenshot("result").await;
    assert_eq!(app.sandbox_requests().await, 0);
    let listed = awaiting(&admin).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["approval_id"], approval_id.as_str());
    assert_eq!(listed[0]["requested_by"], ana.username.as_str());

    // The requester's page: the request in full, a way to withdraw it, none to approve.
    browser.click("#approval-link").await;
    browser
        .wait_for_exact_path(&format!("/approvals/{approval_id}"))
        .await;
    let count = browser.text("#nav-approvals-count").await;
    assert!(
        count.contains('1'),
        "the navigation counts what waits: {count}"
    );
    assert!(browser.exists("#cancel-approval").await);
    assert!(!browser.exists("#approve").await && !browser.exists("#reject").await);
    browser.screenshot("requester").await;
    logout(&browser).await;

    // Another operator finds it in the list and opens it.
    browser
        .login(&bob.username, &password_of(&bob.username))
        .await;
    browser.goto("/approvals").await;
    let row = browser.text("#approvals-table").await;
    assert!(
        row.contains(&ana.username) && row.contains("Purge-Cache"),
        "{row}"
    );
    browser.screenshot("list").await;
    browser.click(".approval-link").await;
    browser
        .wait_for_exact_path(&format!("/approvals/{approval_id}"))
        .await;
    assert_eq!(browser.text("#approval-requester").await, ana.username);
    assert_eq!(
        browser.text("#approval-reason").await,
        "INC-77 stale prices"
    );
    let shown: Vec<String> = browser
        .js("return document.getElementById('approval-cids').textContent;")
        .await
        .as_str()
        .expect("text")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(shown, cids);
    assert!(!browser.exists("#cancel-approval").await);
    browser.screenshot("approver").await;

    // A rejection without a comment is refused on the page and changes nothing.
    browser.click("#reject").await;
    let error = browser.wait_for_text("#decision-error", "comment").await;
    assert!(error.starts_with("Not done"), "{error}");
    assert_eq!(awaiting(&admin).await.len(), 1);

    // Approve with a comment: it runs once, and the page says who and what.
    browser
        .type_into("#approval-comment", "checked with the pricing team")
        .await;
    browser.click("#approve").await;
    browser.wait_for_text("#approval-status", "approved").await;
    assert_eq!(
        browser.text("#approval-decided-by").await.split(' ').next(),
        Some(bob.username.as_str())
    );
    let executed = browser.text("#approval-result").await;
    assert!(executed.starts_with("job "), "{executed}");
    assert!(
        !browser.exists("a#approval-result").await,
        "an operator is not linked to another operator's job"
    );
    browser.screenshot("approved").await;
    assert_eq!(app.sandbox_requests().await, 1);

    // What was sent upstream is the list the approver saw.
    let approval = admin
        .get(&format!("/api/v1/approvals/{approval_id}"))
        .await
        .expect(200)["approval"]
        .clone();
    let job_id = approval["job_id"].as_str().expect("job_id");
    let job = admin
        .get(&format!("/api/v1/jobs/{job_id}"))
        .await
        .expect(200)["job"]
        .clone();
    assert_eq!(job["cids"], json!(cids));
    assert_eq!(job["approved_by"], bob.username.as_str());
    assert_eq!(job["user"], ana.username.as_str());
    logout(&browser).await;

    // The requester's job page names the approver.
    browser
        .login(&ana.username, &password_of(&ana.username))
        .await;
    browser.goto(&format!("/jobs/{job_id}")).await;
    assert_eq!(
        browser.text("#job-approved-by").await.split(' ').next(),
        Some(bob.username.as_str())
    );
    assert!(
        !browser.exists("#nav-approvals-count").await,
        "nothing waits any more"
    );
    browser.screenshot("job").await;
    browser.close().await;
}

#[tokio::test]
async fn an_auditor_sees_a_request_but_cannot_decide_and_the_forms_refuse_bad_posts() {
    // Arrange
    let app = TestApp::spawn_with(with_dangerous_purge).await;
    let ana = app.create_user("operator").await;
    let audrey = app.create_user("auditor").await;
    let bob = app.create_user("operator").await;
    let reply = ana
        .set_action(
            &crate::helpers::new_key(),
            &crate::helpers::action_body("Purge-Cache", json!(["AU1"])),
        )
        .await;
    let id = reply.expect(202)["approval"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // An auditor sees it, with no way to decide.
    let browser = Browser::phone(&app.address, "approval-auditor").await;
    browser
        .login(&audrey.username, &password_of(&audrey.username))
        .await;
    browser.goto(&format!("/approvals/{id}")).await;
    assert!(browser.exists("#approval-no-decision").await);
    assert!(!browser.exists("#approve").await && !browser.exists("#cancel-approval").await);
    let wide = browser
        .js("return document.documentElement.scrollWidth <= window.innerWidth;")
        .await;
    assert_eq!(wide, json!(true), "the page fits a phone");
    browser.screenshot("auditor-phone").await;
    browser.close().await;

    // The page's forms: a missing CSRF token, the requester's own approval
    // and an auditor's post are each refused, and nothing runs.
    let form = |session: &Session, csrf: Option<&str>, decision: &str| {
        let mut fields = vec![
            ("decision", decision.to_owned()),
            ("comment", "fine by me".to_owned()),
        ];
        if let Some(token) = csrf {
            fields.push(("csrf_token", token.to_owned()));
        }
        session
            .request(Method::POST, &format!("/approvals/{id}/decision"))
            .form(&fields)
    };
    let no_csrf = send(form(&bob, None, "approve")).await;
    assert_eq!(no_csrf.status, 403);
    assert!(
        no_csrf.text().contains("Form out of date"),
        "{}",
        no_csrf.text()
    );
    let own = send(form(&ana, ana.csrf_token.as_deref(), "approve")).await;
    assert_eq!(own.status, 403);
    assert!(own.text().contains("you asked for it"), "{}", own.text());
    let auditor = send(form(&audrey, audrey.csrf_token.as_deref(), "approve")).await;
    assert_eq!(auditor.status, 403);
    let cancel_no_csrf = send(
        ana.request(Method::POST, &format!("/approvals/{id}/cancel"))
            .form(&[("x", "y")]),
    )
    .await;
    assert_eq!(cancel_no_csrf.status, 403);
    assert_eq!(app.sandbox_requests().await, 0);
    let still = ana
        .get(&format!("/api/v1/approvals/{id}"))
        .await
        .expect(200);
    assert_eq!(still["approval"]["status"], "awaiting");

    // The requester withdraws it from the page's form.
    let cancelled = send(
        ana.request(Method::POST, &format!("/approvals/{id}/cancel"))
            .form(&[("csrf_token", ana.csrf_token.clone().unwrap())]),
    )
    .await;
    assert_eq!(cancelled.status, 303);
    let ended = ana
        .get(&format!("/api/v1/approvals/{id}"))
        .await
        .expect(200);
    assert_eq!(ended["approval"]["status"], "cancelled");
}
