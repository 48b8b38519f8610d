//! The command line and its store (SPEC §16): only the commands that set a
//! store up may create one; every other command refuses a SQLite path where
//! no store exists (exit 2, naming it), so an audit run from the wrong
//! folder cannot pass on an empty store; every command names the store it
//! opened on standard error; `jobs show` takes a unique prefix of an id.

use serde_json::json;

use crate::helpers::{action_body, new_key, TestApp, TestStore};
use crate::legacy::{cli, cli_in};

#[tokio::test]
async fn commands_that_read_refuse_a_folder_without_a_store_and_create_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("data").join("tms-dashboard.db");
    for args in [
        vec!["audit", "verify"],
        vec!["audit", "duplicates"],
        vec!["jobs", "list"],
        vec!["jobs", "show", "01a237f5"],
        vec!["jobs", "export", "--format", "csv"],
        vec!["customers", "history", "C1"],
        vec!["runs", "list"],
        vec!["approvals", "list"],
        vec!["events", "verify"],
        vec!["events", "tail"],
        vec!["users", "list"],
        vec!["tokens", "create", "--user", "admin", "--name", "ci"],
    ] {
        let run = cli_in(dir.path(), &args).await;
        run.expect_code(2);
        assert!(
            run.stderr.contains(&store.display().to_string()) && run.stderr.contains("no store"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stdout.contains("PASS"), "{args:?}: {}", run.stdout);
        assert!(
            !dir.path().join("data").exists(),
            "{args:?} created a store folder"
        );
    }

    // `migrate` sets one up; then the same audit reads it, naming it on stderr only.
    let migrated = cli_in(dir.path(), &["migrate"]).await;
    migrated.expect_code(0);
    assert!(store.exists());
    let verified = cli_in(dir.path(), &["audit", "verify"]).await;
    verified.expect_code(0);
    let named = format!("store: sqlite://{}", store.display());
    assert!(verified.stderr.contains(&named), "{}", verified.stderr);
    assert!(!verified.stdout.contains("store:"), "{}", verified.stdout);
}

#[tokio::test]
async fn users_add_and_import_may_create_a_store() {
    let dir = tempfile::tempdir().expect("dir");
    let added = cli_in(dir.path(), &["users", "add", "olga", "--role", "operator"]).await;
    added.expect_code(0);
    assert!(dir.path().join("data/tms-dashboard.db").exists());
    let listed = cli_in(dir.path(), &["users", "list"]).await;
    listed.expect_code(0);
    assert!(listed.stdout.contains("olga"), "{}", listed.stdout);
}

#[tokio::test]
async fn logs_of_a_command_writing_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("dir");
    let run = cli_in(dir.path(), &["migrate"]).await;
    run.expect_code(0);
    let added = cli_in(dir.path(), &["users", "add", "piet", "--role", "auditor"]).await;
    assert!(
        !added.all_output().contains('\u{1b}'),
        "escape codes in {:?}",
        added.all_output()
    );
}

#[tokio::test]
async fn jobs_show_takes_a_unique_prefix_of_a_job_id() {
    let store = std::sync::Arc::new(TestStore::new().await);
    let app = TestApp::spawn_on(store.clone(), |c| {
        c.duplicate_guard_window = std::time::Duration::ZERO
    })
    .await;
    let admin = app.admin().await;
    let first = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["PF1"])))
        .await
        .expect(201)["job"]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["PF2"])))
        .await
        .expect(201);

    // The whole id but its last 4 digits is unique: shown.
    let shown = cli(&store, &["jobs", "show", &first[..first.len() - 4]]).await;
    shown.expect_code(0);
    assert!(shown.stdout.contains(&first), "{}", shown.stdout);
    assert!(shown.stdout.contains("PF1"), "{}", shown.stdout);
    // Four digits (a few seconds of time-ordered ids) start both: refused, saying so.
    let both = cli(&store, &["jobs", "show", &first[..4]]).await;
    both.expect_code(2);
    assert!(both.stderr.contains("more than one"), "{}", both.stderr);
    // A prefix of no job, and a text that is no prefix: "no job", exit 1.
    cli(&store, &["jobs", "show", "ffffffff"])
        .await
        .expect_code(1);
    cli(&store, &["jobs", "show", "not-an-id"])
        .await
        .expect_code(1);
}

#[tokio::test]
async fn a_cid_file_pasted_from_a_spreadsheet_leaves_out_its_header_and_extra_cells() {
    let dir = tempfile::tempdir().expect("dir");
    cli_in(dir.path(), &["users", "add", "admin", "--role", "admin"])
        .await
        .expect_code(0);
    let file = dir.path().join("paste.txt");
    std::fs::write(
        &file,
        "Customer ID\nTAB001\tAcme Corp\nTAB002\tBeta Ltd\nTAB003\n",
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();
    let created = cli_in(
        dir.path(),
        &[
            "runs",
            "create",
            "--user",
            "admin",
            "--cluster",
            "sandbox",
            "--action",
            "Trans-Begin",
            "--file",
            &file,
        ],
    )
    .await;
    created.expect_code(0);
    assert!(
        created
            .stderr
            .contains("left out the header line \"Customer ID\""),
        "{}",
        created.stderr
    );
    assert!(
        created.stderr.contains("2 line(s)") && created.stderr.contains("first cell"),
        "{}",
        created.stderr
    );
    let run_id = created.stdout.trim().to_owned();
    let shown = cli_in(dir.path(), &["runs", "show", &run_id]).await;
    shown.expect_code(0);
    assert!(
        shown.stdout.contains("\"cid_count\": 3"),
        "{}",
        shown.stdout
    );
}
