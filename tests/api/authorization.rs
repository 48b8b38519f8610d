//! The authorisation matrix: every endpoint × every kind of caller × every
//! way of presenting credentials, with the expected status of each cell
//! written out. Includes the IDOR checks on other users' jobs and tokens.

use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{action_body, new_key, send, Session, TestApp};

/// The callers, in the column order of the table below.
const COLUMNS: [&str; 13] = [
    "nobody",
    "bad token",
    "disabled (cookie)",
    "disabled (bearer)",
    "operator (cookie, no CSRF)",
    "operator (cookie + CSRF)",
    "operator (bearer)",
    "auditor (cookie, no CSRF)",
    "auditor (cookie + CSRF)",
    "auditor (bearer)",
    "admin (cookie, no CSRF)",
    "admin (cookie + CSRF)",
    "admin (bearer)",
];

struct Callers {
    columns: Vec<Session>,
}

async fn bearer_of(app: &TestApp, session: &Session) -> Session {
    let (_, token) = session.create_token("matrix").await;
    app.bearer(&token)
}

async fn callers(app: &TestApp) -> Callers {
    let admin = app.admin().await;
    let operator = app.create_user("operator").await;
    let auditor = app.create_user("auditor").await;
    let disabled = app.create_user("operator").await;
    let disabled_bearer = bearer_of(app, &disabled).await;
    admin
        .patch_json(
            &format!("/api/v1/users/{}", disabled.username),
            &json!({"disabled": true}),
        )
        .await
        .assert_status(200);
    let mut columns = vec![
        app.anonymous(),
        app.bearer("tms_not-a-token-anyone-was-given"),
        disabled,
        disabled_bearer,
    ];
    for session in [operator, auditor, admin] {
        columns.push(session.without_csrf());
        columns.push(bearer_of(app, &session).await);
        columns.insert(columns.len() - 1, session);
    }
    Callers { columns }
}

/// A unique suffix per request, so creations never collide.
fn unique() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn call(session: &Session, method: &Method, path: &str, body: Option<Value>) -> u16 {
    match (method.as_str(), body) {
        ("POST", Some(body)) if path == "/api/v1/actions" => {
            session.set_action(&new_key(), &body).await.status
        }
        ("POST", Some(body)) => session.post_json(path, &body).await.status,
        ("PATCH", Some(body)) => session.patch_json(path, &body).await.status,
        ("DELETE", _) => session.delete(path).await.status,
        _ => send(session.request(method.clone(), path)).await.status,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_every_caller_as_the_table_says() {
    // Arrange: a job and a token of the admin, a user to change, and every caller.
    let app = TestApp::spawn_with(|c| c.duplicate_guard_window = std::time::Duration::ZERO).await;
    let admin = app.admin().await;
    let admins_job = admin
        .set_action(&new_key(), &action_body("Resume", json!(["M0"])))
        .await
        .expect(201)["job"]["job_id"]
        .as_str()
        .expect("job_id")
        .to_owned();
    let victim = app.create_user("operator").await;
    let (victims_token, _) = victim.create_token("victim").await;
    let callers = callers(&app).await;

    type Body = fn() -> Option<Value>;
    let none: Body = || None;
    let action: Body = || {
        Some(action_body(
            "Trans-Begin",
            json!([format!("M{}", unique())]),
        ))
    };
    let new_user: Body = || {
        Some(
            json!({"username": format!("made-{}", unique()), "password": "made-pass-1234", "role": "auditor"}),
        )
    };
    let change: Body = || Some(json!({"role": "auditor"}));
    let token: Body = || Some(json!({"name": format!("t{}", unique())}));
    let job_path = format!("/api/v1/jobs/{admins_job}");
    let victim_path = format!("/api/v1/users/{}", victim.username);
    let victims_token_path = format!("/api/v1/tokens/{victims_token}");

    #[rustfmt::skip]
    let table: Vec<(Method, &str, Body, [u16; 13])> = vec![
        //                                          nobody bad  dis-c dis-b | operator      | auditor       | admin
        (Method::GET, "/healthz", none,              [200, 200, 200, 200,   200, 200, 200,  200, 200, 200,  200, 200, 200]),
        (Method::GET, "/readyz", none,               [200, 200, 200, 200,   200, 200, 200,  200, 200, 200,  200, 200, 200]),
        (Method::GET, "/metrics", none,              [200, 200, 200, 200,   200, 200, 200,  200, 200, 200,  200, 200, 200]),
        (Method::GET, "/api/v1/openapi.json", none,  [200, 200, 200, 200,   200, 200, 200,  200, 200, 200,  200, 200, 200]),
        (Method::GET, "/api/v1/me", none,            [401, 401, 401, 401,   200, 200, 200,  200, 200, 200,  200, 200, 200]),
        (Method::GET, "/api/v1/catalog", none,       [401, 401, 401, 401,   200, 200, 200,  200, 200, 200,  200, 200, 200]),
        (Method::POST, "/api/v1/actions", action,    [401, 401, 401, 401,   403, 201, 201,  403, 403, 403,  403, 201, 201]),
        (Method::GET, "/api/v1/jobs", none,          [401, 401, 401, 401,   200, 200, 200,  200, 200, 200,  200, 200, 200]),
        (Method::GET, &job_path, none,               [401, 401, 401, 401,   404, 404, 404,  200, 200, 200,  200, 200, 200]),
        (Method::GET, "/api/v1/approvals", none,     [401, 401, 401, 401,   200, 200, 200,  200, 200, 200,  200, 200, 200]),
        (Method::GET, "/api/v1/users", none,         [401, 401, 401, 401,   403, 403, 403,  403, 403, 403,  200, 200, 200]),
        (Method::POST, "/api/v1/users", new_user,    [401, 401, 401, 401,   403, 403, 403,  403, 403, 403,  403, 201, 201]),
        (Method::PATCH, &victim_path, change,        [401, 401, 401, 401,   403, 403, 403,  403, 403, 403,  403, 200, 200]),
        (Method::GET, "/api/v1/tokens", none,        [401, 401, 401, 401,   200, 200, 200,  200, 200, 200,  200, 200, 200]),
        (Method::POST, "/api/v1/tokens", token,      [401, 401, 401, 401,   403, 201, 201,  403, 201, 201,  403, 201, 201]),
        (Method::DELETE, &victims_token_path, none,  [401, 401, 401, 401,   403, 404, 404,  403, 404, 404,  403, 404, 404]),
        // Last: logging out ends the cookie sessions used above.
        (Method::DELETE, "/api/v1/session", none,    [401, 401, 401, 401,   403, 204, 204,  403, 204, 204,  403, 204, 204]),
    ];

    // Act and assert, cell by cell; report every wrong cell at once.
    let mut wrong = Vec::new();
    for (method, path, body, expected) in &table {
        for (column, session) in callers.columns.iter().enumerate() {
            let status = call(session, method, path, body()).await;
            if status != expected[column] {
                wrong.push(format!(
                    "{method} {path} as {}: got {status}, expected {}",
                    COLUMNS[column], expected[column]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong cells:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // The victim's token survived every attempt.
    let tokens = victim.get("/api/v1/tokens").await.expect(200);
    assert_eq!(
        tokens["tokens"].as_array().map(Vec::len),
        Some(1),
        "{tokens}"
    );
}
