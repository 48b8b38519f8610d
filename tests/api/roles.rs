//! What operators, auditors and admins may see and do.

use serde_json::{json, Value};

use crate::helpers::{action_body, enc, new_key, Session, TestApp};

async fn run_job(session: &Session, cid: &str) -> Value {
    let body = action_body("Trans-Begin", json!([cid]));
    session.set_action(&new_key(), &body).await.expect(201)["job"].clone()
}

#[tokio::test]
async fn an_operator_sees_only_their_own_jobs() {
    let app = TestApp::spawn().await;
    let (admin, operator) = (app.admin().await, app.create_user("operator").await);
    run_job(&admin, "C1001").await;
    let own = run_job(&operator, "C1002").await;

    let jobs = operator.jobs("").await;
    let filtered = operator
        .jobs(&format!("user={}", enc(&operator.username)))
        .await;

    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["job_id"], own["job_id"]);
    assert_eq!(filtered.len(), 1);
    assert_eq!(admin.jobs("").await.len(), 2);
}

#[tokio::test]
async fn an_operator_asking_for_another_users_jobs_gets_403_forbidden() {
    let app = TestApp::spawn().await;
    let (admin, operator) = (app.admin().await, app.create_user("operator").await);
    run_job(&admin, "C1001").await;

    let reply = operator.get("/api/v1/jobs?user=admin").await;

    reply.expect_problem(403, "forbidden");
}

#[tokio::test]
async fn an_operator_reading_another_users_job_by_id_gets_404_not_found() {
    let app = TestApp::spawn().await;
    let (admin, operator) = (app.admin().await, app.create_user("operator").await);
    let job = run_job(&admin, "C1001").await;
    let id = job["job_id"].as_str().unwrap();

    let reply = operator.get(&format!("/api/v1/jobs/{id}")).await;

    reply.expect_problem(404, "not_found");
}

#[tokio::test]
async fn an_auditor_sees_every_job() {
    let app = TestApp::spawn().await;
    let (admin, operator) = (app.admin().await, app.create_user("operator").await);
    let auditor = app.create_user("auditor").await;
    let by_admin = run_job(&admin, "C1001").await;
    run_job(&operator, "C1002").await;
    let id = by_admin["job_id"].as_str().unwrap();

    let jobs = auditor.jobs("").await;
    let one = auditor.get(&format!("/api/v1/jobs/{id}")).await;
    let by_user = auditor
        .jobs(&format!("user={}", enc(&operator.username)))
        .await;

    assert_eq!(jobs.len(), 2);
    assert_eq!(one.expect(200)["job"]["job_id"], id);
    assert_eq!(by_user.len(), 1);
}

#[tokio::test]
async fn only_an_admin_may_use_the_users_api() {
    let app = TestApp::spawn().await;
    let operator = app.create_user("operator").await;
    let auditor = app.create_user("auditor").await;
    let new_user = json!({"username": "mallory", "password": "mallory-pw-123456", "role": "admin"});

    for session in [&operator, &auditor] {
        session
            .get("/api/v1/users")
            .await
            .expect_problem(403, "forbidden");
        session
            .post_json("/api/v1/users", &new_user)
            .await
            .expect_problem(403, "forbidden");
        let patch = json!({"role": "admin"});
        let path = format!("/api/v1/users/{}", session.username);
        session
            .patch_json(&path, &patch)
            .await
            .expect_problem(403, "forbidden");
    }
    app.anonymous()
        .get("/api/v1/users")
        .await
        .expect_problem(401, "unauthenticated");
    app.try_login("mallory", "mallory-pw-123456")
        .await
        .expect_problem(401, "invalid_credentials");
}
