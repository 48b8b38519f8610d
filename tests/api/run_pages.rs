//! Runs in the browser (SPEC §13 "Pages"): more CIDs than an action's
//! `max_cids` pasted or uploaded on `/` make one run after a confirmation
//! naming its batches; the run's page follows it live without a reload and
//! steers it (pause, resume, cancel, retry, each confirmed); `/runs` lists
//! the runs a person may see; and a 100,000-CID paste stays smooth.

use std::time::Duration;

use serde_json::{json, Value};

use crate::browser::{screenshot_dir, Browser};
use crate::helpers::{new_key, password_of, Session, TestApp, ADMIN_PASSWORD};
use crate::runs::{cids, create_run, get_run, is_over, run_body, wait_for_run};

/// Opens the Customer Set on the sandbox cluster with `action` chosen.
pub(crate) async fn open_customer_set(browser: &Browser, action: &str) {
    browser.goto("/").await;
    browser.find("#set-form[data-ready='true']").await;
    browser
        .find("#cluster")
        .await
        .select_by_value("sandbox")
        .await
        .expect("cluster");
    browser
        .find("#action")
        .await
        .select_by_value(action)
        .await
        .expect("action");
}

/// Puts `text` into `#cids` as a paste does: one value change, one `input` event.
pub(crate) async fn paste(browser: &Browser, text: &str) {
    let script = format!(
        "const t = document.getElementById('cids'); t.value = {}; \
         t.dispatchEvent(new InputEvent('input', {{bubbles: true, inputType: 'insertFromPaste'}})); return true;",
        serde_json::to_string(text).expect("json")
    );
    browser.js(&script).await;
}

async fn runs_of(session: &Session) -> Vec<Value> {
    session.get("/api/v1/runs").await.expect(200)["runs"]
        .as_array()
        .expect("runs")
        .clone()
}

async fn dialog_open(browser: &Browser, id: &str) {
    browser
        .wait_until(
            &format!("#{id} is open"),
            &format!("return document.getElementById('{id}').open;"),
        )
        .await;
}

/// The page's id for this document: a reload makes a new one.
async fn mark_document(browser: &Browser) {
    browser
        .js("window.__document_mark = 'still here'; return true;")
        .await;
}

async fn document_is_the_same(browser: &Browser) -> bool {
    browser
        .js("return window.__document_mark === 'still here';")
        .await
        == json!(true)
}

/// `count` CIDs, the first of each batch of `batch` slowed down by `delay_ms`
/// in the sandbox, so the run takes that long.
fn slow_cids(prefix: &str, count: usize, batch: usize, delay_ms: u64) -> Vec<String> {
    (0..count)
        .map(|i| {
            if i % batch == 0 {
                format!("DELAY{delay_ms}-{prefix}{i:05}")
            } else {
                format!("{prefix}{i:05}")
            }
        })
        .collect()
}

