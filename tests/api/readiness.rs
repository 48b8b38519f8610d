//! A store lost while running: clear `503` answers, and recovery without a
//! restart once it is back. Always on PostgreSQL, the store that can go away
//! on its own.

use std::time::{Duration, Instant};

use crate::helpers::{TestApp, TestStore};
use crate::proxy::TogglingProxy;
use crate::store::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_postgresql_is_unreachable_and_recovers_without_a_restart() {
    // Arrange: the instance reaches PostgreSQL through a proxy we can cut.
    let store = std::sync::Arc::new(TestStore::on(Backend::Postgres).await);
    let mut url = reqwest::Url::parse(&store.url).expect("url");
    let target = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().unwrap_or(5432)
    );
    let target = tokio::net::lookup_host(target)
        .await
        .expect("resolve")
        .next()
        .expect("address");
    let proxy = TogglingProxy::start(target).await;
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(proxy.port)).expect("port");
    let app = TestApp::spawn_on(store.clone(), |c| {
        c.database_url = url.to_string();
        c.pool_acquire_timeout = Duration::from_secs(1);
    })
    .await;
    let (_, token) = app.admin().await.create_token("probe").await;
    let script = app.bearer(&token);
    app.get("/readyz").await.assert_status(200);

    // Act 1: the database goes away.
    proxy.go_down();

    // Assert 1: readiness and API requests answer 503, liveness stays 200.
    app.get("/readyz").await.expect_problem(503, "unavailable");
    script
        .get("/api/v1/jobs")
        .await
        .expect_problem(503, "unavailable");
    app.get("/healthz").await.assert_status(200);

    // Act 2: it comes back.
    proxy.come_back();

    // Assert 2: the same process recovers.
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "never became ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    script.get("/api/v1/jobs").await.assert_status(200);
}
