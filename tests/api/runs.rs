//! Runs (SPEC §13): thousands of customers in batches, each batch one job,
//! in order, within the cluster's limits; replays; pause, resume, cancel,
//! retry and scheduling exactly once; who may see and steer a run; and
//! every bad input refused with nothing stored.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{action_body, new_key, send, Reply, Session, TestApp};

/// `POST /api/v1/runs` under `key`.
pub async fn create_run(session: &Session, key: &str, body: &Value) -> Reply {
    send(
        session
            .request(Method::POST, "/api/v1/runs")
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

/// A run body on the built-in sandbox.
pub fn run_body(action: &str, cids: Vec<String>, extra: Value) -> Value {
    let mut body = json!({"cluster": "sandbox", "action": action, "cids": cids});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

pub fn cids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:06}")).collect()
}

pub async fn get_run(session: &Session, run_id: &str) -> Value {
    session
        .get(&format!("/api/v1/runs/{run_id}"))
        .await
        .expect(200)
}

/// Polls the run (up to `secs`) until `done` holds, and returns it.
pub async fn wait_for_run(
    session: &Session,
    run_id: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let run = get_run(session, run_id).await["run"].clone();
        if done(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "the run never got there: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn is_over(run: &Value) -> bool {
    run["status"] == "finished" || (run["status"] == "cancelled" && !run["finished_at"].is_null())
}

fn id(run: &Value) -> String {
    run["run_id"].as_str().expect("run_id").to_owned()
}

async fn run_customers(session: &Session, run_id: &str, query: &str) -> Vec<Value> {
    session
        .get(&format!("/api/v1/runs/{run_id}/customers{query}"))
        .await
        .expect(200)["customers"]
        .as_array()
        .expect("customers")
        .clone()
}

async fn sandbox_stats(session: &Session) -> Value {
    session.get("/sandbox/api/v1/_stats").await.expect(200)
}

/// The counters add up as the contract says.
fn assert_counters_add_up(run: &Value) {
    let sum = |member: &str| -> i64 {
        run[member]
            .as_object()
            .unwrap_or_else(|| panic!("{member} in {run}"))
            .values()
            .map(|v| v.as_i64().expect("a count"))
            .sum()
    };
    assert_eq!(
        sum("batches"),
        run["batch_count"].as_i64().unwrap(),
        "{run}"
    );
    assert_eq!(
        sum("customers"),
        run["cid_count"].as_i64().unwrap(),
        "{run}"
    );
}

#[tokio::test]
async fn a_run_splits_in_order_sends_each_batch_once_and_finishes_with_every_customer_counted() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let key = new_key();
    // Repeats collapse: 1,203 distinct CIDs, the first occurrence's order kept.
    let mut list = cids("R", 1203);
    list.push("R000007".into());
    let body = run_body("Trans-Begin", list, json!({"reason": "INC-4711"}));

    let created = create_run(&admin, &key, &body).await;
    assert_eq!(created.status, 202, "{}", created.text());
    let run = created.json()["run"].clone();
    let run_id = id(&run);
    assert_eq!(
        created.header("location").as_deref(),
        Some(format!("/api/v1/runs/{run_id}").as_str())
    );
    assert_eq!(run["cid_count"], 1203);
    assert_eq!(run["batch_size"], 500);
    assert_eq!(run["batch_count"], 3);
    assert_eq!(run["status"], "queued");
    assert_eq!(run["customers"]["not_run"], 1203);
    assert_counters_add_up(&run);

    let replay = create_run(&admin, &key, &body).await;
    assert_eq!(replay.status, 202);
    assert!(replay.replayed());
    assert_eq!(replay.body, created.body);

    let run = wait_for_run(&admin, &run_id, 20, is_over).await;
    assert_eq!(run["status"], "finished");
    assert_eq!(run["batches"]["succeeded"], 3, "{run}");
    assert_eq!(
        run["customers"],
        json!({"ok": 1203, "failed": 0, "unknown": 0, "not_run": 0})
    );
    assert!(!run["started_at"].is_null() && !run["finished_at"].is_null());
    assert_counters_add_up(&run);

    let detail = get_run(&admin, &run_id).await;
    let batches = detail["batches"].as_array().expect("batches");
    assert_eq!(batches.len(), 3);
    let mut sent_cids = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        assert_eq!(batch["batch_index"], i);
        let job_id = batch["job_id"].as_str().expect("a job per batch");
        let job = admin
            .get(&format!("/api/v1/jobs/{job_id}"))
            .await
            .expect(200)["job"]
            .clone();
        assert_eq!(job["run_id"], run_id.as_str());
        assert_eq!(job["batch_index"], i);
        assert_eq!(job["reason"], "INC-4711");
        sent_cids.extend(
            job["cids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(sent_cids, cids("R", 1203), "the batches keep the order");
    // Batches started in order.
    let started: Vec<&str> = batches
        .iter()
        .map(|b| b["started_at"].as_str().unwrap())
        .collect();
    let mut sorted = started.clone();
    sorted.sort();
    assert_eq!(started, sorted);

    let stats = sandbox_stats(&admin).await;
    assert_eq!(stats["requests_total"], 3, "one call per batch: {stats}");
    assert_eq!(stats["distinct_keys"], 3, "{stats}");

    let customers = run_customers(&admin, &run_id, "").await;
    assert_eq!(customers.len(), 1203);
    assert!(customers
        .iter()
        .all(|c| c["outcome"] == "ok" && c["job_id"].is_string()));
    let csv = admin
        .get(&format!("/api/v1/runs/{run_id}/customers?format=csv"))
        .await;
    assert_eq!(csv.status, 200);
    let text = csv.text();
    assert!(
        text.starts_with("cid,outcome,error,job_id\r\nR000000,ok,,"),
        "{}",
        &text[..80]
    );
    assert_eq!(text.lines().count(), 1204);

    let listed = admin.get("/api/v1/runs").await.expect(200);
    assert_eq!(listed["runs"][0]["run_id"], run_id.as_str());
    assert_eq!(listed["runs"][0]["status"], "finished");
}

#[tokio::test]
async fn failing_partial_and_timed_out_batches_end_with_the_right_counters_and_retry_takes_exactly_the_failed(
) {
    let app = TestApp::spawn_with(|c| c.upstream_timeout = Duration::from_millis(800)).await;
    let admin = app.admin().await;
    // Batches of 2: [A0, NOPE1] partial, [FAIL2, A3] failed, [A4, LOST5]
    // partial with an unknown, [DELAY3000-6, A7] timed out.
    let list: Vec<String> = [
        "A0",
        "NOPE1",
        "FAIL2",
        "A3",
        "A4",
        "LOST5",
        "DELAY3000-6",
        "A7",
    ]
    .map(String::from)
    .to_vec();
    let created = create_run(
        &admin,
        &new_key(),
        &run_body("Suspend", list, json!({"batch_size": 2})),
    )
    .await;
    let run_id = id(&created.expect(202)["run"]);
    let run = wait_for_run(&admin, &run_id, 20, is_over).await;
    assert_eq!(run["status"], "finished", "{run}");
    assert_eq!(
        run["batches"],
        json!({"queued": 0, "running": 0, "succeeded": 0, "partial": 2, "failed": 1,
            "timed_out": 1, "unknown": 0, "cancelled": 0})
    );
    assert_eq!(
        run["customers"],
        json!({"ok": 2, "failed": 3, "unknown": 3, "not_run": 0})
    );
    let failed: Vec<Value> = run_customers(&admin, &run_id, "?outcome=failed").await;
    let failed: Vec<&str> = failed.iter().map(|c| c["cid"].as_str().unwrap()).collect();
    assert_eq!(failed, ["NOPE1", "FAIL2", "A3"]);

    let retry_key = new_key();
    let retried = send(
        admin
            .request(Method::POST, &format!("/api/v1/runs/{run_id}/retry"))
            .header("Idempotency-Key", &retry_key)
            .json(&json!({})),
    )
    .await;
    let retry = retried.expect(202)["run"].clone();
    assert_eq!(retry["retry_of"], run_id.as_str());
    assert_eq!(retry["cid_count"], 3);
    assert_eq!(retry["batch_size"], 2);
    let retry_id = id(&retry);
    wait_for_run(&admin, &retry_id, 20, is_over).await;
    let sent: Vec<Value> = run_customers(&admin, &retry_id, "").await;
    let sent: Vec<&str> = sent.iter().map(|c| c["cid"].as_str().unwrap()).collect();
    assert_eq!(sent, ["NOPE1", "FAIL2", "A3"]);

    let with_unknown = send(
        admin
            .request(Method::POST, &format!("/api/v1/runs/{run_id}/retry"))
            .header("Idempotency-Key", new_key())
            .json(&json!({"include_unknown": true})),
    )
    .await;
    assert_eq!(with_unknown.expect(202)["run"]["cid_count"], 6);

    // A run where every customer was ok has nothing to retry.
    let ok = create_run(
        &admin,
        &new_key(),
        &run_body("Suspend", cids("OK", 3), json!({})),
    )
    .await;
    let ok_id = id(&ok.expect(202)["run"]);
    wait_for_run(&admin, &ok_id, 20, is_over).await;
    send(
        admin
            .request(Method::POST, &format!("/api/v1/runs/{ok_id}/retry"))
            .header("Idempotency-Key", new_key())
            .json(&json!({})),
    )
    .await
    .expect_problem(422, "nothing_to_retry");
}

#[tokio::test]
async fn bad_input_gets_its_error_and_stores_nothing() {
    let app = TestApp::spawn_with(|c| c.max_run_cids = 2000).await;
    let admin = app.admin().await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            run_body("Trans-Begin", cids("C", 2001), json!({})),
            422,
            "too_many_cids",
        ),
        (run_body("Trans-Begin", vec![], json!({})), 422, "no_cids"),
        (
            run_body("Trans-Begin", cids("C", 3), json!({"batch_size": 0})),
            400,
            "invalid_body",
        ),
        (
            run_body("Trans-Begin", cids("C", 3), json!({"batch_size": 501})),
            400,
            "invalid_body",
        ),
        (
            run_body(
                "Trans-Begin",
                cids("C", 3),
                json!({"run_at": "2020-01-01T00:00:00Z"}),
            ),
            400,
            "invalid_body",
        ),
        (
            run_body(
                "Trans-Begin",
                cids("C", 3),
                json!({"run_at": (chrono::Utc::now() + chrono::Duration::days(31)).to_rfc3339()}),
            ),
            400,
            "invalid_body",
        ),
        (
            run_body("Trans-Begin", cids("C", 3), json!({"run_at": "tomorrow"})),
            400,
            "invalid_body",
        ),
        (
            run_body("Nope", cids("C", 3), json!({})),
            422,
            "unknown_action",
        ),
        (
            json!({"cluster": "elsewhere", "action": "Trans-Begin", "cids": ["C1"]}),
            422,
            "unknown_cluster",
        ),
        (
            json!(["sandbox", "Trans-Begin", ["C1"]]),
            400,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        create_run(&admin, &new_key(), &body)
            .await
            .expect_problem(status, code);
    }
    // Every bad value listed up to 1,000, with their total.
    let mut bad = cids("C", 10);
    bad.extend((0..1500).map(|i| format!("bad value {i}")));
    bad.extend((0..1500).map(|i| format!("bad/{i}")));
    let problem = create_run(
        &admin,
        &new_key(),
        &json!({"cluster": "sandbox", "action": "Trans-Begin", "cids": bad}),
    )
    .await
    .expect_problem(422, "invalid_cids");
    assert_eq!(problem["invalid"].as_array().unwrap().len(), 1000);
    assert_eq!(problem["invalid_count"], 3000, "{}", problem["detail"]);
    // A run without a key, and a key a job holds, and the reverse.
    send(admin.request(Method::POST, "/api/v1/runs").json(&run_body(
        "Trans-Begin",
        cids("C", 3),
        json!({}),
    )))
    .await
    .expect_problem(400, "missing_idempotency_key");
    let key = new_key();
    admin
        .set_action(&key, &action_body("Trans-Begin", json!(["K1"])))
        .await
        .expect(201);
    create_run(
        &admin,
        &key,
        &run_body("Trans-Begin", vec!["K1".into()], json!({})),
    )
    .await
    .expect_problem(422, "idempotency_key_reused");
    let key = new_key();
    let run = create_run(
        &admin,
        &key,
        &run_body("Trans-Begin", vec!["K2".into()], json!({})),
    )
    .await;
    let run_id = id(&run.expect(202)["run"]);
    admin
        .set_action(&key, &action_body("Trans-Begin", json!(["K2"])))
        .await
        .expect_problem(422, "idempotency_key_reused");
    // The same key with another run request.
    create_run(
        &admin,
        &key,
        &run_body("Trans-Begin", vec!["K3".into()], json!({})),
    )
    .await
    .expect_problem(422, "idempotency_key_reused");
    let listed = admin.get("/api/v1/runs").await.expect(200);
    let runs = listed["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "only the good run is stored: {listed}");
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    wait_for_run(&admin, &run_id, 20, is_over).await;
    // A finished run does not pause.
    let problem = admin
        .post_json(&format!("/api/v1/runs/{run_id}/pause"), &json!({}))
        .await
        .expect_problem(409, "invalid_state");
    assert_eq!(problem["run_status"], "finished");
    admin
        .get("/api/v1/runs/not-a-run")
        .await
        .expect_problem(404, "not_found");
    admin
        .get("/api/v1/runs?status=sleeping")
        .await
        .expect_problem(400, "invalid_query");
}

#[tokio::test]
async fn pause_holds_new_batches_resume_goes_on_and_cancel_leaves_the_rest_not_run() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // Twenty batches of one slow CID each; four in flight at once.
    let list: Vec<String> = (0..20).map(|i| format!("DELAY300-{i:02}")).collect();
    let created = create_run(
        &admin,
        &new_key(),
        &run_body("Trans-Begin", list, json!({"batch_size": 1})),
    )
    .await;
    let run_id = id(&created.expect(202)["run"]);
    wait_for_run(&admin, &run_id, 10, |r| {
        r["batches"]["running"].as_i64() > Some(0)
    })
    .await;
    let paused = admin
        .post_json(&format!("/api/v1/runs/{run_id}/pause"), &json!({}))
        .await
        .expect(200)["run"]
        .clone();
    assert_eq!(paused["status"], "paused");
    // What was sent finishes; nothing new starts.
    let settled = wait_for_run(&admin, &run_id, 10, |r| r["batches"]["running"] == 0).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let still = get_run(&admin, &run_id).await["run"].clone();
    assert_eq!(still["status"], "paused");
    assert_eq!(
        still["batches"], settled["batches"],
        "no batch started while paused"
    );
    assert!(still["batches"]["queued"].as_i64().unwrap() > 0);
    admin
        .post_json(&format!("/api/v1/runs/{run_id}/pause"), &json!({}))
        .await
        .expect_problem(409, "invalid_state");

    admin
        .post_json(&format!("/api/v1/runs/{run_id}/resume"), &json!({}))
        .await
        .expect(200);
    wait_for_run(&admin, &run_id, 10, |r| {
        r["batches"]["succeeded"].as_i64() > still["batches"]["succeeded"].as_i64()
    })
    .await;
    // Two cancels at once: one wins, the other finds it cancelled.
    let path = format!("/api/v1/runs/{run_id}/cancel");
    let empty = json!({});
    let (a, b) = tokio::join!(
        admin.post_json(&path, &empty),
        admin.post_json(&path, &empty)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.text(), b.text());
    let run = wait_for_run(&admin, &run_id, 10, is_over).await;
    assert_eq!(run["status"], "cancelled");
    assert!(run["batches"]["cancelled"].as_i64().unwrap() > 0, "{run}");
    assert_eq!(
        run["customers"]["not_run"], run["batches"]["cancelled"],
        "a cancelled batch's customer is not run: {run}"
    );
    assert_counters_add_up(&run);
    let not_run = run_customers(&admin, &run_id, "?outcome=not_run").await;
    assert!(not_run.iter().all(|c| c["job_id"].is_null()));
    let stats = sandbox_stats(&admin).await;
    assert!(
        stats["max_in_flight"].as_u64().unwrap() <= 4,
        "the sandbox's limit held: {stats}"
    );
    let sent = 20 - run["batches"]["cancelled"].as_u64().unwrap();
    assert_eq!(stats["distinct_keys"], sent, "{stats}");
    // Cancel of a cancelled run.
    admin
        .post_json(&path, &json!({}))
        .await
        .expect_problem(409, "invalid_state");
}

#[tokio::test]
async fn a_scheduled_run_starts_at_its_time_once_and_can_be_cancelled_before() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let created = create_run(
        &admin,
        &new_key(),
        &run_body(
            "Trans-Begin",
            cids("S", 3),
            json!({"run_at": at.to_rfc3339()}),
        ),
    )
    .await;
    let run = created.expect(202)["run"].clone();
    assert_eq!(run["status"], "scheduled");
    let run_id = id(&run);
    let cancelled = create_run(
        &admin,
        &new_key(),
        &run_body(
            "Trans-Begin",
            cids("T", 3),
            json!({"run_at": at.to_rfc3339()}),
        ),
    )
    .await;
    let cancelled_id = id(&cancelled.expect(202)["run"]);
    admin
        .post_json(&format!("/api/v1/runs/{cancelled_id}/cancel"), &json!({}))
        .await
        .expect(200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get_run(&admin, &run_id).await["run"]["status"], "scheduled");

    let run = wait_for_run(&admin, &run_id, 10, is_over).await;
    let started =
        chrono::DateTime::parse_from_rfc3339(run["started_at"].as_str().unwrap()).unwrap();
    assert!(started >= at, "not before its time");
    assert!(
        started <= at + chrono::Duration::seconds(2),
        "within 2 s of its time: {started}"
    );
    let cancelled = get_run(&admin, &cancelled_id).await["run"].clone();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["customers"]["not_run"], 3);
    assert_eq!(sandbox_stats(&admin).await["requests_total"], 1);
}

