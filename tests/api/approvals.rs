//! Four-eyes approval (SPEC §14): a request for a dangerous action waits for
//! a second person, nothing executes until then; the requester cannot
//! approve; approvers racing each other (also across two instances) make one
//! job and one upstream call; reject, cancel and expiry each end it once;
//! an approved run sends its batches; every bad input is refused and
//! executes nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{action_body, new_key, send, Reply, Session, TestApp, TestStore};
use crate::runs::{create_run, is_over, run_body, wait_for_run};
use tms_dashboard::config::{ActionConfig, Config};

/// Trans-Begin as usual and `Purge-Cache` needing four eyes.
pub(crate) fn with_dangerous_purge(config: &mut Config) {
    let action = |name: &str, code: i64, approval: bool| ActionConfig {
        name: name.into(),
        code,
        description: None,
        max_cids: None,
        reason_required: None,
        approval_required: Some(approval),
        method: None,
        path: None,
    };
    config.actions = Some(vec![
        action("Trans-Begin", 1, false),
        action("Purge-Cache", 6, true),
    ]);
}

async fn decide(session: &Session, id: &str, decision: &str, body: Value) -> Reply {
    send(
        session
            .request(Method::POST, &format!("/api/v1/approvals/{id}/{decision}"))
            .json(&body),
    )
    .await
}

async fn get_approval(session: &Session, id: &str) -> Value {
    session
        .get(&format!("/api/v1/approvals/{id}"))
        .await
        .expect(200)["approval"]
        .clone()
}

/// Requests Purge-Cache on `cids` and returns the awaiting approval.
async fn request_purge(session: &Session, cids: Value) -> Value {
    let reply = session
        .set_action(&new_key(), &action_body("Purge-Cache", cids))
        .await;
    reply.expect(202)["approval"].clone()
}

fn id_of(approval: &Value) -> String {
    approval["approval_id"]
        .as_str()
        .expect("approval_id")
        .to_owned()
}

