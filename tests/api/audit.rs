//! The duplicate audit, `audit dedupe` and `jobs export`: the report's shape
//! and roles, exit codes cron can read, marks that are written once and never
//! delete anything, and exports that quote awkward values.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::helpers::{action_body, new_key, TestApp, TestStore};
use crate::legacy::{
    cli, cli_with_url, duplicates, generated_legacy_file, group_ids, job, write_legacy_file, At,
    Row, SAMPLE,
};

async fn spawn() -> (Arc<TestStore>, TestApp) {
    let store = Arc::new(TestStore::new().await);
    let app = TestApp::spawn_on(store.clone(), |_| {}).await;
    (store, app)
}

/// A store holding the generated legacy file; returns its expected groups.
async fn imported() -> (Arc<TestStore>, TestApp, Vec<Vec<String>>) {
    let (store, app) = spawn().await;
    let (path, mut expected, _) = generated_legacy_file(store.dir()).await;
    cli(&store, &["import", "legacy", path.to_str().unwrap()])
        .await
        .expect_code(0);
    let renamed = app
        .admin()
        .await
        .jobs("user=bob&action=Trans-Begin")
        .await
        .into_iter()
        .find(|j| j["legacy_id"] == "legacy-17")
        .expect("the renamed job");
    expected[3].push(renamed["job_id"].as_str().unwrap().to_owned());
    (store, app, expected)
}

#[tokio::test]
async fn the_duplicate_report_is_for_admins_and_auditors_only() {
    // Arrange
    let (_store, app, _) = imported().await;
    let (auditor, operator) = (
        app.create_user("auditor").await,
        app.create_user("operator").await,
    );

    // Act
    let report = duplicates(&auditor, "").await;
    let by_admin = duplicates(&app.admin().await, "window_s=2").await;
    let refused = operator.get("/api/v1/audit/duplicates").await;
    let anonymous = app.get("/api/v1/audit/duplicates").await;

    // Assert
    refused.expect_problem(403, "forbidden");
    anonymous.expect_problem(401, "unauthenticated");
    assert_eq!(report, by_admin, "the default window is 2 s");
    let groups = report["groups"].as_array().expect("groups");
    assert_eq!(report["count"], groups.len());
    assert_eq!(groups.len(), 4);
    for group in groups {
        for field in ["user", "cluster", "action", "first_at", "last_at"] {
            assert!(group[field].is_string(), "{field}: {group}");
        }
        assert!(group["cid_count"].is_u64(), "{group}");
        assert!(group["job_ids"].as_array().unwrap().len() >= 2, "{group}");
        assert_eq!(group["marked"], false);
    }
    let openapi = app.get("/api/v1/openapi.json").await.expect(200);
    assert!(openapi["paths"]["/api/v1/audit/duplicates"]["get"].is_object());
}

#[tokio::test]
async fn bad_report_parameters_are_invalid_queries() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    // Act + Assert
    for query in [
        "window_s=abc",
        "window_s=-1",
        "window_s=2s",
        "window_s=NaN",
        "window_s=100000",
        "since=yesterday",
        "until=2025-13-01T00:00:00Z",
        "include_marked=maybe",
    ] {
        admin
            .get(&format!("/api/v1/audit/duplicates?{query}"))
            .await
            .expect_problem(400, "invalid_query");
    }
    let fine = duplicates(&admin, "window_s=0.5&since=2025-01-01T00:00:00Z").await;
    assert_eq!(fine, json!({"groups": [], "count": 0}));
}

