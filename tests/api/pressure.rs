//! Store pressure: many writers at once never reach a client as a 500 or a
//! "database is locked".

use serde_json::json;

use crate::helpers::{action_body, new_key, TestApp};

const WRITERS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_writers_get_only_job_answers() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    // Each writer claims, finalises and replays: three writes per request.
    let replies = futures::future::join_all((0..WRITERS).map(|i| {
        let admin = admin.clone();
        async move {
            let key = new_key();
            let body = action_body("Reprocess", json!([format!("W{i}"), format!("W{i}-b")]));
            let first = admin.set_action(&key, &body).await;
            let replay = admin.set_action(&key, &body).await;
            (first, replay)
        }
    }))
    .await;

    for (first, replay) in &replies {
        for reply in [first, replay] {
            assert_eq!(reply.status, 201, "{}", reply.text());
            assert!(!reply.text().contains("locked"), "{}", reply.text());
        }
    }
    assert_eq!(admin.jobs("limit=500").await.len(), WRITERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_actions_logins_and_tokens_at_once_never_wait_on_the_stores_lock() {
    // Every write of the process goes through one writer, so no write
    // waits for another's lock: the busy handler, which only another
    // process could make run, is never reached.
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let actions = futures::future::join_all((0..WRITERS).map(|i| {
        let admin = admin.clone();
        async move {
            let body = action_body("Resume", json!([format!("B{i}")]));
            admin.set_action(&new_key(), &body).await.status
        }
    }));
    let logins = futures::future::join_all((0..16).map(|i| {
        let app = &app;
        async move { app.try_login(&format!("nobody-{i}"), "wrong").await.status }
    }));
    let tokens = futures::future::join_all((0..16).map(|i| {
        let admin = admin.clone();
        async move { admin.create_token(&format!("t{i}")).await }
    }));
    let (actions, logins, _) = tokio::join!(actions, logins, tokens);
    assert!(actions.iter().all(|s| *s == 201), "{actions:?}");
    assert!(logins.iter().all(|s| *s == 401), "{logins:?}");
    let metrics = app.get("/metrics").await.text();
    let waits: f64 = metrics
        .lines()
        .find(|l| l.starts_with("tms_store_busy_waits_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert_eq!(waits, 0.0, "{metrics}");
    if crate::store::Backend::of_this_run() == crate::store::Backend::Sqlite {
        // The writer did take them: its batch histogram saw the writes.
        assert!(metrics.contains("tms_store_write_batch_size"), "{metrics}");
    }
}
