//! Per-customer outcomes (SPEC §12): every row of the outcome table, partial
//! jobs and their replays, a job's customers, a customer's history and who
//! may read it, and "retry the failed ones" under the key rules and the lock.

use serde_json::{json, Value};

use crate::helpers::{action_body, new_key, Session, TestApp};

async fn customers(session: &Session, job_id: &str, query: &str) -> Vec<Value> {
    session
        .get(&format!("/api/v1/jobs/{job_id}/customers{query}"))
        .await
        .expect(200)["customers"]
        .as_array()
        .expect("customers")
        .clone()
}

fn outcome_of(list: &[Value]) -> Vec<(String, String, Value)> {
    list.iter()
        .map(|c| {
            (
                c["cid"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
                c["error"].clone(),
            )
        })
        .collect()
}

fn id(job: &Value) -> String {
    job["job_id"].as_str().expect("job_id").to_owned()
}

#[tokio::test]
async fn refused_and_unlisted_customers_make_a_partial_job_whose_replay_is_207_byte_for_byte() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let key = new_key();
    let body = action_body("Suspend", json!(["P1", "NOPE-2", "LOST-3", "P4"]));

    let first = admin.set_action(&key, &body).await;
    let replay = admin.set_action(&key, &body).await;

    assert_eq!(first.status, 207, "{}", first.text());
    let job = first.json()["job"].clone();
    assert_eq!(job["status"], "partial");
    assert_eq!(job["error"], Value::Null);
    assert_eq!(
        job["outcomes"],
        json!({"ok": 2, "failed": 1, "unknown": 1, "pending": 0})
    );
    assert_eq!(replay.status, 207);
    assert!(replay.replayed());
    assert_eq!(replay.body, first.body);
    assert_eq!(
        outcome_of(&customers(&admin, &id(&job), "").await),
        [
            ("P1".into(), "ok".into(), Value::Null),
            (
                "NOPE-2".into(),
                "failed".into(),
                json!("simulated refusal for this customer")
            ),
            ("LOST-3".into(), "unknown".into(), Value::Null),
            ("P4".into(), "ok".into(), Value::Null),
        ]
    );
    let failed = customers(&admin, &id(&job), "?outcome=failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(app.admin().await.jobs("status=partial").await.len(), 1);
}

#[tokio::test]
async fn each_row_of_the_outcome_table_gives_its_customers_their_outcome() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let run = |cids: Value| {
        let admin = admin.clone();
        async move {
            let reply = admin
                .set_action(&new_key(), &action_body("Resume", cids))
                .await;
            (reply.status, reply.json()["job"].clone())
        }
    };

    // A success body without `results`: every customer ok (the sandbox lists
    // them all, so check through a plain success: all ok).
    let (status, ok) = run(json!(["A1", "A2"])).await;
    assert_eq!((status, ok["status"].as_str()), (201, Some("succeeded")));
    assert!(customers(&admin, &id(&ok), "")
        .await
        .iter()
        .all(|c| c["outcome"] == "ok"));

    // No customer ok: failed, with the sentence, each keeping its own outcome.
    let (status, none) = run(json!(["NOPE-B1", "LOST-B2"])).await;
    assert_eq!(status, 502);
    assert_eq!(none["status"], "failed");
    assert_eq!(
        none["error"],
        "the cluster applied the action to none of the 2 customers"
    );
    assert_eq!(
        outcome_of(&customers(&admin, &id(&none), "").await)
            .into_iter()
            .map(|(_, o, _)| o)
            .collect::<Vec<_>>(),
        ["failed", "unknown"]
    );

    // Any other answer: every customer failed with the job's error.
    let (status, failed) = run(json!(["FAIL-C1", "C2"])).await;
    assert_eq!(status, 502);
    for c in customers(&admin, &id(&failed), "").await {
        assert_eq!(c["outcome"], "failed");
        assert_eq!(c["error"], failed["error"]);
    }
    let (status, rejected) = run(json!(["REJECT-D1"])).await;
    assert_eq!(status, 502);
    assert_eq!(
        customers(&admin, &id(&rejected), "").await[0]["outcome"],
        "failed"
    );
    assert_eq!(
        rejected["outcomes"],
        json!({"ok": 0, "failed": 1, "unknown": 0, "pending": 0})
    );
}