#[tokio::test]
async fn failed_jobs_are_left_out_and_live_and_imported_jobs_are_compared_alike() {
    // Arrange: live jobs first (the recent-duplicate guard would refuse them
    // after an import of the same intent), then legacy rows 1 s before each.
    let (store, app) = spawn().await;
    let admin = app.admin().await;
    let failed = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["FAIL-7"])))
        .await
        .expect(502)["job"]
        .clone();
    let succeeded = admin
        .set_action(
            &new_key(),
            &action_body("Trans-Begin", json!(["C77", "C78"])),
        )
        .await
        .expect(201)["job"]
        .clone();
    let second_before = |job: &Value| {
        let t = chrono::DateTime::parse_from_rfc3339(job["created_at"].as_str().unwrap()).unwrap();
        At::Text((t - chrono::Duration::seconds(1)).to_rfc3339())
    };
    let sandbox = "http://sandbox/";
    let rows = [
        Row::new(
            "admin",
            "Trans-Begin",
            r#"["FAIL-7"]"#,
            sandbox,
            second_before(&failed),
        ),
        Row::new(
            "admin",
            "Trans-Begin",
            "C78, C77",
            sandbox,
            second_before(&succeeded),
        ),
    ];
    let path = store.dir().join("legacy.db");
    write_legacy_file(&path, &rows).await;
    cli(&store, &["import", "legacy", path.to_str().unwrap()])
        .await
        .expect_code(0);

    // Act
    let report = duplicates(&admin, "").await;

    // Assert
    assert_eq!(
        group_ids(&report),
        vec![vec![
            rows[1].job_id.clone(),
            succeeded["job_id"].as_str().unwrap().to_owned()
        ]],
        "{report}"
    );
    assert_eq!(report["groups"][0]["cluster"], "sandbox");
}

#[tokio::test]
async fn audit_duplicates_exits_0_when_clean_1_when_dirty_and_2_on_error() {
    // Arrange
    let (clean_store, _clean_app) = spawn().await;
    let (dirty_store, _dirty_app, _) = imported().await;

    // Act
    let clean = cli(&clean_store, &["audit", "duplicates"]).await;
    let dirty = cli(&dirty_store, &["audit", "duplicates", "--window", "2s"]).await;
    let dirty_json = cli(&dirty_store, &["audit", "duplicates", "--json"]).await;
    let narrow = cli(&dirty_store, &["audit", "duplicates", "--window", "500ms"]).await;
    let later = cli(
        &dirty_store,
        &["audit", "duplicates", "--since", "2025-01-01T10:06:00Z"],
    )
    .await;
    let bad_url = cli_with_url(
        dirty_store.dir(),
        "postgres://nobody@127.0.0.1:1/nothing",
        &["audit", "duplicates"],
    )
    .await;
    let bad_window = cli(&dirty_store, &["audit", "duplicates", "--window", "soon"]).await;

    // Assert
    clean.expect_code(0);
    assert!(clean.stdout.contains("PASS"), "{}", clean.stdout);
    assert!(
        clean.stdout.contains("Most recent jobs"),
        "{}",
        clean.stdout
    );
    dirty.expect_code(1);
    assert!(
        dirty.stdout.contains("FAIL: 4 duplicate group(s)"),
        "{}",
        dirty.stdout
    );
    assert!(dirty.stdout.contains("Most recent jobs"));
    dirty_json.expect_code(1);
    let doc: Value = serde_json::from_str(&dirty_json.stdout).expect("JSON");
    assert_eq!(doc["count"], 4);
    narrow.expect_code(0);
    later.expect_code(1);
    assert!(
        later.stdout.contains("FAIL: 1 duplicate group(s)"),
        "{}",
        later.stdout
    );
    bad_url.expect_code(2);
    bad_window.expect_code(2);
}

