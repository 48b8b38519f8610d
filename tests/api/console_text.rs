//! What the console's pages say (SPEC §16), read from their HTML: one time
//! format, days typed as `YYYY-MM-DD`, words instead of raw enum values,
//! singular and plural, error pages that keep the navigation, an overview
//! for auditors, the CIDs of a small job in its row, and a 500-CID job's
//! page that stays short.

use reqwest::header::ACCEPT;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{action_body, new_key, send, TestApp};
use crate::runs::cids;

/// The signed-in layout: the main navigation and who is signed in.
fn has_navigation(page: &str) -> bool {
    page.contains("aria-label=\"Main\"") && page.contains("id=\"current-user\"")
}

#[tokio::test]
async fn error_pages_keep_the_navigation_for_someone_signed_in() {
    // Arrange
    let app = TestApp::spawn().await;
    let operator = app.create_user("operator").await;

    // Act
    let not_found = operator
        .get("/jobs/01900000-0000-7000-8000-000000000000")
        .await;
    let forbidden = operator.get("/admin/users").await;
    let unknown_path = send(
        operator
            .request(Method::GET, "/no-such-page")
            .header(ACCEPT, "text/html"),
    )
    .await;
    let anonymous = send(
        app.anonymous()
            .request(Method::GET, "/no-such-page")
            .header(ACCEPT, "text/html"),
    )
    .await;

    // Assert: the status and the message stay, the navigation is there.
    assert_eq!(not_found.status, 404);
    assert_eq!(forbidden.status, 403);
    assert_eq!(unknown_path.status, 404);
    for (name, reply) in [
        ("404", &not_found),
        ("403", &forbidden),
        ("unknown path", &unknown_path),
    ] {
        let page = reply.text();
        assert!(has_navigation(&page), "{name} lost the navigation: {page}");
        assert!(page.contains("id=\"error-message\""), "{name}: {page}");
        assert!(page.contains(&operator.username), "{name}: {page}");
        assert!(!page.contains("href=\"/admin/users\""), "{name}: {page}");
    }
    assert_eq!(anonymous.status, 404);
    assert!(!has_navigation(&anonymous.text()));
}

#[tokio::test]
async fn the_jobs_page_reads_as_words_in_one_time_format_with_typed_days() {
    // Arrange: one job that timed out, one of two CIDs.
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["SLOW-1"])))
        .await
        .assert_status(504);

    // Act
    let page = admin.get("/jobs").await.text();

    // Assert
    assert!(page.contains(">timed out</span>"), "{page}");
    assert!(!page.contains(">timed_out<"), "a raw enum value is shown");
    assert!(page.contains("· 1 job</span>"), "the chart's count: {page}");
    assert!(!page.contains("1 jobs"));
    assert!(
        !page.contains("type=\"date\""),
        "a locale date input is left"
    );
    for id in ["f-since", "f-until"] {
        let input = page
            .split(&format!("id=\"{id}\""))
            .nth(1)
            .and_then(|rest| rest.split('>').next())
            .unwrap_or_else(|| panic!("no #{id}"));
        assert!(input.contains("type=\"text\""), "{input}");
        assert!(input.contains("placeholder=\"YYYY-MM-DD\""), "{input}");
        assert!(input.contains("pattern="), "{input}");
    }
    // Times: `YYYY-MM-DD HH:MM:SS UTC` and nothing else inside <time>.
    let times: Vec<&str> = page
        .split("<time datetime=")
        .skip(1)
        .filter_map(|t| t.split('>').nth(1)?.split('<').next())
        .collect();
    assert!(!times.is_empty());
    for t in times {
        assert_eq!(t.len(), 23, "{t}");
        assert!(t.ends_with(" UTC") && t.as_bytes()[10] == b' ', "{t}");
    }
    // The typed day is what the filter reads.
    let filtered = admin.get("/jobs?since=2000-01-01&until=2000-01-02").await;
    assert_eq!(filtered.status, 200);
    assert!(filtered.text().contains("id=\"no-jobs\""));
}