#[tokio::test]
async fn a_timed_out_job_leaves_its_customers_unknown_and_a_running_one_pending() {
    let app =
        TestApp::spawn_with(|c| c.upstream_timeout = std::time::Duration::from_millis(600)).await;
    let admin = app.admin().await;

    let running = {
        let admin = admin.clone();
        tokio::spawn(async move {
            admin
                .set_action(&new_key(), &action_body("Resume", json!(["DELAY400-E1"])))
                .await
        })
    };
    let pending = admin.wait_for_pending_job().await;
    assert_eq!(
        pending["outcomes"],
        json!({"ok": 0, "failed": 0, "unknown": 0, "pending": 1})
    );
    assert_eq!(
        customers(&admin, &id(&pending), "").await[0]["outcome"],
        "pending"
    );
    assert_eq!(running.await.unwrap().status, 201);

    let timed_out = admin
        .set_action(&new_key(), &action_body("Resume", json!(["SLOW-F1", "F2"])))
        .await;
    assert_eq!(timed_out.status, 504);
    let job = timed_out.json()["job"].clone();
    assert!(customers(&admin, &id(&job), "")
        .await
        .iter()
        .all(|c| c["outcome"] == "unknown" && c["error"].is_null()));
}

#[tokio::test]
async fn a_jobs_customers_come_as_csv_and_bad_queries_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let job = admin
        .set_action(
            &new_key(),
            &action_body("Suspend", json!(["G1", "NOPE-G2"])),
        )
        .await
        .json()["job"]
        .clone();

    let csv = admin
        .get(&format!("/api/v1/jobs/{}/customers?format=csv", id(&job)))
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(
        csv.text(),
        "cid,outcome,error\r\nG1,ok,\r\nNOPE-G2,failed,simulated refusal for this customer\r\n"
    );
    for query in ["?outcome=lost", "?format=xml"] {
        admin
            .get(&format!("/api/v1/jobs/{}/customers{query}", id(&job)))
            .await
            .expect_problem(400, "invalid_query");
    }
    admin
        .get(&format!("/api/v1/jobs/{}/customers", uuid::Uuid::now_v7()))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn a_customers_history_is_newest_first_paged_filtered_and_an_operator_sees_their_own() {
    let app = TestApp::spawn_with(|c| c.duplicate_guard_window = std::time::Duration::ZERO).await;
    let admin = app.admin().await;
    let operator = app.create_user("operator").await;
    let mut mine = Vec::new();
    for (session, action, cids) in [
        (&admin, "Suspend", json!(["H1", "H2"])),
        (&operator, "Resume", json!(["H1"])),
        (&admin, "Purge-Cache", json!(["NOPE-X", "H1"])),
        (&operator, "Suspend", json!(["NOPE-H1", "H3"])),
    ] {
        let job = session
            .set_action(&new_key(), &action_body(action, cids))
            .await
            .json()["job"]
            .clone();
        if std::ptr::eq(session, &operator) {
            mine.push(id(&job));
        }
    }

    let all = admin.get("/api/v1/customers/H1/jobs").await.expect(200);
    assert_eq!(all["cid"], "H1");
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{all}");
    assert_eq!(
        entries
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["Purge-Cache", "Resume", "Suspend"]
    );
    assert_eq!(entries[0]["job_status"], "partial");
    assert_eq!(entries[0]["outcome"], "ok");

    // Paged: one at a time, the same three, in the same order.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = admin
            .get(&format!("/api/v1/customers/H1/jobs?limit=1{cursor}"))
            .await
            .expect(200);
        paged.extend(page["entries"].as_array().unwrap().iter().map(id));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(paged, entries.iter().map(id).collect::<Vec<_>>());

    let filtered = admin
        .get("/api/v1/customers/H1/jobs?action=Suspend&outcome=ok")
        .await
        .expect(200);
    assert_eq!(filtered["entries"].as_array().unwrap().len(), 1);
    let seen: Vec<String> = operator.get("/api/v1/customers/H1/jobs").await.expect(200)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(seen, [mine[0].clone()]);
    for bad in [
        "/api/v1/customers/bad!cid/jobs",
        "/api/v1/customers/H1/jobs?outcome=lost",
    ] {
        admin.get(bad).await.expect_problem(400, "invalid_query");
    }
}