#[tokio::test]
async fn pasting_1203_cids_makes_one_run_of_3_batches_whose_page_shows_it_finish_live() {
    // Arrange: the action takes 500 CIDs a job; each batch waits 3 s at the cluster.
    let app = TestApp::spawn_with(|c| c.upstream_timeout = Duration::from_secs(20)).await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "run-paste").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    open_customer_set(&browser, "Trans-Begin").await;
    let list = slow_cids("W", 1203, 500, 3000);

    // Act: paste them, open the confirmation.
    paste(&browser, &list.join("\n")).await;
    let count = browser.wait_for_text("#cid-count", "1,203 valid").await;
    assert!(count.contains("3 batches"), "{count}");
    browser.screenshot("filled").await;
    browser.click("#set-action").await;
    dialog_open(&browser, "confirm-dialog").await;
    let question = browser.text("#confirm-dialog").await;
    assert!(
        question.contains("1,203 customer IDs") && question.contains("3 batches"),
        "{question}"
    );
    assert!(browser.find("#run-at").await.is_displayed().await.unwrap());
    browser.screenshot("confirm").await;
    browser.double_click("#confirm-yes").await;

    // Assert: one run, linked from the result.
    let run_id = browser.wait_for_text("#run-link", "-").await;
    browser.screenshot("result").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let runs = runs_of(&admin).await;
    assert_eq!(runs.len(), 1, "one run per confirmation: {runs:?}");
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    assert_eq!(runs[0]["cid_count"], 1203);
    assert_eq!(runs[0]["batch_count"], 3);

    // The run's page follows it to the end without a reload.
    browser.click("#run-link").await;
    browser
        .wait_for_exact_path(&format!("/runs/{run_id}"))
        .await;
    browser.find("#run-page[data-ready='true']").await;
    mark_document(&browser).await;
    let first = browser.text("#run-progress").await;
    assert!(
        !first.contains("1,203 of 1,203"),
        "the run was over before its page opened: {first}"
    );
    browser.screenshot("run-page-mid-run").await;
    browser
        .wait_for_text("#run-progress", "1,203 of 1,203 customers done")
        .await;
    assert!(
        document_is_the_same(&browser).await,
        "the page was reloaded"
    );
    browser
        .wait_until(
            "the page stops reading once the run is over",
            "return document.getElementById('run-page').dataset.live === 'false';",
        )
        .await;
    assert_eq!(browser.text("#run-status").await, "finished");
    assert_eq!(browser.text("#run-customers-ok").await, "1,203");
    assert_eq!(browser.text("#run-batches-succeeded").await, "3");
    let job_links = browser.all("#run-batches tbody .batch-job a").await;
    assert_eq!(job_links.len(), 3, "each batch links to its job");
    let href = job_links[0].attr("href").await.unwrap().unwrap_or_default();
    assert!(href.starts_with("/jobs/"), "{href}");
    for id in ["#run-pause", "#run-resume", "#run-cancel", "#run-retry"] {
        assert!(
            !browser.find(id).await.is_displayed().await.unwrap(),
            "{id} shows on a finished run without failures"
        );
    }
    let csv = browser
        .find("#run-customers-csv")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(csv, format!("/api/v1/runs/{run_id}/customers?format=csv"));
    browser.screenshot("run-page-finished").await;

    // The job of a batch opens.
    browser.goto(&href).await;
    browser.find("#job-page-id").await;

    // And /runs lists it.
    browser.click("#nav-runs").await;
    browser.wait_for_exact_path("/runs").await;
    let row = browser.text("#runs-table tbody tr").await;
    assert!(
        row.contains("1,203 / 1,203") && row.contains("finished"),
        "{row}"
    );
    browser.screenshot("runs-list").await;
    browser.close().await;
}

#[tokio::test]
async fn a_csv_file_is_read_by_its_cid_column_and_a_text_file_line_by_line() {
    // Arrange
    let app = TestApp::spawn_with(|c| c.max_run_cids = 1000).await;
    let browser = Browser::desktop(&app.address, "run-file").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    open_customer_set(&browser, "Trans-Begin").await;
    let dir = tempfile::tempdir().expect("dir");
    let csv = dir.path().join("customers.csv");
    std::fs::write(
        &csv,
        "name,CID,note\r\n\"Smith, Anna\",F0001,first\r\nBo,F0002,\r\nCy,F0003,\"a \"\"quoted\"\" note\"\r\nDi,F0002,repeat\r\nEd,,none\r\n",
    )
    .expect("csv");
    let text = dir.path().join("cids.txt");
    std::fs::write(&text, "customer id\nT1\nT2\n\nT3\n").expect("txt");

    // Act + Assert: the CSV's "CID" column, not its first.
    let file = browser.find("#cids-file").await;
    file.send_keys(&csv.display().to_string())
        .await
        .expect("upload");
    let count = browser.wait_for_text("#cid-count", "3 valid").await;
    assert!(
        count.contains("0 invalid") && count.contains("1 repeated"),
        "{count}"
    );
    let note = browser.text("#cids-file-note").await;
    assert!(
        note.contains("customers.csv") && note.contains("“CID”"),
        "{note}"
    );
    assert_eq!(
        browser
            .js("return document.getElementById('cids').value;")
            .await,
        json!("F0001\nF0002\nF0003\nF0002")
    );
    browser.screenshot("csv").await;

    // A text file: one a line, its header line left out.
    browser.goto("/").await;
    browser.find("#set-form[data-ready='true']").await;
    let file = browser.find("#cids-file").await;
    file.send_keys(&text.display().to_string())
        .await
        .expect("upload");
    let count = browser.wait_for_text("#cid-count", "3 valid").await;
    assert!(count.contains("0 invalid"), "{count}");
    assert!(browser
        .text("#cids-file-note")
        .await
        .contains("“customer id”"));

    // More than max_run_cids: refused before anything is sent.
    paste(&browser, &cids("M", 1001).join(" ")).await;
    let count = browser.wait_for_text("#cid-count", "1,001 valid").await;
    assert!(count.contains("at most 1,000"), "{count}");
    browser.click("#set-action").await;
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "notice", "{text}");
    assert!(text.contains("at most 1,000"), "{text}");
    assert!(
        browser
            .js("return document.getElementById('confirm-dialog').open;")
            .await
            == json!(false)
    );
    let admin = app.admin().await;
    assert!(runs_of(&admin).await.is_empty());
    browser.close().await;
}