#[tokio::test]
async fn dedupe_marks_exactly_the_later_jobs_once_and_deletes_nothing() {
    // Arrange
    let (store, app, expected) = imported().await;
    let admin = app.admin().await;
    let total = admin.jobs("limit=500").await.len();

    // Act
    let dry = cli(&store, &["audit", "dedupe"]).await;
    let after_dry = duplicates(&admin, "").await;
    let apply = cli(
        &store,
        &[
            "audit", "dedupe", "--apply", "--window", "2s", "--batch", "2",
        ],
    )
    .await;
    let check = cli(&store, &["audit", "duplicates"]).await;
    let again = cli(&store, &["audit", "dedupe", "--apply"]).await;

    // Assert: the dry run lists the later jobs and changes nothing.
    dry.expect_code(0);
    assert_eq!(
        dry.stdout.matches("would mark ").count(),
        5,
        "{}",
        dry.stdout
    );
    assert!(dry
        .stdout
        .contains("dry run: 5 job(s) in 4 group(s) would be marked"));
    assert_eq!(after_dry["count"], 4);
    // Apply marks each later job against its group's first.
    apply.expect_code(0);
    assert!(
        apply.stdout.contains("marked 5 job(s) in 4 group(s)"),
        "{}",
        apply.stdout
    );
    for group in &expected {
        assert_eq!(job(&app, &group[0]).await["duplicate_of"], Value::Null);
        for later in &group[1..] {
            assert_eq!(job(&app, later).await["duplicate_of"], group[0], "{later}");
        }
    }
    let marked = admin.jobs("limit=500").await;
    assert_eq!(marked.len(), total, "nothing is deleted");
    assert_eq!(
        marked
            .iter()
            .filter(|j| !j["duplicate_of"].is_null())
            .count(),
        5
    );
    // The check passes; the marked groups stay visible on request.
    check.expect_code(0);
    assert!(check.stdout.contains("PASS"), "{}", check.stdout);
    assert_eq!(duplicates(&admin, "").await["count"], 0);
    let flagged = duplicates(&admin, "include_marked=true").await;
    assert_eq!(flagged["count"], 4);
    assert!(flagged["groups"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["marked"] == true));
    // A second apply changes nothing.
    again.expect_code(0);
    assert!(
        again.stdout.contains("marked 0 job(s) in 0 group(s)")
            && again.stdout.contains("5 already marked"),
        "{}",
        again.stdout
    );
}

fn csv_rows(text: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader.records().map(|r| r.expect("a CSV row")).collect();
    (header, rows)
}

#[tokio::test]
async fn jobs_export_writes_every_matching_job_and_quotes_awkward_values() {
    // Arrange
    let (store, app, _) = imported().await;
    let admin = app.admin().await;
    let failed = admin
        .set_action(&new_key(), &action_body("Suspend", json!(["FAIL-1", "C9"])))
        .await
        .expect(502)["job"]
        .clone();

    // Act
    let csv_all = cli(&store, &["jobs", "export", "--format", "csv"]).await;
    let csv_alice = cli(
        &store,
        &["jobs", "export", "--format", "csv", "--user", "alice"],
    )
    .await;
    let ndjson = cli(&store, &["jobs", "export", "--format", "ndjson"]).await;
    let none = cli(
        &store,
        &["jobs", "export", "--format", "csv", "--user", "nobody"],
    )
    .await;
    let bad = cli(&store, &["jobs", "export", "--format", "xml"]).await;

    // Assert
    csv_all.expect_code(0);
    let (header, rows) = csv_rows(&csv_all.stdout);
    assert_eq!(
        header,
        [
            "job_id",
            "created_at",
            "finished_at",
            "user",
            "cluster",
            "action",
            "action_code",
            "status",
            "cid_count",
            "cids",
            "upstream_status",
            "duration_ms",
            "error",
            "duplicate_of"
        ]
    );
    assert_eq!(rows.len(), 19, "18 imported jobs and the live one");
    assert!(
        csv_all.stdout.contains("\"Say \"\"hi\"\", then\nleave\""),
        "quoted: {}",
        csv_all.stdout
    );
    let awkward = rows.iter().find(|r| &r[3] == "carol").expect("carol's job");
    assert_eq!(&awkward[5], "Say \"hi\", then\nleave");
    assert_eq!(&awkward[10], "", "a null is an empty field");
    let live = rows
        .iter()
        .find(|r| &r[0] == failed["job_id"].as_str().unwrap())
        .expect("the live job");
    assert_eq!(&live[7], "failed");
    assert_eq!(&live[9], "FAIL-1 C9", "CIDs are space-separated");
    assert_eq!(&live[12], failed["error"].as_str().unwrap());
    assert!(!live[12].is_empty());
    assert_eq!(
        &rows[0][0],
        failed["job_id"].as_str().unwrap(),
        "newest first"
    );
    csv_alice.expect_code(0);
    assert_eq!(csv_rows(&csv_alice.stdout).1.len(), 12);
    ndjson.expect_code(0);
    let lines: Vec<Value> = ndjson
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one Job per line"))
        .collect();
    assert_eq!(lines.len(), 19);
    let carol = lines.iter().find(|j| j["user"] == "carol").unwrap();
    assert_eq!(carol["response_summary"], "line one,\n\"line\" two");
    assert_eq!(carol["imported"], true);
    none.expect_code(0);
    assert_eq!(
        csv_rows(&none.stdout).1.len(),
        0,
        "only the header: {}",
        none.stdout
    );
    bad.expect_code(2);
}