#[tokio::test]
async fn operators_see_and_steer_only_their_own_runs_and_auditors_none() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let olga = app.create_user("operator").await;
    let piet = app.create_user("operator").await;
    let audrey = app.create_user("auditor").await;
    let at = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let created = create_run(
        &olga,
        &new_key(),
        &run_body("Trans-Begin", cids("O", 3), json!({"run_at": at})),
    )
    .await;
    let run_id = id(&created.expect(202)["run"]);

    piet.get(&format!("/api/v1/runs/{run_id}"))
        .await
        .expect_problem(404, "not_found");
    piet.get(&format!("/api/v1/runs/{run_id}/customers"))
        .await
        .expect_problem(404, "not_found");
    piet.post_json(&format!("/api/v1/runs/{run_id}/cancel"), &json!({}))
        .await
        .expect_problem(404, "not_found");
    piet.get(&format!("/api/v1/runs?user={}", olga.username))
        .await
        .expect_problem(403, "forbidden");
    assert!(piet.get("/api/v1/runs").await.expect(200)["runs"]
        .as_array()
        .unwrap()
        .is_empty());

    audrey
        .get(&format!("/api/v1/runs/{run_id}"))
        .await
        .expect(200);
    audrey
        .post_json(&format!("/api/v1/runs/{run_id}/cancel"), &json!({}))
        .await
        .expect_problem(403, "forbidden");
    create_run(
        &audrey,
        &new_key(),
        &run_body("Trans-Begin", cids("A", 3), json!({})),
    )
    .await
    .expect_problem(403, "forbidden");

    olga.post_json(&format!("/api/v1/runs/{run_id}/pause"), &json!({}))
        .await
        .expect_problem(409, "invalid_state");
    admin
        .post_json(&format!("/api/v1/runs/{run_id}/cancel"), &json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn the_recent_duplicate_guard_compares_runs_and_confirm_duplicate_lifts_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let body = run_body("Trans-Begin", cids("D", 5), json!({}));
    let first = create_run(&admin, &new_key(), &body).await;
    let run_id = id(&first.expect(202)["run"]);
    let problem = create_run(&admin, &new_key(), &body)
        .await
        .expect_problem(409, "recent_duplicate");
    assert_eq!(problem["run_id"], run_id.as_str());
    assert_eq!(problem["user"], "admin");
    assert!(problem["created_at"].is_string());
    let mut confirmed = body.clone();
    confirmed["confirm_duplicate"] = json!(true);
    create_run(&admin, &new_key(), &confirmed).await.expect(202);
}