#[tokio::test]
async fn retrying_runs_the_failed_customers_once_under_the_key_rules() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let original = admin
        .set_action(
            &new_key(),
            &action_body("Suspend", json!(["R1", "NOPE-R2", "LOST-R3", "NOPE-R4"])),
        )
        .await
        .json()["job"]
        .clone();
    let retry_path = format!("/api/v1/jobs/{}/retry", id(&original));
    let retry = |key: &str, body: Value| {
        let request = admin
            .request(reqwest::Method::POST, &retry_path)
            .header("Idempotency-Key", key)
            .header("content-type", "application/json")
            .body(body.to_string());
        crate::helpers::send(request)
    };

    // Act
    let key = new_key();
    let first = retry(&key, json!({})).await;
    let replay = retry(&key, json!({})).await;

    // Assert: the failed ones, in their order, refused again (the sandbox
    // refuses NOPE… every time) — and the same key replays.
    assert_eq!(first.status, 502, "{}", first.text());
    let job = first.json()["job"].clone();
    assert_eq!(job["cids"], json!(["NOPE-R2", "NOPE-R4"]));
    assert_eq!(job["retry_of"], original["job_id"]);
    assert!(replay.replayed());
    assert_eq!(replay.body, first.body);
    // With the unknown ones too, under a new key; the guard does not apply.
    let both = retry(&new_key(), json!({"include_unknown": true})).await;
    assert_eq!(
        both.json()["job"]["cids"],
        json!(["NOPE-R2", "LOST-R3", "NOPE-R4"])
    );
    // The same key for another payload.
    retry(&key, json!({"include_unknown": true}))
        .await
        .expect_problem(422, "idempotency_key_reused");
    // A job with nothing failed, a missing key, an auditor, another operator.
    let fine = admin
        .set_action(&new_key(), &action_body("Suspend", json!(["OK1"])))
        .await
        .json()["job"]
        .clone();
    let request = admin
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/jobs/{}/retry", id(&fine)),
        )
        .header("Idempotency-Key", new_key())
        .body("{}");
    crate::helpers::send(request)
        .await
        .expect_problem(422, "nothing_to_retry");
    let request = admin.request(reqwest::Method::POST, &retry_path).body("{}");
    crate::helpers::send(request)
        .await
        .expect_problem(400, "missing_idempotency_key");
    let auditor = app.create_user("auditor").await;
    let request = auditor
        .request(reqwest::Method::POST, &retry_path)
        .header("Idempotency-Key", new_key())
        .body("{}");
    crate::helpers::send(request)
        .await
        .expect_problem(403, "forbidden");
    let operator = app.create_user("operator").await;
    let request = operator
        .request(reqwest::Method::POST, &retry_path)
        .header("Idempotency-Key", new_key())
        .body("{}");
    crate::helpers::send(request)
        .await
        .expect_problem(404, "not_found");
    // Nothing more was stored: the original, two retries, and the fine job.
    assert_eq!(admin.jobs("").await.len(), 4);
}

#[tokio::test]
async fn a_retry_meets_the_per_customer_lock() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let original = admin
        .set_action(&new_key(), &action_body("Suspend", json!(["NOPE-L1"])))
        .await
        .json()["job"]
        .clone();
    // NOPE-L1 is busy in a slow job on the same cluster.
    let busy = {
        let admin = admin.clone();
        tokio::spawn(async move {
            admin
                .set_action(
                    &new_key(),
                    &action_body("Resume", json!(["DELAY1500-L", "NOPE-L1"])),
                )
                .await
        })
    };
    admin.wait_for_pending_job().await;

    let request = admin
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/jobs/{}/retry", id(&original)),
        )
        .header("Idempotency-Key", new_key())
        .body("{}");
    let problem = crate::helpers::send(request)
        .await
        .expect_problem(409, "cids_busy");
    assert_eq!(problem["busy"], json!(["NOPE-L1"]));
    busy.await.unwrap();
}