#[tokio::test]
async fn the_sample_store_exports_all_2001_jobs_in_pages_and_dedupes_to_a_pass() {
    // Arrange
    assert!(
        std::path::Path::new(SAMPLE).is_file(),
        "the shared sample {SAMPLE} is missing: the audit tests need shared/ beside the clone"
    );
    let (store, _app) = spawn().await;
    cli(&store, &["import", "legacy", SAMPLE])
        .await
        .expect_code(0);

    // Act
    let csv = cli(&store, &["jobs", "export", "--format", "csv"]).await;
    let ndjson = cli(
        &store,
        &[
            "jobs",
            "export",
            "--format",
            "ndjson",
            "--since",
            "2025-04-01T00:00:00Z",
        ],
    )
    .await;
    let dedupe = cli(&store, &["audit", "dedupe", "--apply"]).await;
    let check = cli(&store, &["audit", "duplicates"]).await;

    // Assert
    csv.expect_code(0);
    let (_, rows) = csv_rows(&csv.stdout);
    assert_eq!(rows.len(), 2001);
    let ids: std::collections::HashSet<&str> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(ids.len(), 2001, "pages neither repeat nor skip a job");
    ndjson.expect_code(0);
    let since = ndjson.stdout.lines().count();
    assert!(since > 0 && since < 2001, "{since}");
    dedupe.expect_code(0);
    assert!(
        dedupe.stdout.contains("marked 165 job(s) in 165 group(s)"),
        "{}",
        dedupe.stdout
    );
    check.expect_code(0);
    assert!(check.stdout.contains("PASS"), "{}", check.stdout);
}

