//! What the server's log says about a failed Set Action: one line per
//! failure, at WARN, carrying the job, the cluster, the action and the
//! error (SPEC §8, §10), not the same failure repeated at several levels.

use serde_json::json;

use crate::helpers::{action_body, free_port, new_key, ServerProcess, TestStore, ADMIN_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_action_logs_one_warning_with_its_job_cluster_action_and_error() {
    // Arrange: the real binary, its log in a file.
    let store = TestStore::new().await;
    let server = ServerProcess::start(
        &store,
        free_port(),
        "serve.log",
        &[("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    )
    .await;
    let admin = server.login("admin", ADMIN_PASSWORD).await;

    // Act: one job the sandbox fails (500), one it refuses (200, error).
    let mut job_ids = Vec::new();
    for cid in ["FAIL-LOG1", "REJECT-LOG2"] {
        let failed = admin
            .set_action(&new_key(), &action_body("Trans-Begin", json!([cid])))
            .await
            .expect(502);
        job_ids.push(failed["job"]["job_id"].as_str().unwrap().to_owned());
    }
    let ok = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["LOG3"])))
        .await
        .expect(201);
    let ok_id = ok["job"]["job_id"].as_str().unwrap().to_owned();

    // Assert
    let log = server.log();
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert_eq!(
        complaints.len(),
        2,
        "one WARN or ERROR line per failed job, none for the success:\n{log}"
    );
    for (job_id, line) in job_ids.iter().zip(&complaints) {
        assert!(line.contains(" WARN "), "{line}");
        assert!(
            line.contains(&format!("[SET_ACTION] FAILED: job_id={job_id}, error=")),
            "{line}"
        );
        assert!(line.contains("cluster=sandbox"), "{line}");
        assert!(line.contains("action=Trans-Begin"), "{line}");
        assert!(line.contains("simulated"), "the cluster's message: {line}");
    }
    assert!(!complaints.iter().any(|l| l.contains(&ok_id)), "{log}");
}