#[tokio::test]
async fn a_dangerous_action_waits_the_requester_cannot_approve_and_another_operator_runs_it_once() {
    let app = TestApp::spawn_with(with_dangerous_purge).await;
    let ana = app.create_user("operator").await;
    let bob = app.create_user("operator").await;
    let audrey = app.create_user("auditor").await;
    let key = new_key();
    let body = json!({"cluster": "sandbox", "action": "Purge-Cache",
        "cids": ["P1", "P2", "P3"], "reason": "INC-42 cache poisoned"});

    let first = ana.set_action(&key, &body).await;
    let approval = first.expect(202)["approval"].clone();
    assert_eq!(approval["status"], "awaiting");
    assert_eq!(approval["kind"], "job");
    assert_eq!(approval["requested_by"], ana.username.as_str());
    assert_eq!(approval["cids"], json!(["P1", "P2", "P3"]));
    assert_eq!(approval["cid_count"], 3);
    assert_eq!(approval["reason"], "INC-42 cache poisoned");
    assert_eq!(approval["action_code"], 6);
    assert!(approval["job_id"].is_null() && approval["decided_by"].is_null());
    assert_eq!(
        app.sandbox_requests().await,
        0,
        "nothing runs before approval"
    );
    assert!(ana.jobs("").await.is_empty(), "no job before approval");
    let id = id_of(&approval);

    // A replay gets the original 202, byte for byte.
    let replay = ana.set_action(&key, &body).await;
    assert_eq!(replay.status, 202);
    assert!(replay.replayed());
    assert_eq!(replay.text(), first.text());

    // Everyone sees it; the requester and an auditor may not decide.
    assert_eq!(get_approval(&audrey, &id).await["status"], "awaiting");
    let listed = audrey
        .get("/api/v1/approvals?status=awaiting")
        .await
        .expect(200);
    assert_eq!(listed["approvals"][0]["approval_id"], id.as_str());
    decide(&ana, &id, "approve", json!({}))
        .await
        .expect_problem(403, "self_approval");
    decide(&ana, &id, "reject", json!({"comment": "changed my mind"}))
        .await
        .expect_problem(403, "self_approval");
    decide(&audrey, &id, "approve", json!({}))
        .await
        .expect_problem(403, "forbidden");
    assert_eq!(get_approval(&bob, &id).await["status"], "awaiting");

    // Another operator approves: the job runs as the requester's.
    let executed = decide(
        &bob,
        &id,
        "approve",
        json!({"comment": "checked with INC-42"}),
    )
    .await;
    let job = executed.expect(201)["job"].clone();
    assert_eq!(job["user"], ana.username.as_str());
    assert_eq!(job["approved_by"], bob.username.as_str());
    assert_eq!(job["approval_id"], id.as_str());
    assert_eq!(job["cids"], json!(["P1", "P2", "P3"]));
    assert_eq!(job["reason"], "INC-42 cache poisoned");
    assert_eq!(app.sandbox_requests().await, 1);
    let decided = get_approval(&ana, &id).await;
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decided_by"], bob.username.as_str());
    assert_eq!(decided["comment"], "checked with INC-42");
    assert_eq!(decided["job_id"], job["job_id"]);
    // The job's own page answer names the approver too.
    let stored = ana
        .get(&format!("/api/v1/jobs/{}", job["job_id"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!(stored["job"]["approved_by"], bob.username.as_str());

    // Decided once: every later decision is refused, and the replay is still the 202.
    let again = decide(&bob, &id, "approve", json!({})).await;
    let problem = again.expect_problem(409, "already_decided");
    assert_eq!(problem["approval_status"], "approved");
    assert_eq!(problem["status"], 409);
    decide(&ana, &id, "cancel", json!({}))
        .await
        .expect_problem(409, "already_decided");
    assert_eq!(ana.set_action(&key, &body).await.text(), first.text());
    assert_eq!(app.sandbox_requests().await, 1);
}

#[tokio::test]
async fn an_operator_approves_an_admins_request() {
    let app = TestApp::spawn_with(with_dangerous_purge).await;
    let admin = app.admin().await;
    let bob = app.create_user("operator").await;
    let approval = request_purge(&admin, json!(["A1"])).await;
    let job = decide(&bob, &id_of(&approval), "approve", json!({}))
        .await
        .expect(201)["job"]
        .clone();
    assert_eq!(job["user"], "admin");
    assert_eq!(job["approved_by"], bob.username.as_str());
}

#[tokio::test]
async fn twenty_approvals_at_once_across_two_instances_make_one_job_and_one_call() {
    let store = Arc::new(TestStore::new().await);
    let a = TestApp::spawn_on(store.clone(), with_dangerous_purge).await;
    let b = TestApp::spawn_on(store, with_dangerous_purge).await;
    let ana = a.create_user("operator").await;
    let mut approvers = Vec::new();
    for _ in 0..4 {
        approvers.push(a.create_user("operator").await);
    }
    approvers.push(a.admin().await);
    for round in 0..3 {
        let approval =
            request_purge(&ana, json!([format!("R{round}-1"), format!("R{round}-2")])).await;
        let id = id_of(&approval);
        let calls = (0..20).map(|i| {
            let approver = approvers[i % approvers.len()].clone();
            let via = if i % 2 == 0 { &a } else { &b };
            let approver = approver.via(via);
            let id = id.clone();
            async move { decide(&approver, &id, "approve", json!({})).await }
        });
        let replies = futures::future::join_all(calls).await;
        let executed: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
        let refused = replies
            .iter()
            .filter(|r| r.status == 409 && r.json()["code"] == "already_decided")
            .count();
        assert_eq!(
            executed.len(),
            1,
            "round {round}: {:?}",
            replies.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        assert_eq!(refused, 19, "round {round}");
        let jobs: Vec<Value> = ana.jobs(&format!("cid=R{round}-1")).await;
        assert_eq!(jobs.len(), 1, "round {round}: one job");
    }
    let upstream = a.sandbox_requests().await + b.sandbox_requests().await;
    assert_eq!(upstream, 3, "one call per approval");
}

#[tokio::test]
async fn reject_needs_a_comment_of_three_to_five_hundred_characters_and_ends_it() {
    let app = TestApp::spawn_with(with_dangerous_purge).await;
    let ana = app.create_user("operator").await;
    let bob = app.create_user("operator").await;
    let id = id_of(&request_purge(&ana, json!(["J1"])).await);
    for comment in [
        json!({}),
        json!({"comment": "  "}),
        json!({"comment": "no"}),
        json!({"comment": "x".repeat(501)}),
    ] {
        decide(&bob, &id, "reject", comment)
            .await
            .expect_problem(422, "comment_required");
    }
    decide(&bob, &id, "approve", json!({"comment": "y".repeat(501)}))
        .await
        .expect_problem(422, "comment_required");
    decide(&bob, &id, "reject", json!("not an object"))
        .await
        .expect_problem(400, "invalid_body");
    assert_eq!(
        get_approval(&bob, &id).await["status"],
        "awaiting",
        "bad input changes nothing"
    );

    let rejected = decide(
        &bob,
        &id,
        "reject",
        json!({"comment": " not during the freeze "}),
    )
    .await;
    let approval = rejected.expect(200)["approval"].clone();
    assert_eq!(approval["status"], "rejected");
    assert_eq!(approval["comment"], "not during the freeze");
    assert_eq!(approval["decided_by"], bob.username.as_str());
    let problem = decide(&bob, &id, "approve", json!({}))
        .await
        .expect_problem(409, "already_decided");
    assert_eq!(problem["approval_status"], "rejected");
    assert_eq!(app.sandbox_requests().await, 0);
}

#[tokio::test]
async fn only_the_requester_cancels_and_a_cancelled_request_never_runs() {
    let app = TestApp::spawn_with(with_dangerous_purge).await;
    let ana = app.create_user("operator").await;
    let admin = app.admin().await;
    let id = id_of(&request_purge(&ana, json!(["K1"])).await);
    decide(&admin, &id, "cancel", json!({}))
        .await
        .expect_problem(403, "forbidden");
    let cancelled =
        send(ana.request(Method::POST, &format!("/api/v1/approvals/{id}/cancel"))).await;
    assert_eq!(cancelled.expect(200)["approval"]["status"], "cancelled");
    let problem = decide(&admin, &id, "approve", json!({}))
        .await
        .expect_problem(409, "already_decided");
    assert_eq!(problem["approval_status"], "cancelled");
    // Once it no longer waits, the same request may be asked again.
    request_purge(&ana, json!(["K1"])).await;
    assert_eq!(app.sandbox_requests().await, 0);
}

#[tokio::test]
async fn an_approval_expires_within_seconds_of_its_time_and_is_refused_after() {
    let app = TestApp::spawn_with(|c| {
        with_dangerous_purge(c);
        c.approval_ttl = Duration::from_secs(1);
    })
    .await;
    let ana = app.create_user("operator").await;
    let bob = app.create_user("operator").await;
    let approval = request_purge(&ana, json!(["E1"])).await;
    let id = id_of(&approval);
    let created =
        chrono::DateTime::parse_from_rfc3339(approval["created_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(approval["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_milliseconds(), 1000);

    // Refused at once after its time, whether or not the expiry ran yet.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let problem = decide(&bob, &id, "approve", json!({}))
        .await
        .expect_problem(409, "already_decided");
    assert_eq!(problem["approval_status"], "expired");

    // Another one, left alone, is marked expired by the background round.
    let first_id = id;
    let id = id_of(&request_purge(&ana, json!(["E2"])).await);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let approval = get_approval(&bob, &id).await;
        if approval["status"] == "expired" {
            assert!(!approval["decided_at"].is_null());
            break;
        }
        assert!(Instant::now() < deadline, "never expired: {approval}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.sandbox_requests().await, 0);
    // Each expiry is one event, by nobody.
    let admin = app.admin().await;
    let feed = admin
        .get("/api/v1/events?after=0&limit=1000")
        .await
        .expect(200);
    for approval_id in [&first_id, &id] {
        let decided: Vec<&Value> = feed["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["type"] == "approval.decided"
                    && e["subject"]["approval_id"] == approval_id.as_str()
            })
            .collect();
        assert_eq!(decided.len(), 1, "{approval_id}");
        assert_eq!(decided[0]["data"]["status"], "expired");
        assert!(decided[0]["actor"].is_null());
    }
}

#[tokio::test]
async fn an_awaiting_request_is_a_recent_duplicate_for_the_same_request_under_another_key() {
    let app = TestApp::spawn_with(with_dangerous_purge).await;
    let ana = app.create_user("operator").await;
    let olga = app.create_user("operator").await;
    let approval = request_purge(&ana, json!(["D1", "D2"])).await;
    let again = olga
        .set_action(&new_key(), &action_body("Purge-Cache", json!(["D2", "D1"])))
        .await;
    let problem = again.expect_problem(409, "recent_duplicate");
    assert_eq!(problem["approval_id"], approval["approval_id"]);
    assert!(problem["job_id"].is_null() && problem["run_id"].is_null());
    assert_eq!(problem["user"], ana.username.as_str());
    assert_eq!(problem["created_at"], approval["created_at"]);
}

#[tokio::test]
async fn busy_customers_refuse_the_request_and_the_approval_which_keeps_waiting() {
    let app = TestApp::spawn_with(with_dangerous_purge).await;
    let ana = app.create_user("operator").await;
    let bob = app.create_user("operator").await;
    let id = id_of(&request_purge(&ana, json!(["B1"])).await);
    // Another job holds B1 for a while.
    let holder = bob.clone();
    let running = tokio::spawn(async move {
        holder
            .set_action(
                &new_key(),
                &action_body("Trans-Begin", json!(["B1", "DELAY1500"])),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let problem = decide(&bob, &id, "approve", json!({}))
        .await
        .expect_problem(409, "cids_busy");
    assert_eq!(problem["busy"], json!(["B1"]));
    // Who holds them, so a page can name the job's user and time.
    assert_eq!(problem["user"], bob.username.as_str());
    assert!(problem["created_at"].is_string());
    assert_eq!(get_approval(&bob, &id).await["status"], "awaiting");
    let problem = ana
        .set_action(&new_key(), &action_body("Purge-Cache", json!(["B1", "B9"])))
        .await
        .expect_problem(409, "cids_busy");
    assert_eq!(problem["user"], bob.username.as_str());
    assert_eq!(problem["created_at"], bob.jobs("").await[0]["created_at"]);
    running.await.unwrap().expect(201);
    decide(&bob, &id, "approve", json!({})).await.expect(201);
}

#[tokio::test]
async fn an_approved_run_sends_its_batches_as_the_requester() {
    let app = TestApp::spawn_with(with_dangerous_purge).await;
    let ana = app.create_user("operator").await;
    let bob = app.create_user("operator").await;
    let cids: Vec<String> = (0..5).map(|i| format!("RUN{i}")).collect();
    let body = run_body("Purge-Cache", cids.clone(), json!({"batch_size": 2}));
    let key = new_key();
    let asked = create_run(&ana, &key, &body).await;
    let approval = asked.expect(202)["approval"].clone();
    let id = id_of(&approval);
    assert_eq!(
        asked.header("location").as_deref(),
        Some(format!("/api/v1/approvals/{id}").as_str())
    );
    assert_eq!(approval["kind"], "run");
    assert_eq!(approval["batch_size"], 2);
    assert_eq!(approval["cids"], json!(cids));
    let replay = create_run(&ana, &key, &body).await;
    assert!(replay.replayed());
    assert_eq!(replay.text(), asked.text());
    assert!(ana.get("/api/v1/runs").await.expect(200)["runs"]
        .as_array()
        .unwrap()
        .is_empty());

    let queued = decide(&bob, &id, "approve", json!({})).await;
    let run = queued.expect(202)["run"].clone();
    assert_eq!(run["user"], ana.username.as_str());
    assert_eq!(run["approved_by"], bob.username.as_str());
    assert_eq!(run["approval_id"], id.as_str());
    assert_eq!(run["batch_count"], 3);
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let done = wait_for_run(&ana, &run_id, 20, is_over).await;
    assert_eq!(done["customers"]["ok"], 5);
    assert_eq!(get_approval(&ana, &id).await["run_id"], run_id.as_str());
    for job in ana.jobs("").await {
        assert_eq!(
            job["approved_by"],
            bob.username.as_str(),
            "each batch carries the approval"
        );
    }
    assert_eq!(app.sandbox_requests().await, 3);
}

#[tokio::test]
async fn a_cluster_with_approval_required_holds_every_action_and_needs_its_own_token() {
    let sandbox = crate::helpers::SandboxServer::start().await;
    // Each test runs in a process of its own (nextest): the variable is this test's.
    std::env::set_var(
        "TMS_TEST_SHARED_TOKEN",
        tms_dashboard::domain::cluster::SANDBOX_TOKEN,
    );
    let app = TestApp::spawn_with(|c| {
        sandbox.configure(c);
        c.clusters[0].approval_required = Some(true);
        c.clusters[0].token_env = Some("TMS_TEST_SHARED_TOKEN".into());
        c.clusters.push(tms_dashboard::config::ClusterConfig {
            name: "typed".into(),
            token_env: None,
            ..c.clusters[0].clone()
        });
    })
    .await;
    let ana = app.create_user("operator").await;
    let bob = app.create_user("operator").await;
    let body = json!({"cluster": "shared", "action": "Trans-Begin", "cids": ["T1"]});
    let approval = ana.set_action(&new_key(), &body).await.expect(202)["approval"].clone();
    assert_eq!(sandbox.requests().await, 0);
    decide(&bob, &id_of(&approval), "approve", json!({}))
        .await
        .expect(201);
    assert_eq!(sandbox.requests().await, 1);
    // The request runs later, when approved: a typed token cannot be kept.
    let typed = json!({"cluster": "typed", "action": "Trans-Begin", "cids": ["T2"], "token": "x"});
    ana.set_action(&new_key(), &typed)
        .await
        .expect_problem(422, "token_required");
    assert_eq!(sandbox.requests().await, 1);
}

#[tokio::test]
async fn unknown_and_malformed_approvals_are_not_found_and_listing_checks_its_filter() {
    let app = TestApp::spawn_with(with_dangerous_purge).await;
    let bob = app.create_user("operator").await;
    for id in ["nope", "01a23be6-3992-7f0c-a005-fb3634c6ea8d"] {
        bob.get(&format!("/api/v1/approvals/{id}"))
            .await
            .expect_problem(404, "not_found");
        decide(&bob, id, "approve", json!({}))
            .await
            .expect_problem(404, "not_found");
    }
    bob.get("/api/v1/approvals?status=maybe")
        .await
        .expect_problem(400, "invalid_query");
    bob.get("/api/v1/approvals?limit=0")
        .await
        .expect_problem(400, "invalid_query");
    let anonymous = app.anonymous();
    anonymous
        .get("/api/v1/approvals")
        .await
        .expect_problem(401, "unauthenticated");
    decide(&bob.without_csrf(), "nope", "approve", json!({}))
        .await
        .expect_problem(403, "csrf_failed");
    // Paging: newest first, one page at a time.
    let ana = app.create_user("operator").await;
    for i in 0..3 {
        request_purge(&ana, json!([format!("PG{i}")])).await;
    }
    let first = bob.get("/api/v1/approvals?limit=2").await.expect(200);
    assert_eq!(first["approvals"].as_array().unwrap().len(), 2);
    assert_eq!(first["approvals"][0]["cids"], json!(["PG2"]));
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = bob
        .get(&format!("/api/v1/approvals?limit=2&cursor={cursor}"))
        .await
        .expect(200);
    assert_eq!(second["approvals"][0]["cids"], json!(["PG0"]));
    assert!(second["next_cursor"].is_null());
}
