//! Runs across crashes and instances (SPEC §13): the only instance killed
//! mid-run and restarted, and two instances sharing one run, one of them
//! killed. Every customer ends exactly once, no batch is sent twice, and
//! the cluster's `max_in_flight` holds across instances, proven by the
//! cluster's own count.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    free_port, new_key, SandboxServer, ServerProcess, Session, TestStore, ADMIN_PASSWORD,
};
use crate::runs::{create_run, get_run, is_over, wait_for_run};

/// The variable the instances read the shared cluster's token from.
const TOKEN_VAR: &str = "TMS_TEST_SHARED_CLUSTER_TOKEN";

/// A configuration file naming `sandbox` as cluster `shared`, with a
/// server-side token (runs need one) and this in-flight limit.
fn write_config(store: &TestStore, sandbox: &SandboxServer, max_in_flight: u32) -> String {
    let path = store.dir().join("runs.toml");
    std::fs::write(
        &path,
        format!(
            "[[clusters]]\nname = \"shared\"\nlabel = \"Shared sandbox\"\nbase_url = \"{}\"\n\
             token_env = \"{TOKEN_VAR}\"\nmax_in_flight = {max_in_flight}\n",
            sandbox.base_url
        ),
    )
    .expect("config file");
    path.to_string_lossy().into_owned()
}

