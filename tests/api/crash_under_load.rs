//! Crash under load: many clients run Set Actions while the server is killed
//! with SIGKILL at random moments and restarted. Nothing may be lost or
//! doubled: every job a client was told about exists once, no job stays
//! pending after the sweep, and every key names one job.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;

use crate::helpers::{free_port, Endpoint, ServerProcess, TestStore, ADMIN_PASSWORD};

const CLIENTS: usize = 8;
const KILLS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_and_doubles_nothing() {
    // Arrange
    let store = TestStore::new().await;
    let port = free_port();
    let env = [
        ("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("TMS_UPSTREAM_TIMEOUT", "1s"),
        ("TMS_DUPLICATE_GUARD_WINDOW", "0s"),
    ];
    let mut server = ServerProcess::start(&store, port, "run-0.log", &env).await;
    let (_, token) = server
        .login("admin", ADMIN_PASSWORD)
        .await
        .create_token("load")
        .await;
    let endpoint = Endpoint::new(format!("http://127.0.0.1:{port}"));
    let stop = Arc::new(AtomicBool::new(false));
    // key -> job ids the client was given for it (must end up one id).
    let answers: Arc<Mutex<HashMap<String, HashSet<String>>>> = Arc::default();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    // Act: clients send until told to stop; a request that fails on the
    // network is retried under the same key, as the console's page does.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (endpoint, token, stop, answers, sent) = (
                endpoint.clone(),
                token.clone(),
                stop.clone(),
                answers.clone(),
                sent.clone(),
            );
            tokio::spawn(async move {
                let session = endpoint.bearer(&token);
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let key = format!("load-{client}-{n}");
                    let cid = if n % 3 == 0 {
                        format!("DELAY150-{client}-{n}")
                    } else {
                        format!("L{client}-{n}")
                    };
                    let body =
                        json!({"cluster": "sandbox", "action": "Trans-Begin", "cids": [cid]});
                    for _attempt in 0..50 {
                        let request = session
                            .request(reqwest::Method::POST, "/api/v1/actions")
                            .header("Idempotency-Key", &key)
                            .header("content-type", "application/json")
                            .body(body.to_string());
                        sent.fetch_add(1, Ordering::Relaxed);
                        let Ok(response) = request.send().await else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        let status = response.status().as_u16();
                        let Ok(text) = response.text().await else {
                            continue;
                        };
                        if matches!(status, 201 | 502 | 504) {
                            let job: serde_json::Value =
                                serde_json::from_str(&text).expect("job JSON");
                            let id = job["job"]["job_id"].as_str().expect("job_id").to_owned();
                            answers
                                .lock()
                                .unwrap()
                                .entry(key.clone())
                                .or_default()
                                .insert(id);
                            break;
                        }
                        // 409 request_in_progress (the killed instance's job is
                        // still pending) or 503 while restarting: wait, retry.
                        assert!(matches!(status, 409 | 503), "unexpected {status}: {text}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            })
        })
        .collect();
    for round in 1..=KILLS {
        let pause = rand::thread_rng().gen_range(300..900);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.child.kill().expect("SIGKILL");
        server.child.wait().expect("wait");
        server = ServerProcess::start(&store, port, &format!("run-{round}.log"), &env).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .expect("client stuck")
            .expect("client panicked");
    }

    // Assert
    let admin = server.bearer(&token);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !admin.jobs("status=pending").await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "jobs stayed pending; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let answers = answers.lock().unwrap().clone();
    assert!(
        answers.len() > CLIENTS * 3,
        "too little load: {} keys answered",
        answers.len()
    );
    let mut every_job = HashSet::new();
    for (key, ids) in &answers {
        assert_eq!(
            ids.len(),
            1,
            "key {key} was answered with several jobs: {ids:?}"
        );
        let id = ids.iter().next().expect("one id");
        admin
            .get(&format!("/api/v1/jobs/{id}"))
            .await
            .assert_status(200);
        assert!(every_job.insert(id.clone()), "job {id} answered two keys");
    }
    let mut stored = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = admin
            .get(&format!("/api/v1/jobs?limit=500{cursor}"))
            .await
            .expect(200);
        for job in page["jobs"].as_array().expect("jobs") {
            assert!(
                stored.insert(job["job_id"].as_str().expect("id").to_owned()),
                "a job listed twice"
            );
            assert_ne!(job["status"], "pending");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert!(
        every_job.is_subset(&stored),
        "answered jobs missing from the store"
    );
    // Jobs nobody was told about are the ones whose answers a kill cut off;
    // each of them is resolved and was never retried into a second job.
    assert!(
        stored.len() - every_job.len() <= CLIENTS * KILLS,
        "{} unexplained jobs",
        stored.len() - every_job.len()
    );
    // The figures of the run, for whoever reads the output.
    eprintln!(
        "crash under load: {} requests sent, {KILLS} kills, {} keys answered, {} jobs checked, none lost or doubled",
        sent.load(Ordering::Relaxed),
        answers.len(),
        stored.len()
    );
}