#[tokio::test]
async fn retention_deletes_only_old_jobs_and_keeps_those_a_kept_job_is_marked_against() {
    // Arrange: old imported jobs, a pair straddling the 30-day cutoff, a live job.
    let store = Arc::new(TestStore::new().await);
    let app = TestApp::spawn_on(store.clone(), |_| {}).await;
    let admin = app.admin().await;
    let live = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["R1"])))
        .await
        .expect(201)["job"]["job_id"]
        .clone();
    let cutoff = chrono::Utc::now() - chrono::Duration::days(30);
    let around = |secs: i64| At::Text((cutoff + chrono::Duration::seconds(secs)).to_rfc3339());
    let eu = "http://tms-eu-1.internal:8443";
    let rows = [
        Row::new("alice", "Suspend", r#"["O1"]"#, eu, crate::legacy::at(0)),
        Row::new(
            "alice",
            "Suspend",
            r#"["O1"]"#,
            eu,
            crate::legacy::at(1_000),
        ),
        Row::new("alice", "Resume", r#"["O2"]"#, eu, crate::legacy::at(5_000)),
        Row::new("alice", "Purge-Cache", r#"["S1"]"#, eu, around(-1)),
        Row::new("alice", "Purge-Cache", r#"["S1"]"#, eu, around(1)),
    ];
    let path = store.dir().join("legacy.db");
    write_legacy_file(&path, &rows).await;
    let path = path.to_str().unwrap();
    cli(&store, &["import", "legacy", path])
        .await
        .expect_code(0);
    cli(&store, &["audit", "dedupe", "--apply"])
        .await
        .expect_code(0);
    drop(app);

    // Act: an instance configured with a 30-day retention starts.
    let app = TestApp::spawn_on(store.clone(), |c| c.retention_days = Some(30)).await;

    // Assert
    let admin = app.admin().await;
    let mut kept: Vec<String> = admin
        .jobs("limit=500")
        .await
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect();
    kept.sort();
    let mut expected = vec![
        live.as_str().unwrap().to_owned(),
        rows[3].job_id.clone(),
        rows[4].job_id.clone(),
    ];
    expected.sort();
    assert_eq!(kept, expected);
    assert_eq!(
        job(&app, &rows[4].job_id).await["duplicate_of"],
        rows[3].job_id
    );
    let report = duplicates(&admin, "include_marked=true").await;
    assert_eq!(report["count"], 1, "{report}");
}

#[tokio::test]
async fn retention_in_batches_of_one_never_leaves_a_dangling_mark() {
    // Arrange: a marked triple, all older than the cutoff.
    let (store, _app) = spawn().await;
    let eu = "http://tms-eu-1.internal:8443";
    let rows: Vec<Row> = [0, 1_000, 2_000]
        .map(|ms| Row::new("alice", "Suspend", r#"["T1"]"#, eu, crate::legacy::at(ms)))
        .to_vec();
    let path = store.dir().join("legacy.db");
    write_legacy_file(&path, &rows).await;
    cli(&store, &["import", "legacy", path.to_str().unwrap()])
        .await
        .expect_code(0);
    cli(&store, &["audit", "dedupe", "--apply"])
        .await
        .expect_code(0);
    let db = tms_dashboard::store::Db::open(&store.url, &Default::default())
        .await
        .expect("store");
    tms_dashboard::service::audit::seal::seal_pending(&db)
        .await
        .expect("seal");

    // Act: the first job goes in a batch of its own, before its duplicates.
    let mut deleted = Vec::new();
    loop {
        let n = db
            .purge_sealed_before(chrono::Utc::now(), 1)
            .await
            .expect("purge");
        if n == 0 {
            break;
        }
        deleted.push(n);
    }

    // Assert
    assert_eq!(deleted, [1, 1, 1]);
}

#[tokio::test]
async fn after_retention_the_kept_chain_still_verifies_and_says_where_it_starts() {
    // Arrange: old imported jobs (sealed by the running instance) and a live one.
    let (store, app) = spawn().await;
    let eu = "http://tms-eu-1.internal:8443";
    let rows: Vec<Row> = [0, 60_000, 120_000]
        .map(|ms| Row::new("alice", "Suspend", r#"["A1"]"#, eu, crate::legacy::at(ms)))
        .to_vec();
    let path = store.dir().join("legacy.db");
    write_legacy_file(&path, &rows).await;
    cli(&store, &["import", "legacy", path.to_str().unwrap()])
        .await
        .expect_code(0);
    let admin = app.admin().await;
    admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["KEEP1"])))
        .await
        .expect(201);
    cli(&store, &["audit", "verify"]).await.expect_code(0);
    drop(app);

    // Act: an instance with a 30-day retention removes the old links.
    let app = TestApp::spawn_on(store.clone(), |c| c.retention_days = Some(30)).await;

    // Assert
    assert_eq!(app.admin().await.jobs("").await.len(), 1);
    let verify = cli(&store, &["audit", "verify"]).await;
    verify.expect_code(0);
    assert!(
        verify
            .stdout
            .contains("the kept chain starts at sealed job number 4")
            && verify.stdout.contains("removed the 3 job(s) before it")
            && verify
                .stdout
                .contains("PASS: the chain of 1 sealed job(s) is intact"),
        "{}",
        verify.all_output()
    );
}

#[tokio::test]
async fn a_report_piped_into_head_stops_quietly_with_its_own_exit_code() {
    // Arrange: a store with unmarked duplicate groups.
    let (store, _app, _) = imported().await;

    // Act: the reader goes away before the report is written, as `| head`
    // does once it has its lines.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tms-dashboard"))
        .args(["audit", "duplicates", "--database-url", &store.url])
        .current_dir(store.dir())
        .env_remove("TMS_CONFIG")
        .env_remove("TMS_DATABASE_URL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take().expect("stdout"));
    let out = child.wait_with_output().expect("wait");

    // Assert: FAIL's exit code (1), not an error (2), and nothing on stderr
    // about the pipe.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.to_lowercase().contains("pipe"), "{stderr}");
}