#[tokio::test]
async fn a_batch_whose_customers_are_busy_waits_until_they_are_free() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // A Set Action holds B1 for about 1.5 s.
    let slow = {
        let admin = admin.clone();
        tokio::spawn(async move {
            admin
                .set_action(
                    &new_key(),
                    &action_body("Trans-Begin", json!(["DELAY1500-B", "B1"])),
                )
                .await
        })
    };
    admin.wait_for_pending_job().await;
    let created = create_run(
        &admin,
        &new_key(),
        &run_body(
            "Trans-Begin",
            vec!["B0".into(), "B1".into(), "B2".into()],
            json!({"batch_size": 1}),
        ),
    )
    .await;
    let run_id = id(&created.expect(202)["run"]);
    // Batch 0 goes; batch 1 waits for B1, and batch 2 after it.
    let waiting = wait_for_run(&admin, &run_id, 5, |r| r["batches"]["succeeded"] == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = get_run(&admin, &run_id).await["run"].clone();
    assert_eq!(still["batches"]["queued"], 2, "{still} after {waiting}");
    assert_eq!(slow.await.unwrap().status, 201);
    let run = wait_for_run(&admin, &run_id, 10, is_over).await;
    assert_eq!(run["customers"]["ok"], 3, "{run}");
}

#[tokio::test]
async fn the_same_key_sent_twenty_times_at_once_makes_one_run() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let key = new_key();
    let body = run_body("Trans-Begin", cids("Q", 700), json!({}));
    let sends = (0..20).map(|_| create_run(&admin, &key, &body));
    let replies = futures::future::join_all(sends).await;
    let ids: std::collections::HashSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 202, "{}", r.text());
            id(&r.json()["run"])
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(replies.iter().filter(|r| !r.replayed()).count(), 1);
    let run_id = ids.into_iter().next().unwrap();
    wait_for_run(&admin, &run_id, 20, is_over).await;
    assert_eq!(
        admin.get("/api/v1/runs").await.expect(200)["runs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(sandbox_stats(&admin).await["distinct_keys"], 2);
}

#[tokio::test]
async fn a_hundred_thousand_customers_are_accepted_in_one_body_and_counted() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let body = run_body("Trans-Begin", cids("H", 100_000), json!({}));
    assert!(
        body.to_string().len() > 256 * 1024,
        "over the usual body limit"
    );
    let created = create_run(&admin, &new_key(), &body).await;
    let run = created.expect(202)["run"].clone();
    assert_eq!(run["cid_count"], 100_000);
    assert_eq!(run["batch_count"], 200);
    // Over the run's body limit of 4 MiB.
    let huge = run_body(
        "Trans-Begin",
        cids("HUGE-PADDING-PADDING-PADDING-PADDING-", 110_000),
        json!({}),
    );
    create_run(&admin, &new_key(), &huge)
        .await
        .expect_problem(413, "payload_too_large");
    // And the rest of the API keeps its 256 KiB limit.
    admin
        .set_action(
            &new_key(),
            &action_body("Trans-Begin", json!(cids("H", 30_000))),
        )
        .await
        .expect_problem(413, "payload_too_large");
    admin
        .post_json(&format!("/api/v1/runs/{}/cancel", id(&run)), &json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn a_scheduled_run_reached_by_two_instances_at_once_starts_once() {
    let store = std::sync::Arc::new(crate::helpers::TestStore::new().await);
    let a = TestApp::spawn_on(store.clone(), |_| {}).await;
    let admin = a.admin().await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(1);
    let created = create_run(
        &admin,
        &new_key(),
        &run_body(
            "Trans-Begin",
            cids("W", 1000),
            json!({"run_at": at.to_rfc3339(), "batch_size": 100}),
        ),
    )
    .await;
    let run_id = id(&created.expect(202)["run"]);
    // The second instance has its own sandbox at its own address: the
    // batches each instance sends show in its sandbox's count.
    let b = TestApp::spawn_on(store, |_| {}).await;
    let run = wait_for_run(&admin, &run_id, 20, is_over).await;
    assert_eq!(run["customers"]["ok"], 1000, "{run}");
    let stats_a = sandbox_stats(&admin).await;
    let stats_b = b.get("/sandbox/api/v1/_stats").await.expect(200);
    let sent =
        stats_a["requests_total"].as_u64().unwrap() + stats_b["requests_total"].as_u64().unwrap();
    assert_eq!(
        sent, 10,
        "each batch sent once, by either instance: {stats_a} {stats_b}"
    );
}

#[tokio::test]
async fn a_cancel_racing_the_last_batch_ends_the_run_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for round in 0..5 {
        let list: Vec<String> = (0..2).map(|i| format!("DELAY100-{round}-{i}")).collect();
        let created = create_run(
            &admin,
            &new_key(),
            &run_body("Trans-Begin", list, json!({"batch_size": 1})),
        )
        .await;
        let run_id = id(&created.expect(202)["run"]);
        wait_for_run(&admin, &run_id, 10, |r| {
            r["batches"]["succeeded"] == 1
                || r["batches"]["running"] == 2
                || r["batches"]["queued"] == 0
        })
        .await;
        let cancel = admin
            .post_json(&format!("/api/v1/runs/{run_id}/cancel"), &json!({}))
            .await;
        assert!([200, 409].contains(&cancel.status), "{}", cancel.text());
        let run = wait_for_run(&admin, &run_id, 10, is_over).await;
        assert_counters_add_up(&run);
        if cancel.status == 409 {
            assert_eq!(run["status"], "finished");
        } else {
            assert_eq!(run["status"], "cancelled");
        }
        assert!(!run["finished_at"].is_null());
    }
}

#[tokio::test]
async fn the_metrics_count_runs_and_batches() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let created = create_run(
        &admin,
        &new_key(),
        &run_body("Trans-Begin", cids("M", 3), json!({"batch_size": 1})),
    )
    .await;
    let run_id = id(&created.expect(202)["run"]);
    wait_for_run(&admin, &run_id, 10, is_over).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = app.get("/metrics").await.text();
        let ok = metrics.contains("tms_batches_total{status=\"succeeded\"} 3")
            && metrics.contains("tms_runs_active 0")
            && metrics.contains("tms_batches_in_flight{cluster=\"sandbox\"} 0");
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn batches_ending_at_the_same_moment_still_close_their_run() {
    // Each run's four one-CID batches are sent together and answered at
    // once: their ends race, and the last one to commit must close the run.
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let creates = (0..10).map(|r| {
        let admin = admin.clone();
        async move {
            let list: Vec<String> = (0..4).map(|i| format!("E{r:02}-{i}")).collect();
            let created = create_run(
                &admin,
                &new_key(),
                &run_body("Trans-Begin", list, json!({"batch_size": 1})),
            )
            .await;
            id(&created.expect(202)["run"])
        }
    });
    let ids = futures::future::join_all(creates).await;
    for run_id in ids {
        let run = wait_for_run(&admin, &run_id, 20, |r| r["status"] == "finished").await;
        assert_eq!(run["customers"]["ok"], 4, "{run}");
        assert!(!run["finished_at"].is_null());
    }
}
