//! Health, readiness, metrics, the catalog and the API description.

use serde_json::json;

use crate::helpers::{action_body, new_key, TestApp};

#[tokio::test]
async fn health_and_readiness_answer_200_without_a_login() {
    let app = TestApp::spawn().await;

    let health = app.get("/healthz").await;
    let ready = app.get("/readyz").await;

    health.assert_status(200);
    ready.assert_status(200);
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_count_set_actions() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["C1001"])))
        .await
        .assert_status(201);

    // Act
    let reply = app.get("/metrics").await;

    // Assert
    reply.assert_status(200);
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = reply.text();
    let counters: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .filter(|name| name.contains("action"))
        .collect();
    assert!(!counters.is_empty(), "no set-action counter in:\n{text}");
    let counted = text.lines().any(|line| {
        counters.iter().any(|name| line.starts_with(name))
            && line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v >= 1.0)
    });
    assert!(
        counted,
        "the set-action counters {counters:?} did not count the action:\n{text}"
    );
}

#[tokio::test]
async fn the_catalog_lists_the_sandbox_cluster_and_the_six_default_actions() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let catalog = admin.get("/api/v1/catalog").await.expect(200);

    let clusters = catalog["clusters"].as_array().expect("clusters");
    assert_eq!(clusters.len(), 1, "{catalog}");
    assert_eq!(clusters[0]["name"], "sandbox");
    assert_eq!(clusters[0]["label"], "Sandbox (simulated)");
    assert_eq!(clusters[0]["needs_token"], false);
    assert!(clusters[0].get("base_url").is_none() && clusters[0].get("token").is_none());
    let actions = catalog["actions"].as_array().expect("actions");
    let names_and_codes: Vec<_> = actions
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or_default(),
                a["code"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        names_and_codes,
        vec![
            ("Trans-Begin", 1),
            ("Trans-End", 2),
            ("Suspend", 3),
            ("Resume", 4),
            ("Reprocess", 5),
            ("Purge-Cache", 6)
        ]
    );
    for action in actions {
        assert_eq!(action["max_cids"], 500);
        assert!(action["description"].is_string());
    }
    app.get("/api/v1/catalog")
        .await
        .expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn the_openapi_document_describes_the_api_under_its_prefix() {
    let app = TestApp::spawn().await;

    let document = app.get("/api/v1/openapi.json").await.expect(200);

    assert!(
        document["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with('3'),
        "{document}"
    );
    for path in ["/api/v1/actions", "/api/v1/jobs", "/api/v1/session"] {
        assert!(
            document["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI paths"
        );
    }
    // The Set Action names this server's clusters and actions.
    let request = &document["components"]["schemas"]["SetActionRequest"]["properties"];
    assert_eq!(request["cluster"]["enum"], serde_json::json!(["sandbox"]));
    assert_eq!(request["action"]["enum"][0], "Trans-Begin");
    assert_eq!(request["action"]["enum"].as_array().map(Vec::len), Some(6));
    // Errors are problem documents.
    let refused = &document["paths"]["/api/v1/actions"]["post"]["responses"]["422"];
    assert!(
        refused["content"]["application/problem+json"].is_object(),
        "{refused}"
    );
}
