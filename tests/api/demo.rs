//! `tms-dashboard demo` and `demo legacy`: a fresh store filled with weeks
//! of history that passes its own audits and that `serve` shows; refused on
//! a store that has jobs, changing nothing; the same seed, the same
//! history; and an old-dashboard file whose doubled clicks the import and
//! the duplicate audit find.

use serde_json::Value;

use crate::helpers::{free_port, ServerProcess, TestStore};
use crate::legacy::{cli, cli_in};

const UNTIL: &str = "2026-11-30T18:00:00Z";

/// The number before `word` in `text` ("demo: 264 jobs" → 264).
fn number_before(text: &str, word: &str) -> u64 {
    let at = text
        .find(word)
        .unwrap_or_else(|| panic!("no {word:?} in {text}"));
    text[..at]
        .split_whitespace()
        .last()
        .and_then(|n| n.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .unwrap_or_else(|| panic!("no number before {word:?} in {text}"))
}

/// The password the demo printed for `user`.
fn password_of(stdout: &str, user: &str) -> String {
    let marker = format!(" {user} password: ");
    let line = stdout
        .lines()
        .find(|l| l.contains(&marker))
        .unwrap_or_else(|| panic!("no password for {user} in {stdout}"));
    line.split(&marker)
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn json_of(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_fills_a_fresh_store_that_passes_its_audits_and_serve_shows_it() {
    // Arrange
    let store = TestStore::new().await;

    // Act
    let demo = cli(&store, &["demo", "--until", UNTIL]).await;

    // Assert: a few hundred jobs of every kind, and the people to see them.
    demo.expect_code(0);
    let jobs = number_before(&demo.stdout, "jobs over 21 days");
    assert!((200..=400).contains(&jobs), "{}", demo.stdout);
    for status in ["succeeded", "partial", "failed", "timed out"] {
        assert!(
            number_before(&demo.stdout, status) > 0,
            "no {status} job: {}",
            demo.stdout
        );
    }
    let imported = number_before(&demo.stdout, "jobs of the 14 days before");
    assert!(imported > 0, "{}", demo.stdout);
    let verified = cli(&store, &["audit", "verify"]).await;
    verified.expect_code(0);
    assert!(
        verified.stdout.contains(&format!(
            "chain of {} sealed job(s) is intact",
            jobs + imported
        )),
        "every job sealed: {}",
        verified.stdout
    );
    cli(&store, &["events", "verify"]).await.expect_code(0);
    let duplicates = cli(&store, &["audit", "duplicates", "--json"]).await;
    duplicates.expect_code(1);
    let report = json_of(&duplicates.stdout);
    let doubled = number_before(&demo.stdout, "doubled click(s)");
    assert_eq!(report["count"], doubled, "{}", duplicates.stdout);
    assert!(doubled > 0);
    let users = cli(&store, &["users", "list"]).await;
    for (user, role) in [
        ("admin", "admin"),
        ("mara", "admin"),
        ("olga", "operator"),
        ("wen", "operator"),
        ("audra", "auditor"),
        ("kofi", "auditor"),
    ] {
        assert!(
            users
                .stdout
                .lines()
                .any(|l| l.starts_with(user) && l.contains(role)),
            "{user} ({role}): {}",
            users.stdout
        );
    }

    // `serve` on the same store shows it all to the people the demo made.
    let server = ServerProcess::start(&store, free_port(), "serve.log", &[]).await;
    let auditor = server
        .login("audra", &password_of(&demo.stdout, "audra"))
        .await;
    let page = auditor.get("/api/v1/jobs?limit=500").await.expect(200);
    let listed = page["jobs"].as_array().expect("jobs").len() as u64;
    assert_eq!(listed, (jobs + imported).min(500));
    // The deliberate re-run came minutes later, after the guard asked: a
    // group at a window of minutes, and only when confirmed runs are asked for.
    let groups = |include: bool| {
        let auditor = &auditor;
        async move {
            let path = format!("/api/v1/audit/duplicates?window_s=600&include_confirmed={include}");
            auditor.get(&path).await.expect(200)["count"]
                .as_u64()
                .unwrap_or(0)
        }
    };
    assert_eq!(groups(true).await, groups(false).await + 1);
    let runs = auditor.get("/api/v1/runs").await.expect(200);
    let run = &runs["runs"][0];
    assert_eq!(run["status"], "finished", "{runs}");
    assert_eq!(run["batch_count"], 3, "{run}");
    assert!(run["customers"]["failed"].as_u64() > Some(0), "{run}");
    let operator = server
        .login("olga", &password_of(&demo.stdout, "olga"))
        .await;
    let own = operator.jobs("limit=500").await;
    assert!(!own.is_empty());
    assert!(own.iter().all(|j| j["user"] == "olga"));
}

#[tokio::test]
async fn a_second_demo_on_the_same_store_is_refused_and_changes_nothing() {
    // Arrange
    let store = TestStore::new().await;
    cli(&store, &["demo", "--until", UNTIL])
        .await
        .expect_code(0);
    let before = contents(&store).await;

    // Act
    let again = cli(&store, &["demo", "--until", UNTIL]).await;

    // Assert
    again.expect_code(2);
    assert!(
        again.stderr.contains("already has jobs"),
        "{}",
        again.stderr
    );
    assert!(!again.stdout.contains("password"), "{}", again.stdout);
    assert!(
        contents(&store).await == before,
        "the refused demo changed the store"
    );

    // A history that would end in the future is refused before any store is made.
    let dir = tempfile::tempdir().expect("dir");
    let future = cli_in(dir.path(), &["demo", "--until", "2999-01-01T00:00:00Z"]).await;
    future.expect_code(2);
    assert!(future.stderr.contains("future"), "{}", future.stderr);
    assert!(!dir.path().join("data").exists());
}

#[tokio::test]
async fn the_same_seed_makes_the_same_history() {
    // Arrange
    let (a, b, c) = (
        TestStore::new().await,
        TestStore::new().await,
        TestStore::new().await,
    );

    // Act
    for (store, seed) in [(&a, "7"), (&b, "7"), (&c, "8")] {
        cli(store, &["demo", "--seed", seed, "--until", UNTIL])
            .await
            .expect_code(0);
    }

    // Assert: the same jobs, ids and outcomes included; another seed, others.
    let (ha, hb, hc) = (history(&a).await, history(&b).await, history(&c).await);
    assert!(!ha.is_empty());
    assert_eq!(ha, hb);
    assert_ne!(ha, hc);
}

#[tokio::test]
async fn demo_legacy_writes_an_old_dashboard_file_whose_doubled_clicks_the_import_finds() {
    // Arrange
    let store = TestStore::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("legacy-flask-jobs.db");
    let file = file.to_string_lossy().into_owned();

    // Act
    let written = cli_in(
        dir.path(),
        &["demo", "legacy", &file, "--seed", "5", "--until", UNTIL],
    )
    .await;
    let imported = cli(&store, &["import", "legacy", &file]).await;
    let duplicates = cli(&store, &["audit", "duplicates", "--json"]).await;

    // Assert
    written.expect_code(0);
    assert!(
        !written.stderr.contains("store:"),
        "demo legacy opens no store: {}",
        written.stderr
    );
    let rows = number_before(&written.stdout, "rows of the old dashboard");
    let doubled = number_before(&written.stdout, "doubled click(s)");
    assert!(rows > 100 && doubled > 0, "{}", written.stdout);
    imported.expect_code(0);
    assert!(
        imported
            .stdout
            .contains(&format!("imported {rows} of {rows} rows, 0 skipped")),
        "{}",
        imported.stdout
    );
    assert!(
        !imported.all_output().contains("legacy-demo-token"),
        "a token of the old payloads was printed"
    );
    duplicates.expect_code(1);
    let report = json_of(&duplicates.stdout);
    assert_eq!(report["count"], doubled, "{}", duplicates.stdout);
    for group in report["groups"].as_array().expect("groups") {
        assert_eq!(
            group["job_ids"].as_array().map(Vec::len),
            Some(2),
            "{group}"
        );
    }
    // The file is never written over.
    let again = cli_in(dir.path(), &["demo", "legacy", &file]).await;
    again.expect_code(2);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
}

/// Each job of a store as one line: id, status, customers, time.
async fn history(store: &TestStore) -> Vec<String> {
    let listed = cli(store, &["jobs", "list", "--json", "--limit", "500"]).await;
    listed.expect_code(0);
    json_of(&listed.stdout)["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            format!(
                "{} {} {} {}",
                j["job_id"], j["status"], j["cids"], j["created_at"]
            )
        })
        .collect()
}

/// What a store holds, as the command line reads it: every event (each
/// change writes one), every job, every user.
async fn contents(store: &TestStore) -> Vec<String> {
    let mut all = Vec::new();
    for args in [
        &["events", "tail"][..],
        &["jobs", "export", "--format", "ndjson"],
        &["users", "list"],
        &["runs", "list"],
    ] {
        let run = cli(store, args).await;
        run.expect_code(0);
        assert!(run.stdout.len() > 100, "{args:?}: {}", run.stdout);
        all.push(run.stdout);
    }
    all
}