#[tokio::test]
async fn imported_jobs_have_every_customer_ok() {
    let store = std::sync::Arc::new(crate::store::TestStore::new().await);
    let app = TestApp::spawn_on(store.clone(), |_| {}).await;
    let rows = [crate::legacy::Row::new(
        "alice",
        "Suspend",
        r#"["I1", "I2"]"#,
        "http://tms-eu-1.internal:8443",
        crate::legacy::at(0),
    )];
    let path = store.dir().join("legacy.db");
    crate::legacy::write_legacy_file(&path, &rows).await;
    crate::legacy::cli(&store, &["import", "legacy", path.to_str().unwrap()])
        .await
        .expect_code(0);
    let admin = app.admin().await;
    let job = admin.jobs("").await[0].clone();
    assert_eq!(
        job["outcomes"],
        json!({"ok": 2, "failed": 0, "unknown": 0, "pending": 0})
    );
    assert_eq!(
        admin.get("/api/v1/customers/I2/jobs").await.expect(200)["entries"][0]["outcome"],
        "ok"
    );
}

/// A cluster whose success bodies are written by the test: `results`
/// missing, not a list, or with entries it cannot read.
async fn canned_cluster() -> (String, tokio::task::JoinHandle<()>) {
    async fn answer(axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
        let cids: Vec<String> = body["cids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        axum::Json(match cids[0].as_str() {
            "BARE" => json!({"status": "success"}),
            "BROKEN" => json!({"status": "success", "results": {"BROKEN": true}}),
            _ => json!({"success": true, "results": [
                {"cid": cids[0], "ok": true}, {"ok": true}, {"cid": cids[1], "ok": "yes"}
            ]}),
        })
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router =
        axum::Router::new().route("/api/v1/customers/actions", axum::routing::post(answer));
    (
        url,
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }),
    )
}

#[tokio::test]
async fn results_missing_unreadable_or_half_readable_never_fail_the_request() {
    let (url, _cluster) = canned_cluster().await;
    let app = TestApp::spawn_with(|c| {
        c.sandbox = false;
        c.clusters = vec![tms_dashboard::config::ClusterConfig {
            name: "canned".into(),
            label: None,
            base_url: url,
            token_env: None,
            max_in_flight: None,
            max_per_second: None,
            approval_required: None,
        }];
    })
    .await;
    let admin = app.admin().await;
    let run = |cids: Value| {
        let admin = admin.clone();
        async move {
            let body = json!({"cluster": "canned", "action": "Resume", "cids": cids, "token": "t"});
            let reply = admin.set_action(&new_key(), &body).await;
            (reply.status, reply.json()["job"].clone())
        }
    };

    let (status, bare) = run(json!(["BARE", "J2"])).await;
    assert_eq!((status, bare["status"].as_str()), (201, Some("succeeded")));
    assert!(customers(&admin, &id(&bare), "")
        .await
        .iter()
        .all(|c| c["outcome"] == "ok"));

    let (status, broken) = run(json!(["BROKEN", "J3"])).await;
    assert_eq!(status, 502);
    assert!(
        broken["error"].as_str().unwrap().contains("not a list"),
        "{broken}"
    );
    assert!(customers(&admin, &id(&broken), "")
        .await
        .iter()
        .all(|c| c["outcome"] == "unknown"));

    let (status, half) = run(json!(["HALF", "J4"])).await;
    assert_eq!(status, 207);
    assert!(
        half["error"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{half}"
    );
    assert_eq!(
        half["outcomes"],
        json!({"ok": 1, "failed": 0, "unknown": 1, "pending": 0})
    );
}
