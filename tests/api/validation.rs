//! Requests the server must refuse before anything is stored or sent upstream.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{action_body, new_key, send, Reply, Session, TestApp};

/// Asserts the problem, then that no job exists and the sandbox saw nothing.
async fn assert_refused_and_nothing_stored(
    app: &TestApp,
    reply: &Reply,
    status: u16,
    code: &str,
) -> Value {
    let problem = reply.expect_problem(status, code);
    assert!(
        app.admin().await.jobs("").await.is_empty(),
        "a job was stored"
    );
    assert_eq!(app.sandbox_requests().await, 0, "the sandbox was called");
    problem
}

async fn post_raw(session: &Session, body: impl Into<reqwest::Body>) -> Reply {
    let request = session
        .request(Method::POST, "/api/v1/actions")
        .header("Idempotency-Key", new_key())
        .header("content-type", "application/json")
        .body(body);
    send(request).await
}

#[tokio::test]
async fn an_unknown_cluster_is_rejected_with_422_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let body = json!({"cluster": "atlantis", "action": "Trans-Begin", "cids": ["C1001"]});

    let reply = app.admin().await.set_action(&new_key(), &body).await;

    assert_refused_and_nothing_stored(&app, &reply, 422, "unknown_cluster").await;
}

#[tokio::test]
async fn an_unknown_action_is_rejected_with_422_and_nothing_is_stored() {
    let app = TestApp::spawn().await;

    let reply = app
        .admin()
        .await
        .set_action(&new_key(), &action_body("Self-Destruct", json!(["C1001"])))
        .await;

    assert_refused_and_nothing_stored(&app, &reply, 422, "unknown_action").await;
}

#[tokio::test]
async fn an_empty_list_or_a_blank_string_is_rejected_as_no_cids() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let empty = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!([])))
        .await;
    let blank = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!("  ")))
        .await;

    assert_refused_and_nothing_stored(&app, &empty, 422, "no_cids").await;
    assert_refused_and_nothing_stored(&app, &blank, 422, "no_cids").await;
}

#[tokio::test]
async fn more_than_500_cids_are_rejected_as_too_many_cids_with_the_maximum() {
    let app = TestApp::spawn().await;
    let cids: Vec<String> = (0..501).map(|i| format!("C{i}")).collect();

    let reply = app
        .admin()
        .await
        .set_action(&new_key(), &action_body("Trans-Begin", json!(cids)))
        .await;

    let problem = assert_refused_and_nothing_stored(&app, &reply, 422, "too_many_cids").await;
    assert_eq!(problem["max"], 500);
}

#[tokio::test]
async fn five_hundred_cids_after_collapsing_repeats_are_accepted() {
    let app = TestApp::spawn().await;
    let mut cids: Vec<String> = (0..500).map(|i| format!("C{i}")).collect();
    cids.push("C0".into());

    let reply = app
        .admin()
        .await
        .set_action(&new_key(), &action_body("Trans-Begin", json!(cids)))
        .await;

    assert_eq!(reply.expect(201)["job"]["cid_count"], 500);
}

#[tokio::test]
async fn invalid_cids_are_rejected_naming_each_bad_value_and_why() {
    let app = TestApp::spawn().await;
    let long = "X".repeat(65);
    let cids = json!(["C1001", "bad!", "a b", "-lead", long, "C1002"]);

    let reply = app
        .admin()
        .await
        .set_action(&new_key(), &action_body("Trans-Begin", cids))
        .await;

    let problem = assert_refused_and_nothing_stored(&app, &reply, 422, "invalid_cids").await;
    let invalid = problem["invalid"].as_array().expect("invalid list");
    let mut values: Vec<&str> = invalid
        .iter()
        .map(|i| i["value"].as_str().expect("value"))
        .collect();
    values.sort_unstable();
    let mut expected = vec!["bad!", "a b", "-lead", long.as_str()];
    expected.sort_unstable();
    assert_eq!(values, expected, "{problem}");
    for item in invalid {
        assert!(
            !item["reason"].as_str().unwrap_or_default().is_empty(),
            "{item}"
        );
    }
}

#[tokio::test]
async fn the_string_form_splits_on_commas_spaces_tabs_and_newlines_and_collapses_repeats() {
    let app = TestApp::spawn().await;
    let cids = json!("C3, C1\tC2\nC3  C1,,C4\r\n");

    let reply = app
        .admin()
        .await
        .set_action(&new_key(), &action_body("Trans-Begin", cids))
        .await;

    let job = reply.expect(201)["job"].clone();
    assert_eq!(job["cids"], json!(["C3", "C1", "C2", "C4"]));
    assert_eq!(job["cid_count"], 4);
}

#[tokio::test]
async fn array_cids_are_trimmed_and_repeats_collapse_keeping_the_first() {
    let app = TestApp::spawn().await;

    let reply = app
        .admin()
        .await
        .set_action(
            &new_key(),
            &action_body("Trans-Begin", json!([" C7 ", "C8", "C7", "\tC9"])),
        )
        .await;

    let job = reply.expect(201)["job"].clone();
    assert_eq!(job["cids"], json!(["C7", "C8", "C9"]));
}

#[tokio::test]
async fn malformed_json_or_wrong_types_are_rejected_as_invalid_body() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let replies = [
        post_raw(&admin, "{\"cluster\": \"sandbox\",").await,
        post_raw(&admin, "not json at all").await,
        admin
            .set_action(&new_key(), &action_body("Trans-Begin", json!(42)))
            .await,
        admin
            .set_action(&new_key(), &action_body("Trans-Begin", json!([1, 2])))
            .await,
        admin
            .set_action(&new_key(), &json!({"cluster": "sandbox", "cids": ["C1"]}))
            .await,
        admin
            .set_action(&new_key(), &json!(["sandbox", "Trans-Begin"]))
            .await,
    ];

    for reply in &replies {
        assert_refused_and_nothing_stored(&app, reply, 400, "invalid_body").await;
    }
}

#[tokio::test]
async fn a_body_over_256_kib_is_rejected_with_413_payload_too_large() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let huge = "C1 ".repeat(100 * 1024);
    let body = action_body("Trans-Begin", json!(huge)).to_string();
    assert!(body.len() > 256 * 1024);

    let reply = post_raw(&admin, body).await;

    assert_refused_and_nothing_stored(&app, &reply, 413, "payload_too_large").await;
}

#[tokio::test]
async fn an_unauthenticated_request_is_rejected_with_401() {
    let app = TestApp::spawn().await;

    let reply = app
        .anonymous()
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["C1001"])))
        .await;

    assert_refused_and_nothing_stored(&app, &reply, 401, "unauthenticated").await;
}

#[tokio::test]
async fn an_auditor_may_not_execute_actions() {
    let app = TestApp::spawn().await;
    let auditor = app.create_user("auditor").await;

    let reply = auditor
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["C1001"])))
        .await;

    assert_refused_and_nothing_stored(&app, &reply, 403, "forbidden").await;
}

#[tokio::test]
async fn a_json_array_in_the_shape_of_the_body_is_rejected_as_invalid_body() {
    // Serde's derive reads a struct from an array of its fields in order:
    // the body must be an object, whatever its array would spell.
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for body in [
        r#"["sandbox","Trans-Begin",["V1"]]"#,
        r#" ["sandbox","Trans-Begin","V1",null,false,null]"#,
    ] {
        let reply = post_raw(&admin, body.to_owned()).await;
        assert_refused_and_nothing_stored(&app, &reply, 400, "invalid_body").await;
    }
}
