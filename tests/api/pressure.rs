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
