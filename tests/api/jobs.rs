//! The User Jobs Audit API: filters, ordering, pagination, one job by id.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::{action_body, enc, new_key, Session, TestApp};

async fn run(session: &Session, action: &str, cids: Value) -> Value {
    let reply = session
        .set_action(&new_key(), &action_body(action, cids))
        .await;
    assert!(matches!(reply.status, 201 | 502), "{}", reply.text());
    reply.json()["job"].clone()
}

fn ids(jobs: &[Value]) -> Vec<String> {
    jobs.iter()
        .map(|job| job["job_id"].as_str().expect("job_id").to_owned())
        .collect()
}

#[tokio::test]
async fn the_jobs_list_filters_by_user_action_cluster_status_and_cid() {
    // Arrange
    let app = TestApp::spawn().await;
    let (admin, operator) = (app.admin().await, app.create_user("operator").await);
    let begin = run(&admin, "Trans-Begin", json!(["C100", "C200"])).await;
    let suspend = run(&operator, "Suspend", json!(["C300"])).await;
    let failed = run(&admin, "Resume", json!(["FAIL1", "C400"])).await;
    let id = |job: &Value| job["job_id"].as_str().unwrap().to_owned();

    // Act + Assert
    let user = enc(&operator.username);
    assert_eq!(
        ids(&admin.jobs(&format!("user={user}")).await),
        vec![id(&suspend)]
    );
    assert_eq!(
        ids(&admin.jobs("user=admin").await),
        vec![id(&failed), id(&begin)]
    );
    assert_eq!(ids(&admin.jobs("action=Suspend").await), vec![id(&suspend)]);
    assert_eq!(admin.jobs("cluster=sandbox").await.len(), 3);
    assert_eq!(ids(&admin.jobs("status=failed").await), vec![id(&failed)]);
    assert_eq!(admin.jobs("status=succeeded").await.len(), 2);
    assert_eq!(ids(&admin.jobs("cid=C200").await), vec![id(&begin)]);
    assert_eq!(ids(&admin.jobs("cid=C400").await), vec![id(&failed)]);
    assert!(
        admin.jobs("cid=C20").await.is_empty(),
        "cid must match exactly"
    );
    assert!(
        admin.jobs("cid=c200").await.is_empty(),
        "cid must match exactly"
    );
    assert_eq!(
        ids(&admin.jobs("user=admin&status=succeeded").await),
        vec![id(&begin)]
    );
}

#[tokio::test]
async fn since_is_inclusive_and_until_is_exclusive() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(5));
    let first = run(&admin, "Trans-Begin", json!(["C1"])).await;
    pause().await;
    let middle = run(&admin, "Trans-Begin", json!(["C2"])).await;
    pause().await;
    let last = run(&admin, "Trans-Begin", json!(["C3"])).await;
    let at = enc(middle["created_at"].as_str().unwrap());

    // Act
    let since = admin.jobs(&format!("since={at}")).await;
    let until = admin.jobs(&format!("until={at}")).await;

    // Assert
    assert_eq!(ids(&since), ids(&[last, middle]));
    assert_eq!(ids(&until), ids(&[first]));
}

#[tokio::test]
async fn limit_outside_1_to_500_a_bad_cursor_or_an_unparsable_date_is_rejected_as_invalid_query() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    for query in [
        "limit=0",
        "limit=501",
        "limit=ten",
        "cursor=not-a-cursor",
        "since=yesterday",
        "until=2026-13-45",
    ] {
        let reply = admin.get(&format!("/api/v1/jobs?{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text());
        reply.expect_problem(400, "invalid_query");
    }
    admin.get("/api/v1/jobs?limit=1").await.assert_status(200);
    admin.get("/api/v1/jobs?limit=500").await.assert_status(200);
}

#[tokio::test]
async fn cursor_pagination_walks_every_job_newest_first_without_repeats_or_gaps() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(run(&admin, "Trans-Begin", json!([format!("C{i}")])).await);
    }
    created.reverse();

    // Act
    let mut pages = Vec::new();
    let mut query = "limit=3".to_owned();
    loop {
        let page = admin
            .get(&format!("/api/v1/jobs?{query}"))
            .await
            .expect(200);
        pages.push(page["jobs"].as_array().expect("jobs").clone());
        match &page["next_cursor"] {
            Value::Null => break,
            Value::String(cursor) => query = format!("limit=3&cursor={}", enc(cursor)),
            other => panic!("next_cursor is neither null nor a string: {other}"),
        }
        assert!(pages.len() <= 7, "pagination does not end");
    }

    // Assert
    let sizes: Vec<_> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![3, 3, 1]);
    let walked: Vec<Value> = pages.into_iter().flatten().collect();
    assert_eq!(
        ids(&walked),
        ids(&created),
        "not newest first, or gaps/repeats"
    );
    assert_eq!(ids(&walked).into_iter().collect::<HashSet<_>>().len(), 7);
    let times: Vec<&str> = walked
        .iter()
        .map(|j| j["created_at"].as_str().unwrap())
        .collect();
    let parsed: Vec<_> = times
        .iter()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
        .collect();
    assert!(
        parsed.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
}

#[tokio::test]
async fn a_job_is_fetched_by_id_and_an_unknown_id_gets_404_not_found() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let job = run(&admin, "Trans-Begin", json!(["C1"])).await;
    let id = job["job_id"].as_str().unwrap();

    let found = admin.get(&format!("/api/v1/jobs/{id}")).await;
    let unknown = admin
        .get(&format!("/api/v1/jobs/{}", uuid::Uuid::now_v7()))
        .await;

    let found = found.expect(200)["job"].clone();
    for field in [
        "job_id",
        "user",
        "action",
        "cids",
        "status",
        "created_at",
        "finished_at",
    ] {
        assert_eq!(found[field], job[field], "{field}");
    }
    unknown.expect_problem(404, "not_found");
}

#[tokio::test]
async fn the_export_refuses_paging_parameters_and_bad_filters_as_invalid_query() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    run(&admin, "Trans-Begin", json!(["E1"])).await;
    for query in [
        "limit=0",
        "limit=10",
        "cursor=abc",
        "status=done",
        "since=yesterday",
        "retried=maybe",
        "format=xml",
    ] {
        admin
            .get(&format!("/api/v1/jobs/export?{query}"))
            .await
            .expect_problem(400, "invalid_query");
    }
    let csv = admin
        .get("/api/v1/jobs/export?format=csv&status=succeeded")
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.text().lines().count(), 2, "{}", csv.text());
}

#[tokio::test]
async fn a_day_filters_from_its_start_and_until_includes_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let job = run(&admin, "Trans-Begin", json!(["D1"])).await;
    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().unwrap();
    let found = |query: String| {
        let admin = admin.clone();
        async move { ids(&admin.jobs(&query).await) }
    };
    let id = job["job_id"].as_str().unwrap().to_owned();
    let today_only = found(format!("since={today}&until={today}")).await;
    assert_eq!(today_only, std::slice::from_ref(&id));
    assert!(found(format!("until={yesterday}")).await.is_empty());
    assert_eq!(found(format!("since={yesterday}")).await, [id]);
}