async fn start(store: &TestStore, port: u16, log: &str, config: &str) -> ServerProcess {
    let env = [
        ("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("TMS_CONFIG", config),
        (TOKEN_VAR, tms_dashboard::domain::cluster::SANDBOX_TOKEN),
        ("TMS_UPSTREAM_TIMEOUT", "2s"),
    ];
    ServerProcess::start(store, port, log, &env).await
}

/// `batches` batches of `size` CIDs, each batch holding one CID that makes
/// the cluster take `delay_ms` to answer.
fn slow_run(batches: usize, size: usize, delay_ms: u64) -> Value {
    let cids: Vec<String> = (0..batches * size)
        .map(|i| {
            if i % size == 0 {
                format!("DELAY{delay_ms}-{i:05}")
            } else {
                format!("R{i:05}")
            }
        })
        .collect();
    json!({"cluster": "shared", "action": "Trans-Begin", "cids": cids, "batch_size": size})
}

/// Every customer of the run exactly once, each with a final outcome; the
/// counters add up; one job per batch, and no batch sent twice.
async fn assert_each_customer_once(
    admin: &Session,
    run_id: &str,
    cid_count: usize,
    sandbox: &SandboxServer,
) -> Value {
    let run = get_run(admin, run_id).await["run"].clone();
    let customers = admin
        .get(&format!("/api/v1/runs/{run_id}/customers"))
        .await
        .expect(200)["customers"]
        .as_array()
        .expect("customers")
        .clone();
    assert_eq!(customers.len(), cid_count);
    let distinct: std::collections::HashSet<&str> = customers
        .iter()
        .map(|c| c["cid"].as_str().unwrap())
        .collect();
    assert_eq!(distinct.len(), cid_count, "each customer once");
    for c in &customers {
        assert!(
            ["ok", "failed", "unknown", "not_run"].contains(&c["outcome"].as_str().unwrap()),
            "a final outcome: {c}"
        );
    }
    let c = &run["customers"];
    let total: i64 = ["ok", "failed", "unknown", "not_run"]
        .iter()
        .map(|k| c[*k].as_i64().unwrap())
        .sum();
    assert_eq!(total as usize, cid_count, "{run}");
    let detail = get_run(admin, run_id).await;
    let jobs: Vec<&str> = detail["batches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["job_id"].as_str())
        .collect();
    let distinct_jobs: std::collections::HashSet<&str> = jobs.iter().copied().collect();
    assert_eq!(distinct_jobs.len(), jobs.len(), "one job per batch");
    let stats = sandbox.stats().await;
    assert_eq!(
        stats["requests_total"], stats["distinct_keys"],
        "no batch sent twice: {stats}"
    );
    assert!(
        stats["distinct_keys"].as_u64().unwrap() <= jobs.len() as u64,
        "{stats}"
    );
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_only_instance_killed_mid_run_goes_on_after_a_restart_and_no_batch_is_sent_twice() {
    let store = TestStore::new().await;
    let sandbox = SandboxServer::start().await;
    let config = write_config(&store, &sandbox, 4);
    let port = free_port();
    let mut first = start(&store, port, "first.log", &config).await;
    let admin = first.login("admin", ADMIN_PASSWORD).await;
    let created = create_run(&admin, &new_key(), &slow_run(40, 10, 300)).await;
    let run_id = created.expect(202)["run"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_run(&admin, &run_id, 20, |r| {
        r["batches"]["succeeded"].as_i64() >= Some(8)
    })
    .await;
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("wait");
    let at_kill = sandbox.stats().await;

    let second = start(&store, port, "second.log", &config).await;
    let admin = second.login("admin", ADMIN_PASSWORD).await;
    let run = wait_for_run(&admin, &run_id, 40, is_over).await;
    assert_eq!(run["status"], "finished", "{run}\n{}", second.log());
    let run = assert_each_customer_once(&admin, &run_id, 400, &sandbox).await;
    // Batches in flight at the kill are unknown, never sent again; the rest ok.
    let b = &run["batches"];
    assert_eq!(
        b["succeeded"].as_i64().unwrap() + b["unknown"].as_i64().unwrap(),
        40,
        "{run}"
    );
    assert_eq!(run["customers"]["failed"], 0);
    let stats = sandbox.stats().await;
    assert!(stats["max_in_flight"].as_u64().unwrap() <= 4, "{stats}");
    assert!(
        stats["distinct_keys"].as_u64() > at_kill["distinct_keys"].as_u64(),
        "the restarted instance sent the rest: {at_kill} then {stats}"
    );
    assert!(second.log().contains("[RUN] Finished"), "{}", second.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_run_within_one_limit_and_the_survivor_finishes_it() {
    let store = TestStore::new().await;
    let sandbox = SandboxServer::start().await;
    let config = write_config(&store, &sandbox, 2);
    let mut a = start(&store, free_port(), "a.log", &config).await;
    let b = start(&store, free_port(), "b.log", &config).await;
    let admin_a = a.login("admin", ADMIN_PASSWORD).await;
    let admin_b = b.login("admin", ADMIN_PASSWORD).await;
    let created = create_run(&admin_a, &new_key(), &slow_run(30, 5, 200)).await;
    let run_id = created.expect(202)["run"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_run(&admin_b, &run_id, 20, |r| {
        r["batches"]["succeeded"].as_i64() >= Some(6)
    })
    .await;
    a.child.kill().expect("SIGKILL");
    a.child.wait().expect("wait");

    let run = wait_for_run(&admin_b, &run_id, 40, is_over).await;
    assert_eq!(run["status"], "finished", "{run}\n{}", b.log());
    assert_each_customer_once(&admin_b, &run_id, 150, &sandbox).await;
    let stats = sandbox.stats().await;
    assert!(
        stats["max_in_flight"].as_u64().unwrap() <= 2,
        "both instances together kept the cluster's limit: {stats}"
    );
    assert!(
        b.log().contains("[RUN] Batch sent"),
        "the survivor sent batches"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_queues_a_run_from_a_file_and_watch_exits_by_its_outcome() {
    use crate::legacy::cli;
    let store = TestStore::new().await;
    let port = free_port();
    let server = ServerProcess::start(
        &store,
        port,
        "serve.log",
        &[("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    )
    .await;
    let dir = store.dir();
    let mut csv = String::from("Name,CID\n");
    for i in 0..1203 {
        csv.push_str(&format!("Acme {i},F{i:05}\n"));
    }
    std::fs::write(dir.join("list.csv"), csv).unwrap();
    std::fs::write(dir.join("some-fail.txt"), "G1\nNOPE-G2\n").unwrap();
    std::fs::write(dir.join("bad.txt"), "G1\nnot a cid\n").unwrap();
    std::fs::write(dir.join("sheet.xlsx"), b"PK\x03\x04\x00\x01\xff").unwrap();
    let list = dir.join("list.csv").to_string_lossy().into_owned();
    let created = cli(
        &store,
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
            &list,
            "--batch-size",
            "100",
        ],
    )
    .await;
    created.expect_code(0);
    let run_id = created.stdout.trim().to_owned();
    cli(&store, &["runs", "watch", &run_id])
        .await
        .expect_code(0);
    let shown = cli(&store, &["runs", "show", &run_id]).await;
    shown.expect_code(0);
    assert!(shown.stdout.contains("\"ok\": 1203"), "{}", shown.stdout);
    let listed = cli(&store, &["runs", "list"]).await;
    assert!(listed.stdout.contains(&run_id), "{}", listed.stdout);

    let some_fail = dir.join("some-fail.txt").to_string_lossy().into_owned();
    let created = cli(
        &store,
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
            &some_fail,
        ],
    )
    .await;
    let failing = created.stdout.trim().to_owned();
    let watched = cli(&store, &["runs", "watch", &failing]).await;
    watched.expect_code(1);
    assert!(watched.stdout.contains("failed 1"), "{}", watched.stdout);

    for (file, says) in [
        ("bad.txt", "invalid customer ID"),
        ("sheet.xlsx", "not text"),
    ] {
        let path = dir.join(file).to_string_lossy().into_owned();
        let refused = cli(
            &store,
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
                &path,
            ],
        )
        .await;
        refused.expect_code(2);
        assert!(refused.stderr.contains(says), "{}", refused.stderr);
    }
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let scheduled = cli(
        &store,
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
            &some_fail,
            "--run-at",
            &at,
            "--confirm-duplicate",
        ],
    )
    .await;
    let scheduled = scheduled.stdout.trim().to_owned();
    let cancelled = cli(&store, &["runs", "cancel", &scheduled]).await;
    cancelled.expect_code(0);
    assert!(
        cancelled.stdout.contains("cancelled"),
        "{}",
        cancelled.stdout
    );
    cli(&store, &["runs", "cancel", &scheduled])
        .await
        .expect_code(2);
    drop(server);
}