#[tokio::test]
async fn a_slow_run_is_paused_resumed_and_cancelled_from_its_page_after_confirmations() {
    // Arrange: 40 batches of one CID, each a second at the cluster, four at a time.
    let app = TestApp::spawn_with(|c| c.upstream_timeout = Duration::from_secs(20)).await;
    let admin = app.admin().await;
    let body = run_body(
        "Suspend",
        slow_cids("P", 40, 1, 1000),
        json!({"batch_size": 1}),
    );
    let run = create_run(&admin, &new_key(), &body).await.expect(202)["run"].clone();
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let browser = Browser::desktop(&app.address, "run-steer").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.goto(&format!("/runs/{run_id}")).await;
    browser.find("#run-page[data-ready='true']").await;
    mark_document(&browser).await;
    assert!(!browser
        .find("#run-resume")
        .await
        .is_displayed()
        .await
        .unwrap());

    // Pause: asked first, then sent once however often it is clicked.
    browser.wait_for_text("#run-status", "running").await;
    browser.click("#run-pause").await;
    dialog_open(&browser, "run-command-dialog").await;
    assert!(browser
        .text("#run-command-dialog")
        .await
        .contains("Pause this run?"));
    browser.screenshot("pause-dialog").await;
    browser.double_click("#run-command-yes").await;
    browser.wait_for_text("#run-message", "Paused").await;
    browser.wait_for_text("#run-status", "paused").await;
    assert_eq!(get_run(&admin, &run_id).await["run"]["status"], "paused");
    browser.find("#run-resume:not([hidden])").await;
    assert!(!browser
        .find("#run-pause")
        .await
        .is_displayed()
        .await
        .unwrap());
    browser.screenshot("paused").await;

    // No new batch starts while it is paused.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let paused = get_run(&admin, &run_id).await["run"].clone();
    assert_eq!(paused["batches"]["running"], 0, "{paused}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let still = get_run(&admin, &run_id).await["run"].clone();
    assert_eq!(
        still["batches"], paused["batches"],
        "a batch started while paused"
    );

    // Resume.
    browser.click("#run-resume").await;
    dialog_open(&browser, "run-command-dialog").await;
    browser.click("#run-command-yes").await;
    browser.wait_for_text("#run-message", "Resumed").await;
    browser.wait_for_text("#run-status", "running").await;

    // Cancel: a "no" first changes nothing.
    browser.click("#run-cancel").await;
    dialog_open(&browser, "run-command-dialog").await;
    browser.click("#run-command-no").await;
    assert_ne!(get_run(&admin, &run_id).await["run"]["status"], "cancelled");
    browser.click("#run-cancel").await;
    dialog_open(&browser, "run-command-dialog").await;
    assert!(browser
        .text("#run-command-dialog")
        .await
        .contains("cannot be resumed"));
    browser.click("#run-command-yes").await;
    browser.wait_for_text("#run-status", "cancelled").await;

    // Assert: unsent batches cancelled, the page caught up without a reload.
    let over = wait_for_run(&admin, &run_id, 15, is_over).await;
    assert!(over["batches"]["cancelled"].as_i64().unwrap() > 0, "{over}");
    browser
        .wait_until(
            "the page stops reading once the sent batches are done",
            "return document.getElementById('run-page').dataset.live === 'false';",
        )
        .await;
    let cancelled = over["batches"]["cancelled"].as_i64().unwrap().to_string();
    assert_eq!(browser.text("#run-batches-cancelled").await, cancelled);
    assert!(
        document_is_the_same(&browser).await,
        "the page was reloaded"
    );
    for id in ["#run-pause", "#run-resume", "#run-cancel"] {
        assert!(
            !browser.find(id).await.is_displayed().await.unwrap(),
            "{id}"
        );
    }
    // Cancelled customers were not run: the retry offers them.
    assert!(browser
        .find("#run-retry")
        .await
        .is_displayed()
        .await
        .unwrap());
    browser.screenshot("cancelled").await;
    browser.close().await;
}

#[tokio::test]
async fn the_failed_customers_of_a_run_are_retried_once_as_a_new_run_linked_both_ways() {
    // Arrange: 600 CIDs in two batches, three refused by the cluster.
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut list = cids("RR", 600);
    for i in [5, 250, 555] {
        list[i] = format!("NOPE-{i}");
    }
    let run = create_run(&admin, &new_key(), &run_body("Resume", list, json!({})))
        .await
        .expect(202)["run"]
        .clone();
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    wait_for_run(&admin, &run_id, 15, is_over).await;
    let browser = Browser::desktop(&app.address, "run-retry").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.goto(&format!("/runs/{run_id}")).await;
    browser.find("#run-page[data-ready='true']").await;
    assert_eq!(browser.text("#run-customers-failed").await, "3");

    // Act
    browser.click("#run-retry").await;
    dialog_open(&browser, "run-retry-dialog").await;
    assert!(browser
        .text("#run-retry-count")
        .await
        .contains("3 customers"));
    browser.screenshot("retry-dialog").await;
    browser.double_click("#run-retry-yes").await;

    // Assert: one new run of the three, its page opened, linked both ways.
    browser
        .wait_until(
            "the new run's page opens",
            &format!("return location.pathname.startsWith('/runs/') && location.pathname !== '/runs/{run_id}';"),
        )
        .await;
    let path = browser.path().await;
    let new_id = path.trim_start_matches("/runs/").to_owned();
    assert_ne!(new_id, run_id);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(runs_of(&admin).await.len(), 2, "one retry per confirmation");
    let retry = get_run(&admin, &new_id).await["run"].clone();
    assert_eq!(retry["cid_count"], 3);
    assert_eq!(retry["retry_of"], run_id.as_str());
    browser.find("#run-page[data-ready='true']").await;
    assert_eq!(browser.text("#run-retry-of").await, run_id);
    browser.goto(&format!("/runs/{run_id}")).await;
    assert!(browser.text("#run-retries").await.contains(&new_id[..8]));
    browser.close().await;
}

#[tokio::test]
async fn an_operator_cannot_open_another_operators_run_and_the_run_pages_fit_a_phone() {
    // Arrange
    let app = TestApp::spawn_with(|c| c.upstream_timeout = Duration::from_secs(20)).await;
    let owner = app.create_user("operator").await;
    let other = app.create_user("operator").await;
    let run = create_run(
        &owner,
        &new_key(),
        &run_body("Suspend", slow_cids("PH", 1200, 500, 2500), json!({})),
    )
    .await
    .expect(202)["run"]
        .clone();
    let run_id = run["run_id"].as_str().unwrap().to_owned();

    // Act + Assert: the other operator gets the page's 404, and no row.
    let stranger = Browser::desktop(&app.address, "run-other").await;
    stranger
        .login(&other.username, &password_of(&other.username))
        .await;
    stranger.goto(&format!("/runs/{run_id}")).await;
    assert!(stranger.text("h1").await.contains("(404)"));
    assert!(!stranger.exists("#run-page").await);
    stranger.goto("/runs").await;
    assert!(stranger.exists("#no-runs").await);
    stranger.close().await;
    let api = other.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(api.status, 404);

    // The run pages keep the security policy: no inline script or style.
    for path in ["/runs".to_owned(), format!("/runs/{run_id}")] {
        let reply = owner.get(&path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(
            reply.header("content-security-policy").as_deref(),
            Some("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
            "{path}"
        );
        let html = reply.text();
        assert!(
            !html.contains(" style=") && !html.contains("<script>"),
            "{path}"
        );
    }

    // The owner, on a phone: the list and the run mid-run, nothing sideways.
    let phone = Browser::phone(&app.address, "run-phone").await;
    phone
        .login(&owner.username, &password_of(&owner.username))
        .await;
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth;";
    phone.goto("/runs").await;
    phone.find("#runs-table").await;
    phone.screenshot("runs").await;
    assert_eq!(phone.js(fits).await, json!(true), "/runs");
    phone.goto(&format!("/runs/{run_id}")).await;
    phone.find("#run-page[data-ready='true']").await;
    phone.screenshot("run").await;
    assert_eq!(phone.js(fits).await, json!(true), "/runs/{{id}}");
    phone
        .screenshot_at("#run-batches-title", "run-batches")
        .await;
    open_customer_set(&phone, "Suspend").await;
    paste(&phone, &cids("PQ", 700).join("\n")).await;
    phone.wait_for_text("#cid-count", "700 valid").await;
    phone.click("#set-action").await;
    dialog_open(&phone, "confirm-dialog").await;
    phone.screenshot("confirm").await;
    assert_eq!(phone.js(fits).await, json!(true), "the confirmation");
    phone.close().await;
}

#[tokio::test]
async fn a_100000_cid_paste_is_counted_without_freezing_the_page_and_runs_as_200_batches() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "run-100k").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    open_customer_set(&browser, "Trans-Begin").await;

    // Act: paste 100,000 CIDs made in the page, timing the input handler
    // and watching for long tasks (script) and long animation frames
    // (script and rendering) until the counter shows them.
    browser
        .js(r#"
            const lines = [];
            for (let i = 0; i < 100000; i++) lines.push("K" + String(i).padStart(7, "0"));
            window.__text = lines.join("\n");
            window.__m = { long: [], frames: [] };
            new PerformanceObserver((list) => {
              for (const e of list.getEntries()) window.__m.long.push([Math.round(e.startTime), Math.round(e.duration)]);
            }).observe({ type: "longtask" });
            new PerformanceObserver((list) => {
              for (const e of list.getEntries()) window.__m.frames.push([Math.round(e.startTime), Math.round(e.duration)]);
            }).observe({ type: "long-animation-frame" });
            return true;
        "#)
        .await;
    let measured = browser
        .js(r#"
            const t = document.getElementById("cids");
            const counter = document.getElementById("cid-count");
            const m = window.__m;
            window.__pasted = new Promise((resolve) => {
              const started = performance.now();
              new MutationObserver((_, observer) => {
                if (counter.textContent.includes("100,000 valid")) {
                  observer.disconnect();
                  m.counted = Math.round(performance.now() - started);
                  m.end = performance.now();
                  resolve(true);
                }
              }).observe(counter, { subtree: true, childList: true, characterData: true });
              t.value = window.__text;
              m.value = Math.round(performance.now() - started);
              const before = performance.now();
              t.dispatchEvent(new InputEvent("input", { bubbles: true, inputType: "insertFromPaste" }));
              m.after = performance.now();
              m.handler = +(m.after - before).toFixed(1);
            });
            return true;
        "#)
        .await;
    assert_eq!(measured, json!(true));
    browser.wait_for_text("#cid-count", "100,000 valid").await;
    assert_eq!(browser.js("return window.__pasted;").await, json!(true));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Script after the paste's own task: the count and its display.
    let paste = browser
        .js(r#"
            const m = window.__m;
            m.script_after = m.long.filter(([start]) => start >= m.after).map(([, d]) => d);
            m.longest_script_after = Math.max(0, ...m.script_after);
            m.frames_ms = m.frames.map(([, d]) => d);
            return m;
        "#)
        .await;
    // Typing one more CID at the end: the handler only schedules a count.
    let typed = browser
        .js(r#"
            const t = document.getElementById("cids");
            t.value += "\nK9999999";
            const started = performance.now();
            t.dispatchEvent(new InputEvent("input", { bubbles: true, inputType: "insertText" }));
            return +(performance.now() - started).toFixed(1);
        "#)
        .await;
    browser.wait_for_text("#cid-count", "100,001 valid").await;
    let report = format!(
        "100,000-CID paste in Chromium (ms): setting the textarea's value {}, the input handler {}, \
         until the counter showed 100,000 {}; long tasks of script after the paste's own task {} \
         (the longest {}); long animation frames, the browser laying out the textarea included, {}; \
         typing one more CID: the input handler {typed}\n",
        paste["value"],
        paste["handler"],
        paste["counted"],
        paste["script_after"],
        paste["longest_script_after"],
        paste["frames_ms"]
    );
    eprint!("{report}");
    std::fs::create_dir_all(screenshot_dir()).expect("dir");
    std::fs::write(screenshot_dir().join("run-100k-measure.txt"), &report).expect("report");
    assert!(
        paste["handler"].as_f64().unwrap() < 50.0 && typed.as_f64().unwrap() < 50.0,
        "the input handler blocked the page: {report}"
    );
    assert!(
        paste["longest_script_after"].as_f64().unwrap() < 100.0,
        "counting blocked the page: {report}"
    );

    // One more than max_run_cids is refused before anything is sent.
    browser.click("#set-action").await;
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "notice", "{text}");
    assert!(text.contains("at most 100,000"), "{text}");

    // 100,000: the confirmation names the batches, and one click queues one run.
    browser
        .js(r#"
            const t = document.getElementById("cids");
            t.value = window.__text;
            t.dispatchEvent(new InputEvent("input", { bubbles: true, inputType: "deleteContentBackward" }));
            return true;
        "#)
        .await;
    browser.wait_for_text("#cid-count", "100,000 valid").await;
    browser.click("#set-action").await;
    dialog_open(&browser, "confirm-dialog").await;
    let question = browser.text("#confirm-dialog").await;
    assert!(
        question.contains("100,000 customer IDs") && question.contains("200 batches"),
        "{question}"
    );
    browser.screenshot("confirm").await;
    browser.click("#confirm-yes").await;
    let run_id = browser.wait_for_text("#run-link", "-").await;
    let run = get_run(&admin, &run_id).await["run"].clone();
    assert_eq!(run["cid_count"], 100_000);
    assert_eq!(run["batch_count"], 200);
    admin
        .post_json(&format!("/api/v1/runs/{run_id}/cancel"), &json!({}))
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_run_given_a_start_time_in_run_at_is_scheduled_and_cancelled_before_it_starts() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let browser = Browser::desktop(&app.address, "run-at").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    open_customer_set(&browser, "Resume").await;
    paste(&browser, &cids("SC", 700).join(" ")).await;
    browser.wait_for_text("#cid-count", "700 valid").await;

    // Act: an hour from now, in the browser's zone.
    browser.click("#set-action").await;
    dialog_open(&browser, "confirm-dialog").await;
    let chosen = browser
        .js(r#"
            const d = new Date(Date.now() + 3600e3);
            d.setSeconds(0, 0);
            const p = (n) => String(n).padStart(2, "0");
            document.getElementById("run-at").value =
              `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
            return d.getTime();
        "#)
        .await;
    browser.click("#confirm-yes").await;
    let run_id = browser.wait_for_text("#run-link", "-").await;
    assert!(browser.text("#result").await.contains("Run scheduled"));

    // Assert: scheduled at that instant, sent as UTC; only cancel applies.
    let run = get_run(&admin, &run_id).await["run"].clone();
    assert_eq!(run["status"], "scheduled");
    let at = chrono::DateTime::parse_from_rfc3339(run["run_at"].as_str().unwrap()).unwrap();
    assert_eq!(at.timestamp_millis(), chosen.as_i64().unwrap());
    browser.click("#run-link").await;
    browser.find("#run-page[data-ready='true']").await;
    assert!(browser.text("#run-live").await.contains("starts at"));
    for (id, shown) in [
        ("#run-pause", false),
        ("#run-resume", false),
        ("#run-cancel", true),
        ("#run-retry", false),
    ] {
        assert_eq!(
            browser.find(id).await.is_displayed().await.unwrap(),
            shown,
            "{id}"
        );
    }
    browser.click("#run-cancel").await;
    dialog_open(&browser, "run-command-dialog").await;
    browser.click("#run-command-yes").await;
    browser.wait_for_text("#run-status", "cancelled").await;
    let run = get_run(&admin, &run_id).await["run"].clone();
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["customers"]["not_run"], 700);
    browser.close().await;
}