#[tokio::test]
async fn a_small_jobs_row_names_its_customers() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin
        .set_action(
            &new_key(),
            &action_body("Trans-Begin", json!(["C1001", "C1002"])),
        )
        .await
        .assert_status(201);
    admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(cids("W", 9))))
        .await
        .assert_status(201);

    // Act
    let page = admin.get("/jobs").await.text();

    // Assert
    assert!(
        page.contains("<span class=\"cid-preview mono\">C1001, C1002</span>"),
        "{page}"
    );
    assert!(
        page.contains("<span class=\"cid-preview mono\">W000000, W000001, W000002, … +6</span>"),
        "{page}"
    );
}

#[tokio::test]
async fn an_auditor_lands_on_an_overview_of_the_latest_jobs() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let job = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["A1"])))
        .await
        .expect(201);
    let auditor = app.create_user("auditor").await;

    // Act
    let page = auditor.get("/").await.text();

    // Assert: no form, the latest job, a way on.
    assert!(page.contains("id=\"no-set-action\""), "{page}");
    assert!(!page.contains("id=\"set-action\""));
    assert!(page.contains("<h1>Overview</h1>"), "{page}");
    let id = job["job"]["job_id"].as_str().expect("job_id");
    assert!(page.contains(&format!("href=\"/jobs/{id}\"")), "{page}");
    assert!(page.contains("id=\"customer-search\""));
    assert!(page.contains("href=\"/audit/duplicates\""));
}

#[tokio::test]
async fn a_500_cid_job_lists_its_customers_compactly_and_folds_its_request() {
    // Arrange: 499 applied, one refused.
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut list = cids("Q", 499);
    list.push("NOPE-1".into());
    let job = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(list)))
        .await
        .expect(207);
    let id = job["job"]["job_id"].as_str().expect("job_id");

    // Act
    let page = admin.get(&format!("/jobs/{id}")).await.text();

    // Assert: a row for the refused one only, the rest as a list.
    assert_eq!(page.matches("<tr data-cid=").count(), 1, "{page}");
    assert!(page.contains("<tr data-cid=\"NOPE-1\" data-outcome=\"failed\">"));
    let flow = page
        .split("id=\"customers-ok\"")
        .nth(1)
        .and_then(|rest| rest.split("</ul>").next())
        .expect("the list of ok customers");
    assert_eq!(flow.matches("<li>").count(), 499);
    assert!(
        page.contains("Show the request (500 customer IDs)"),
        "{page}"
    );
    // The CIDs of the request are on one wrapped line, not a line each.
    let request = page
        .split("id=\"job-request\"")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .expect("the request");
    assert!(request.lines().count() < 15, "{request}");
    let unescaped = request.replace("&quot;", "\"").replace("&#34;", "\"");
    assert!(unescaped.contains("\"action_code\": 1"), "{request}");
}

#[tokio::test]
async fn an_invalid_cid_is_told_what_a_cid_looks_like() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    // Act
    let reply = admin
        .set_action(
            &new_key(),
            &action_body("Trans-Begin", json!(["ok-1", "bad!"])),
        )
        .await;

    // Assert
    let problem = reply.expect_problem(422, "invalid_cids");
    let text = problem.to_string();
    assert!(text.contains("1 invalid customer ID:"), "{text}");
    assert!(
        text.contains("use letters, digits, _ . or -, starting with a letter or digit"),
        "{text}"
    );
}

#[tokio::test]
async fn the_tokens_table_shows_its_times_like_every_other_page() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin.create_token("nightly report").await;

    // Act
    let page = admin.get("/account").await.text();

    // Assert: created as `YYYY-MM-DD HH:MM:SS UTC`, not RFC 3339.
    let table = page
        .split("id=\"tokens-table\"")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("the tokens table");
    let cells: Vec<&str> = table
        .split("<td data-label=\"")
        .skip(1)
        .filter(|c| c.starts_with("Created"))
        .collect();
    assert_eq!(cells.len(), 1, "{table}");
    for cell in cells {
        let text: String = cell
            .split('>')
            .skip(1)
            .filter_map(|part| part.split('<').next())
            .collect();
        let at = text.trim();
        assert_eq!(at.len(), 23, "{cell}");
        assert!(at.ends_with(" UTC") && at.as_bytes()[10] == b' ', "{cell}");
    }
}
