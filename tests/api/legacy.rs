//! `import legacy`: the old Flask dashboard's jobs come in with their ids and
//! times, their secrets left behind, re-runs skipping what is in, and their
//! doubled clicks found by the duplicate audit. Also the fixtures the audit
//! tests share: the real CLI, and a legacy file written on the spot.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::helpers::{password_of, Endpoint, TestApp, TestStore};

/// The sample store of the old dashboard that the team shares.
pub const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/samples/legacy-flask-jobs.db"
);

/// What a CLI run printed and how it ended.
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs the real `tms-dashboard` binary on `store` (`--database-url` last).
pub async fn cli(store: &TestStore, args: &[&str]) -> CliRun {
    cli_with_url(store.dir(), &store.url, args).await
}

pub async fn cli_with_url(dir: &Path, url: &str, args: &[&str]) -> CliRun {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--database-url", url]);
    cli_in(dir, &all).await
}

/// Runs the real `tms-dashboard` binary in `dir` with exactly `args` (no
/// store named: the default, relative to `dir`).
pub async fn cli_in(dir: &Path, args: &[&str]) -> CliRun {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tms-dashboard"))
        .args(args)
        .current_dir(dir)
        .env_remove("TMS_CONFIG")
        .env_remove("TMS_DATABASE_URL")
        .env_remove("TMS_ADMIN_PASSWORD")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("Failed to run tms-dashboard");
    CliRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The time of one legacy row, in one of the forms the old files hold.
#[derive(Clone, Debug)]
pub enum At {
    Text(String),
    Unix(i64),
}

/// One row of a generated legacy file.
#[derive(Clone, Debug)]
pub struct Row {
    pub job_id: String,
    pub user: String,
    pub action: String,
    /// As stored: JSON array text or comma-separated text.
    pub cids: String,
    pub url: String,
    pub at: At,
    pub summary: Option<String>,
}

impl Row {
    pub fn new(user: &str, action: &str, cids: &str, url: &str, at: At) -> Row {
        Row {
            job_id: uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string(),
            user: user.into(),
            action: action.into(),
            cids: cids.into(),
            url: url.into(),
            at,
            summary: Some("Successfully processed".into()),
        }
    }
}

/// `2025-01-01 10:00:00` plus `ms` milliseconds, as the old dashboard wrote it.
pub fn at(ms: i64) -> At {
    let t = chrono::DateTime::from_timestamp_millis(1_735_725_600_000 + ms).unwrap();
    At::Text(t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
}

/// Writes a legacy jobs table in the Flask shape, less `action_code` (the
/// importer must tolerate missing columns). Every payload holds a token.
pub async fn write_legacy_file(path: &Path, rows: &[Row]) {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .expect("legacy file");
    sqlx::query(
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL UNIQUE, \
         user_id TEXT, action_name TEXT, cids TEXT, cid_count INTEGER, cluster_url TEXT, \
         request_payload TEXT, response_summary TEXT, status TEXT DEFAULT 'completed', created_at)",
    )
    .execute(&mut conn)
    .await
    .expect("create the legacy table");
    for (n, row) in rows.iter().enumerate() {
        let payload = json!({
            "action": row.action, "cids": row.cids, "url": row.url,
            "token": format!("legacy-secret-{n}"),
            "headers": {"Authorization": format!("Bearer legacy-secret-auth-{n}")},
        });
        let q = sqlx::query(
            "INSERT INTO jobs (job_id, user_id, action_name, cids, cid_count, cluster_url, request_payload, \
             response_summary, created_at) VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8)",
        )
        .bind(&row.job_id)
        .bind(&row.user)
        .bind(&row.action)
        .bind(&row.cids)
        .bind(&row.url)
        .bind(payload.to_string())
        .bind(row.summary.as_deref());
        // Unix times go in as integers, as some old files hold them.
        let q = match &row.at {
            At::Text(t) => q.bind(t.clone()),
            At::Unix(s) => q.bind(*s),
        };
        q.execute(&mut conn).await.expect("insert a legacy row");
    }
    conn.close().await.expect("close the legacy file");
}

const EU: &str = "http://tms-eu-1.internal:8443";
const US: &str = "http://tms-us-2.internal:8443/";

/// A legacy file with known duplicates; returns its path, the expected
/// groups (job ids, oldest first) at a 2 s window, and the number of rows
/// that cannot be imported.
pub async fn generated_legacy_file(dir: &Path) -> (PathBuf, Vec<Vec<String>>, Vec<Row>) {
    let base = 1_735_725_600i64;
    let pair = [
        Row::new("alice", "Trans-Begin", r#"["A1", "A2"]"#, EU, at(0)),
        Row::new("alice", "Trans-Begin", r#"["A1", "A2"]"#, EU, at(1_500)),
    ];
    // Gaps of 1 s and exactly 2 s: equal to the window counts.
    let triple = [
        Row::new("alice", "Suspend", r#"["B1"]"#, EU, at(100_000)),
        Row::new("alice", "Suspend", r#"["B1"]"#, EU, at(101_000)),
        Row::new("alice", "Suspend", r#"["B1"]"#, EU, at(103_000)),
    ];
    let near_miss = [
        Row::new("alice", "Resume", r#"["C1"]"#, EU, at(200_000)),
        Row::new("alice", "Resume", r#"["C1"]"#, EU, at(202_001)),
    ];
    // The same set of CIDs in another order, and as comma-separated text.
    let reordered = [
        Row::new("bob", "Trans-End", r#"["D2", "D1"]"#, EU, at(300_000)),
        Row::new("bob", "Trans-End", "D1,D2", EU, at(301_000)),
    ];
    let other_user = [
        Row::new("alice", "Purge-Cache", r#"["E1"]"#, EU, at(400_000)),
        Row::new("bob", "Purge-Cache", r#"["E1"]"#, EU, at(400_500)),
    ];
    let other_cluster = [
        Row::new("alice", "Reprocess", r#"["F1"]"#, EU, at(500_000)),
        Row::new("alice", "Reprocess", r#"["F1"]"#, US, at(500_500)),
    ];
    let other_cids = [
        Row::new("alice", "Reprocess", r#"["F1", "F2"]"#, EU, at(500_700)),
        Row::new("alice", "Reprocess", r#"["F2"]"#, EU, at(500_900)),
    ];
    // Unix seconds, and an old id that is not a UUID.
    let mut unix = [
        Row::new("bob", "Trans-Begin", r#"["G1"]"#, US, At::Unix(base + 600)),
        Row::new("bob", "Trans-Begin", r#"["G1"]"#, US, At::Unix(base + 601)),
    ];
    unix[1].job_id = "legacy-17".into();
    // Awkward text for the export: an action name with a comma, quotes and a newline.
    let mut awkward = Row::new("carol", "Say \"hi\", then\nleave", "H1", EU, at(700_000));
    awkward.summary = Some("line one,\n\"line\" two".into());
    let mut bad_user = Row::new("", "Suspend", r#"["X1"]"#, EU, at(800_000));
    bad_user.job_id = "broken-1".into();
    let mut bad_time = Row::new("alice", "Suspend", r#"["X2"]"#, EU, at(0));
    bad_time.at = At::Text("the day before yesterday".into());
    bad_time.job_id = "broken-2".into();

    let expected = vec![
        ids(&pair),
        ids(&triple),
        ids(&reordered),
        ids(&unix[..1]), // the second gets a new id; matched by legacy_id below
    ];
    let mut rows = Vec::new();
    for group in [
        &pair[..],
        &triple,
        &near_miss,
        &reordered,
        &other_user,
        &other_cluster,
        &other_cids,
        &unix,
    ] {
        rows.extend_from_slice(group);
    }
    rows.push(awkward);
    rows.push(bad_user);
    rows.push(bad_time);
    let path = dir.join("legacy.db");
    write_legacy_file(&path, &rows).await;
    (path, expected, rows)
}

fn ids(rows: &[Row]) -> Vec<String> {
    rows.iter().map(|r| r.job_id.clone()).collect()
}

/// The API's duplicate report as the given session sees it.
pub async fn duplicates(session: &crate::helpers::Session, query: &str) -> Value {
    session
        .get(&format!("/api/v1/audit/duplicates?{query}"))
        .await
        .expect(200)
}

/// The groups of a report as lists of job ids.
pub fn group_ids(report: &Value) -> Vec<Vec<String>> {
    report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            g["job_ids"]
                .as_array()
                .expect("job_ids")
                .iter()
                .map(|id| id.as_str().expect("id").to_owned())
                .collect()
        })
        .collect()
}

/// A job as the API shows it.
pub async fn job(endpoint: &Endpoint, id: &str) -> Value {
    endpoint
        .admin()
        .await
        .get(&format!("/api/v1/jobs/{id}"))
        .await
        .expect(200)["job"]
        .clone()
}

async fn spawn() -> (Arc<TestStore>, TestApp) {
    let store = Arc::new(TestStore::new().await);
    let app = TestApp::spawn_on(store.clone(), |_| {}).await;
    (store, app)
}

fn sorted(mut groups: Vec<Vec<String>>) -> Vec<Vec<String>> {
    groups.sort();
    groups
}

#[tokio::test]
async fn a_generated_legacy_file_gives_exactly_the_expected_duplicate_groups() {
    // Arrange
    let (store, app) = spawn().await;
    let (path, mut expected, _) = generated_legacy_file(store.dir()).await;
    let auditor = app.create_user("auditor").await;

    // Act
    let run = cli(&store, &["import", "legacy", path.to_str().unwrap()]).await;

    // Assert
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("imported 18 of 20 rows, 2 skipped (0 already imported, 2 unreadable)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("skipped broken-1: user_id is empty"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("skipped broken-2: created_at"),
        "{}",
        run.stdout
    );
    let legacy = auditor.jobs("user=bob&action=Trans-Begin").await;
    let renamed = legacy
        .iter()
        .find(|j| j["legacy_id"] == "legacy-17")
        .expect("the job whose old id was not a UUID");
    expected[3].push(renamed["job_id"].as_str().unwrap().to_owned());
    let report = duplicates(&auditor, "window_s=2").await;
    assert_eq!(report["count"], 4, "{report}");
    assert_eq!(sorted(group_ids(&report)), sorted(expected));
    let triple = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["action"] == "Suspend")
        .expect("the triple");
    assert_eq!(triple["user"], "alice");
    assert_eq!(triple["cluster"], "tms-eu-1.internal");
    assert_eq!(triple["cid_count"], 1);
    assert_eq!(triple["first_at"], "2025-01-01T10:01:40.000Z");
    assert_eq!(triple["last_at"], "2025-01-01T10:01:43.000Z");
}

#[tokio::test]
async fn a_narrower_window_or_a_since_bound_finds_fewer_groups() {
    // Arrange
    let (store, app) = spawn().await;
    let (path, _, _) = generated_legacy_file(store.dir()).await;
    cli(&store, &["import", "legacy", path.to_str().unwrap()])
        .await
        .expect_code(0);
    let admin = app.admin().await;

    // Act
    let narrow = duplicates(&admin, "window_s=1.5").await;
    let since = duplicates(&admin, "since=2025-01-01T10:06:00Z").await;

    // Assert: at 1.5 s the triple's 2 s gap splits it, leaving a pair.
    let sizes: Vec<usize> = group_ids(&narrow).iter().map(Vec::len).collect();
    assert_eq!(narrow["count"], 4, "{narrow}");
    assert_eq!(sizes.iter().sum::<usize>(), 8, "{narrow}");
    assert_eq!(
        since["count"], 1,
        "only the Unix-time pair is after 10:06: {since}"
    );
}

#[tokio::test]
async fn imported_jobs_keep_their_ids_and_times_and_are_flagged() {
    // Arrange
    let (store, app) = spawn().await;
    let (path, _, rows) = generated_legacy_file(store.dir()).await;

    // Act
    cli(&store, &["import", "legacy", path.to_str().unwrap()])
        .await
        .expect_code(0);

    // Assert
    let first = job(&app, &rows[0].job_id).await;
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["imported"], true);
    assert_eq!(first["legacy_id"], Value::Null);
    assert_eq!(first["created_at"], "2025-01-01T10:00:00.000Z");
    assert_eq!(first["finished_at"], first["created_at"]);
    assert_eq!(first["duration_ms"], Value::Null);
    assert_eq!(first["cluster"], "tms-eu-1.internal");
    assert_eq!(first["action_code"], 1, "the code comes from the catalog");
    assert_eq!(first["cids"], json!(["A1", "A2"]));
    assert_eq!(first["duplicate_of"], Value::Null);
    let admin = app.admin().await;
    let renamed = admin.jobs("user=bob&action=Trans-Begin").await;
    let renamed = renamed
        .iter()
        .find(|j| j["legacy_id"] == "legacy-17")
        .unwrap();
    let id = uuid::Uuid::parse_str(renamed["job_id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(renamed["created_at"], "2025-01-01T10:10:01.000Z");
    let by_cid = admin.jobs("cid=D1").await;
    assert_eq!(by_cid.len(), 2, "imported CIDs are searchable");
}

#[tokio::test]
async fn missing_users_are_created_disabled_without_a_password() {
    // Arrange
    let (store, app) = spawn().await;
    let (path, _, _) = generated_legacy_file(store.dir()).await;

    // Act
    let run = cli(&store, &["import", "legacy", path.to_str().unwrap()]).await;

    // Assert
    run.expect_code(0);
    assert!(run
        .stdout
        .contains("created user alice (operator, disabled, no password)"));
    let users = app.admin().await.get("/api/v1/users").await.expect(200);
    let alice = crate::helpers::list_of(&users, "users")
        .into_iter()
        .find(|u| u["username"] == "alice")
        .expect("alice");
    assert_eq!(alice["disabled"], true);
    assert_eq!(alice["role"], "operator");
    app.try_login("alice", &password_of("alice"))
        .await
        .assert_status(401);
    let admin = app.admin().await;
    assert_eq!(admin.username, "admin", "the existing admin is untouched");
}

#[tokio::test]
async fn a_dry_run_reports_the_import_and_writes_nothing() {
    // Arrange
    let (store, app) = spawn().await;
    let (path, _, _) = generated_legacy_file(store.dir()).await;

    // Act
    let run = cli(
        &store,
        &["import", "legacy", path.to_str().unwrap(), "--dry-run"],
    )
    .await;

    // Assert
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("dry run: 18 of 20 rows would be imported"),
        "{}",
        run.stdout
    );
    let admin = app.admin().await;
    assert!(admin.jobs("").await.is_empty());
    let users = admin.get("/api/v1/users").await.expect(200);
    assert_eq!(crate::helpers::list_of(&users, "users").len(), 1);
}

#[tokio::test]
async fn importing_again_skips_every_row_and_says_why() {
    // Arrange
    let (store, app) = spawn().await;
    let (path, _, _) = generated_legacy_file(store.dir()).await;
    let path = path.to_str().unwrap();
    cli(&store, &["import", "legacy", path])
        .await
        .expect_code(0);

    // Act
    let again = cli(&store, &["import", "legacy", path]).await;

    // Assert
    again.expect_code(0);
    assert!(
        again
            .stdout
            .contains("imported 0 of 20 rows, 20 skipped (18 already imported, 2 unreadable)"),
        "{}",
        again.stdout
    );
    let present = again
        .stdout
        .matches("already imported (its job id is in the store)")
        .count();
    assert_eq!(present, 18, "every skipped row is listed: {}", again.stdout);
    assert!(again.stdout.contains("skipped legacy-17: already imported"));
    assert_eq!(app.admin().await.jobs("limit=500").await.len(), 18);
}

#[tokio::test]
async fn no_legacy_secret_reaches_the_store_or_the_output() {
    // Arrange
    let (store, _app) = spawn().await;
    let (path, _, _) = generated_legacy_file(store.dir()).await;
    let path = path.to_str().unwrap();

    // Act
    let dry = cli(&store, &["import", "legacy", path, "--dry-run"]).await;
    let real = cli(&store, &["import", "legacy", path]).await;
    let report = cli(&store, &["audit", "duplicates"]).await;
    let export = cli(&store, &["jobs", "export", "--format", "ndjson"]).await;

    // Assert
    for run in [&dry, &real, &report, &export] {
        assert!(
            !run.all_output().contains("legacy-secret"),
            "{}",
            run.all_output()
        );
    }
    let dump = String::from_utf8_lossy(&store.dump()).into_owned();
    assert!(dump.contains("alice"), "the dump holds the store");
    assert!(!dump.contains("legacy-secret"));
}

#[tokio::test]
async fn a_file_without_a_jobs_table_is_an_error() {
    // Arrange
    let (store, _app) = spawn().await;
    let empty = store.dir().join("empty.db");
    write_legacy_file(&empty, &[]).await;
    let other = store.dir().join("other.db");
    let mut conn = SqliteConnectOptions::new()
        .filename(&other)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::query("CREATE TABLE things (x TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    // Act
    let missing = cli(&store, &["import", "legacy", "/nonexistent/legacy.db"]).await;
    let no_table = cli(&store, &["import", "legacy", other.to_str().unwrap()]).await;
    let no_rows = cli(&store, &["import", "legacy", empty.to_str().unwrap()]).await;

    // Assert
    missing.expect_code(2);
    no_table.expect_code(2);
    assert!(
        no_table.stderr.contains("has no jobs table"),
        "{}",
        no_table.stderr
    );
    no_rows.expect_code(0);
    assert!(
        no_rows.stdout.contains("imported 0 of 0 rows"),
        "{}",
        no_rows.stdout
    );
}

#[tokio::test]
async fn live_actions_still_run_after_an_import() {
    // Arrange
    let (store, app) = spawn().await;
    let (path, _, _) = generated_legacy_file(store.dir()).await;
    cli(&store, &["import", "legacy", path.to_str().unwrap()])
        .await
        .expect_code(0);
    let admin = app.admin().await;

    // Act
    let first = admin
        .set_action(
            &crate::helpers::new_key(),
            &crate::helpers::action_body("Trans-Begin", json!(["L1"])),
        )
        .await;
    let second = admin
        .set_action(
            &crate::helpers::new_key(),
            &crate::helpers::action_body("Suspend", json!(["L2"])),
        )
        .await;

    // Assert
    first.assert_status(201);
    second.assert_status(201);
    assert_eq!(first.json()["job"]["imported"], false);
}

#[tokio::test]
async fn the_sample_file_imports_2001_jobs_and_the_audit_finds_165_pairs() {
    // Arrange
    assert!(
        Path::new(SAMPLE).is_file(),
        "the shared sample {SAMPLE} is missing: the audit tests need shared/ beside the clone"
    );
    let (store, app) = spawn().await;

    // Act
    let import = cli(&store, &["import", "legacy", SAMPLE]).await;
    let report = cli(&store, &["audit", "duplicates", "--window", "2s", "--json"]).await;
    let table = cli(&store, &["audit", "duplicates"]).await;

    // Assert
    import.expect_code(0);
    assert!(
        import
            .stdout
            .contains("imported 2001 of 2001 rows, 0 skipped"),
        "{}",
        import.stdout
    );
    report.expect_code(1);
    let doc: Value = serde_json::from_str(&report.stdout).expect("the report is JSON");
    assert_eq!(doc["count"], 165);
    let groups = doc["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 165);
    assert!(groups
        .iter()
        .all(|g| g["job_ids"].as_array().unwrap().len() == 2));
    table.expect_code(1);
    assert!(
        table.stdout.contains("FAIL: 165 duplicate group(s)"),
        "{}",
        table.stdout
    );
    let api = duplicates(&app.admin().await, "window_s=2").await;
    assert_eq!(api["count"], 165);
    for run in [&import, &report, &table] {
        assert!(!run.all_output().contains("legacy-secret-"));
    }
    assert!(!String::from_utf8_lossy(&store.dump()).contains("legacy-secret-"));
}
