//! Accessibility and phone layouts (SPEC §16), in Chromium: axe-core finds
//! no serious or critical violation on any page at 1280 and at 390 wide, no
//! page is wider than a phone's screen, and the Customer Set's dialogs work
//! with the keyboard alone. Each page's screenshot is kept in
//! `target/screenshots/` (`a11y-1280-*.png`, `a11y-390-*.png`).

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::{json, Value};

use crate::approvals::with_dangerous_purge;
use crate::browser::Browser;
use crate::helpers::{action_body, new_key, password_of, Session, TestApp, ADMIN_PASSWORD};
use crate::runs::{cids, create_run, is_over, run_body, wait_for_run};

/// axe-core as `npm ci --prefix tests/axe` installs it.
fn axe_source() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/axe/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing ({}: {e}); run `npm ci --prefix tests/axe --no-audit --no-fund`",
            path.display()
        )
    })
}

/// The pages of a console with a few of everything in it, as `(name, path)`.
struct Console {
    app: TestApp,
    pages: Vec<(&'static str, String)>,
}

fn id_of(body: &Value, kind: &str, member: &str) -> String {
    body[kind][member]
        .as_str()
        .unwrap_or_else(|| panic!("no {kind}.{member} in {body}"))
        .to_owned()
}

/// A console a first-day user might meet after a few days: jobs of every
/// status, a 500-CID job, a duplicate pair, a run, an approval waiting,
/// users of every role, a token.
async fn populated_console() -> Console {
    let app = TestApp::spawn_with(|c| {
        with_dangerous_purge(c);
        // Double clicks as the old dashboard let them through, for the duplicates page.
        c.duplicate_guard_window = Duration::ZERO;
    })
    .await;
    let admin = app.admin().await;
    let operator = app.create_user("operator").await;
    app.create_user("auditor").await;
    let disabled = app.create_user("operator").await;
    admin
        .patch_json(
            &format!("/api/v1/users/{}", disabled.username),
            &json!({"disabled": true}),
        )
        .await
        .expect(200);
    admin.create_token("nightly report").await;

    let run_job = |session: &Session, cids: Value| {
        let session = session.clone();
        async move {
            session
                .set_action(&new_key(), &action_body("Trans-Begin", cids))
                .await
                .json()
        }
    };
    let small = run_job(&admin, json!(["C1001", "C1002"])).await;
    run_job(&admin, json!(["C1001", "C1002"])).await;
    let partial = run_job(&operator, json!(["C1042", "NOPE-7", "LOST-8"])).await;
    run_job(&admin, json!(["FAIL-1"])).await;
    run_job(&operator, json!(["SLOW-1"])).await;
    let big = run_job(&admin, json!(cids("B", 500))).await;
    let run = create_run(
        &admin,
        &new_key(),
        &run_body(
            "Trans-Begin",
            cids("R", 1200),
            json!({"reason": "INC-2041"}),
        ),
    )
    .await
    .expect(202);
    let run_id = id_of(&run, "run", "run_id");
    wait_for_run(&admin, &run_id, 30, is_over).await;
    let approval = operator
        .set_action(
            &new_key(),
            &json!({"cluster": "sandbox", "action": "Purge-Cache", "cids": ["C1042", "C1043"], "reason": "INC-2050 stale prices"}),
        )
        .await
        .expect(202);
    let approval_id = id_of(&approval, "approval", "approval_id");

    let pages = vec![
        ("customer-set", "/".to_owned()),
        ("jobs", "/jobs".to_owned()),
        ("job", format!("/jobs/{}", id_of(&partial, "job", "job_id"))),
        (
            "job-small",
            format!("/jobs/{}", id_of(&small, "job", "job_id")),
        ),
        ("job-500", format!("/jobs/{}", id_of(&big, "job", "job_id"))),
        ("customer", "/customers/C1042".to_owned()),
        ("account", "/account".to_owned()),
        ("approvals", "/approvals".to_owned()),
        ("approval", format!("/approvals/{approval_id}")),
        ("runs", "/runs".to_owned()),
        ("run", format!("/runs/{run_id}")),
        ("duplicates", "/audit/duplicates".to_owned()),
        (
            "duplicates-confirm",
            format!(
                "/audit/duplicates?window_s=2&confirm={}",
                id_of(&small, "job", "job_id")
            ),
        ),
        ("users", "/admin/users".to_owned()),
        ("not-found", "/no-such-page".to_owned()),
    ];
    Console { app, pages }
}

/// Runs axe on the page and returns one line per serious or critical violation.
async fn serious_violations(browser: &Browser, axe: &str, page: &str) -> Vec<String> {
    browser.js(&format!("{axe}\nreturn true;")).await;
    let found = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']})
               .then((r) => done(r.violations
                 .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                 .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join(' | ')}`)))
               .catch((e) => done([`axe failed: ${e}`]));",
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("axe did not run on {page}: {e}"));
    found
        .as_array()
        .map(|v| {
            v.iter()
                .map(|line| format!("{page}: {}", line.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// Saves the page at the window's width and its whole length.
async fn screenshot_whole(browser: &Browser, width: u32, height: u32, page: &str) {
    // The window's own bars take part of its height.
    let length = browser
        .js("return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight;")
        .await
        .as_u64()
        .unwrap_or(u64::from(height));
    let length = u32::try_from(length).unwrap_or(height).clamp(height, 8000);
    browser
        .client
        .set_window_size(width, length)
        .await
        .expect("window size");
    browser.screenshot(page).await;
    browser
        .client
        .set_window_size(width, height)
        .await
        .expect("window size");
}

/// Visits every page at one width and returns what is wrong with them.
async fn check_every_page(console: &Console, width: u32, height: u32) -> Vec<String> {
    let axe = axe_source();
    let browser = if width < 700 {
        Browser::phone(&console.app.address, "a11y-390").await
    } else {
        Browser::desktop(&console.app.address, "a11y-1280").await
    };
    let mut problems = Vec::new();
    browser.goto("/login").await;
    browser.find("#login").await;
    problems.extend(serious_violations(&browser, &axe, "login").await);
    screenshot_whole(&browser, width, height, "login").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    for (name, path) in &console.pages {
        browser.goto(path).await;
        browser.find("main").await;
        if *name == "customer-set" {
            browser.find("#set-form[data-ready='true']").await;
        }
        let mut found = serious_violations(&browser, &axe, name).await;
        if width < 700 {
            let fits = browser
                .js("return document.documentElement.scrollWidth <= window.innerWidth;")
                .await;
            if fits != Value::Bool(true) {
                let widths = browser
                    .js("return `${document.documentElement.scrollWidth} > ${window.innerWidth}`;")
                    .await;
                found.push(format!("{name}: wider than the screen ({widths})"));
            }
        }
        if width < 700 && *name == "jobs" {
            // Today's bar (every job of the console is today's) is drawn on screen.
            let today = browser
                .js("const bars = [...document.querySelectorAll('svg rect.bar')]
                       .map((b) => b.getBoundingClientRect())
                       .filter((r) => r.width > 0 && r.height > 0);
                     return bars.length > 0 && bars.every((r) => r.left >= 0 && r.right <= window.innerWidth);")
                .await;
            if today != Value::Bool(true) {
                found.push("jobs: today's bar of the chart is not on the screen".to_owned());
            }
        }
        problems.extend(found);
        screenshot_whole(&browser, width, height, name).await;
    }
    if width < 700 {
        // The phone's menu opens without script and lists every page.
        browser.goto("/jobs").await;
        browser.click("#menu > summary").await;
        let links = browser.all("#menu nav a").await;
        if links.len() < 7 {
            problems.push(format!("menu: {} links", links.len()));
        }
        for link in links {
            if !link.is_displayed().await.unwrap_or(false) {
                problems.push("menu: a link is not shown once it is open".to_owned());
            }
        }
        problems.extend(serious_violations(&browser, &axe, "menu-open").await);
        browser.screenshot("menu-open").await;
        // The Jobs filters start folded and open without script.
        browser.goto("/jobs").await;
        let status = browser.find("#f-status").await;
        if status.is_displayed().await.unwrap_or(true) {
            problems.push("jobs: the filters are not folded on a phone".to_owned());
        }
        browser.click("label[for='filters-box-toggle']").await;
        if !status.is_displayed().await.unwrap_or(false) {
            problems.push("jobs: the filters do not open".to_owned());
        }
        problems.extend(serious_violations(&browser, &axe, "filters-open").await);
        screenshot_whole(&browser, width, height, "filters-open").await;
    }
    browser.close().await;
    problems
}

#[tokio::test]
async fn every_page_passes_axe_and_fits_a_phone() {
    // Arrange
    let console = populated_console().await;

    // Act
    let mut problems = check_every_page(&console, 1280, 900).await;
    problems.extend(check_every_page(&console, 390, 844).await);

    // Assert
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Presses one key on whatever has the focus, as a person would.
async fn press(browser: &Browser, key: Key) {
    let key: char = key.into();
    let keys = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    browser
        .client
        .perform_actions(keys)
        .await
        .expect("key press");
    browser.client.release_actions().await.expect("release");
}

/// The id of the focused element.
async fn focused(browser: &Browser) -> String {
    browser
        .js("return document.activeElement ? document.activeElement.id : '';")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn dialog_open(browser: &Browser, id: &str) -> bool {
    browser
        .js(&format!("return document.getElementById('{id}').open;"))
        .await
        == Value::Bool(true)
}

/// Tabs from the focused element until `id` has the focus (at most 30 presses).
async fn tab_to(browser: &Browser, id: &str) {
    tab_to_match(browser, &format!("#{id}")).await;
}

/// Tabs until the focused element matches `css` (at most 30 presses).
async fn tab_to_match(browser: &Browser, css: &str) {
    let script = format!(
        "return document.activeElement !== null && document.activeElement.matches({});",
        serde_json::to_string(css).expect("json")
    );
    for _ in 0..30 {
        if browser.js(&script).await == Value::Bool(true) {
            return;
        }
        press(browser, Key::Tab).await;
    }
    panic!("Tab never reached {css}");
}

#[tokio::test]
async fn the_confirmation_and_the_duplicate_warning_work_with_the_keyboard_alone() {
    // Arrange: the guard on, so a second run of the same CIDs warns.
    let app = TestApp::spawn().await;
    let operator = app.create_user("operator").await;
    let browser = Browser::desktop(&app.address, "a11y-keyboard").await;
    browser
        .login(&operator.username, &password_of(&operator.username))
        .await;
    browser
        .fill_customer_set("Trans-Begin", "K1001 K1002")
        .await;
    browser.wait_for_text("#cid-count", "2 valid").await;

    // Act: Tab to the button, Enter opens the confirmation.
    tab_to(&browser, "set-action").await;
    press(&browser, Key::Enter).await;
    browser
        .wait_until(
            "the confirmation is open",
            "return document.getElementById('confirm-dialog').open;",
        )
        .await;

    // Assert: the focus is in the dialog and Tab keeps it there.
    assert_eq!(focused(&browser).await, "confirm-yes");
    press(&browser, Key::Tab).await;
    let inside = browser
        .js("return document.getElementById('confirm-dialog').contains(document.activeElement);")
        .await;
    assert_eq!(inside, Value::Bool(true), "Tab left the dialog");
    browser.screenshot("confirm-focused").await;
    // Escape cancels: no job, the focus back on the button.
    press(&browser, Key::Escape).await;
    assert!(!dialog_open(&browser, "confirm-dialog").await);
    assert_eq!(focused(&browser).await, "set-action");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(operator.jobs("").await.is_empty(), "Escape ran the action");

    // Enter on the button, Enter on "Run it": one job.
    press(&browser, Key::Enter).await;
    browser
        .wait_until(
            "the confirmation is open again",
            "return document.getElementById('confirm-dialog').open;",
        )
        .await;
    tab_to(&browser, "confirm-yes").await;
    press(&browser, Key::Enter).await;
    let (kind, text) = browser.result().await;
    assert_eq!(kind, "success", "{text}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(operator.jobs("").await.len(), 1);

    // The same again warns in the duplicate dialog, which Escape closes.
    tab_to(&browser, "set-action").await;
    press(&browser, Key::Enter).await;
    browser
        .wait_until(
            "the confirmation is open a third time",
            "return document.getElementById('confirm-dialog').open;",
        )
        .await;
    tab_to(&browser, "confirm-yes").await;
    press(&browser, Key::Enter).await;
    browser
        .wait_until(
            "the duplicate warning is open",
            "return document.getElementById('duplicate-dialog').open;",
        )
        .await;
    assert_eq!(focused(&browser).await, "duplicate-no");
    let when = browser.text("#duplicate-when").await;
    assert!(
        when.len() >= 23 && when.contains(" UTC") && when.as_bytes()[4] == b'-',
        "{when}"
    );
    browser.screenshot("duplicate-focused").await;
    press(&browser, Key::Escape).await;
    assert!(!dialog_open(&browser, "duplicate-dialog").await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        operator.jobs("").await.len(),
        1,
        "Escape on the warning ran it again"
    );
    browser.close().await;
}

#[tokio::test]
async fn a_duplicate_group_is_marked_with_the_keyboard_alone_after_its_confirmation() {
    // Arrange: a double click let through (the guard off).
    let app = TestApp::spawn_with(|c| c.duplicate_guard_window = Duration::ZERO).await;
    let admin = app.admin().await;
    let body = action_body("Trans-Begin", json!(["D1"]));
    for _ in 0..2 {
        admin.set_action(&new_key(), &body).await.assert_status(201);
    }
    let browser = Browser::desktop(&app.address, "a11y-mark").await;
    browser.login("admin", ADMIN_PASSWORD).await;
    browser.goto("/audit/duplicates").await;
    browser.find("#duplicates-table").await;

    // Act: Tab to "Mark…", Enter; the confirmation has the focus on its button.
    tab_to_match(&browser, ".mark-group").await;
    press(&browser, Key::Enter).await;
    browser.find("#mark-confirm").await;
    assert_eq!(focused(&browser).await, "mark-yes");
    // Shift+Tab reaches Cancel, Enter cancels: nothing marked.
    let back: char = Key::Shift.into();
    let tab: char = Key::Tab.into();
    let keys = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value: back })
        .then(KeyAction::Down { value: tab })
        .then(KeyAction::Up { value: tab })
        .then(KeyAction::Up { value: back });
    browser
        .client
        .perform_actions(keys)
        .await
        .expect("shift tab");
    browser.client.release_actions().await.expect("release");
    assert_eq!(focused(&browser).await, "mark-no");
    press(&browser, Key::Enter).await;
    browser.find("#duplicates-table").await;
    assert!(!browser.exists("#mark-confirm").await);
    let marked = |jobs: &[Value]| jobs.iter().filter(|j| !j["duplicate_of"].is_null()).count();
    assert_eq!(marked(&admin.jobs("").await), 0);
    // Again, and Enter on "Mark them".
    tab_to_match(&browser, ".mark-group").await;
    press(&browser, Key::Enter).await;
    browser.find("#mark-confirm").await;
    press(&browser, Key::Enter).await;

    // Assert
    browser
        .wait_for_text("#marked-notice", "Marked 1 job")
        .await;
    assert_eq!(marked(&admin.jobs("").await), 1);
    browser.close().await;
}
