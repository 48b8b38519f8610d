//! Events for other systems (SPEC §15), checked by their real peers: a
//! webhook receiver that verifies every delivery with the official Standard
//! Webhooks library (Python), and Debian's rsyslog with a TCP input and a
//! file output. The chain is re-computed here from the specification's
//! words (SHA-256 over `prev_hash` and RFC 8785 JSON), not by our code.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::store::Backend;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCEhIQ==";

/// Every event of the feed, through the API.
async fn all_events(admin: &Session) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = admin
            .get(&format!("/api/v1/events?after={after}&limit=1000"))
            .await
            .expect(200);
        let events = list_of(&page, "events");
        if events.is_empty() {
            assert_eq!(page["next_after"], json!(after), "{page}");
            return out;
        }
        after = page["next_after"].as_i64().expect("next_after");
        assert_eq!(Some(after), events.last().and_then(|e| e["seq"].as_i64()));
        out.extend(events);
    }
}

/// The chain as SPEC §15 words it, checked independently of the product.
fn assert_chain(events: &[Value]) {
    let mut prev = "0".repeat(64);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event["seq"],
            json!(i as i64 + 1),
            "seq without gaps: {event}"
        );
        assert_eq!(event["prev_hash"], json!(prev), "prev_hash: {event}");
        let mut hashed = event.clone();
        let members = hashed.as_object_mut().expect("an event is an object");
        members.remove("hash");
        members.remove("prev_hash");
        let canonical = serde_json_canonicalizer::to_vec(&hashed).expect("canonical JSON");
        let mut digest = Sha256::new();
        digest.update(prev.as_bytes());
        digest.update(&canonical);
        let hash = hex::encode(digest.finalize());
        assert_eq!(event["hash"], json!(hash), "hash: {event}");
        prev = hash;
    }
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect()
}

/// Waits (up to `secs`) until `check` holds.
async fn wait_until<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes `n` events: API tokens created by the admin (one event each).
async fn make_events(admin: &Session, n: usize) {
    for i in 0..n {
        admin
            .post_json("/api/v1/tokens", &json!({"name": format!("t{i}")}))
            .await
            .expect(201);
    }
}

#[tokio::test]
async fn every_change_is_an_event_in_seq_order_chained_and_without_secrets() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let operator = app.create_user("operator").await;
    let (token_id, token) = admin.create_token("script").await;
    admin
        .delete(&format!("/api/v1/tokens/{token_id}"))
        .await
        .assert_status(204);
    app.try_login("nobody", "wrong-password-123")
        .await
        .expect_problem(401, "invalid_credentials");
    let job = operator
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["C1001"])))
        .await
        .expect(201);
    admin
        .patch_json(
            &format!("/api/v1/users/{}", operator.username),
            &json!({"disabled": true}),
        )
        .await
        .expect(200);
    admin.delete("/api/v1/session").await.assert_status(204);

    let admin = app.admin().await;
    let events = all_events(&admin).await;
    assert_chain(&events);
    let seen = types(&events);
    for expected in [
        "user.created",
        "session.login",
        "token.created",
        "token.revoked",
        "session.login_failed",
        "job.created",
        "job.finalized",
        "user.changed",
        "session.logout",
    ] {
        assert!(
            seen.iter().any(|t| t == expected),
            "no {expected} in {seen:?}"
        );
    }
    let job_id = job["job"]["job_id"].clone();
    let finalized = events
        .iter()
        .find(|e| e["type"] == "job.finalized")
        .expect("job.finalized");
    assert_eq!(finalized["subject"], json!({"job_id": job_id}));
    assert_eq!(finalized["data"]["status"], "succeeded");
    assert_eq!(finalized["actor"], json!(operator.username));
    let changed = events
        .iter()
        .find(|e| e["type"] == "user.changed")
        .expect("user.changed");
    assert_eq!(changed["data"]["disabled"], true);
    assert_eq!(changed["actor"], "admin");
    let revoked = events
        .iter()
        .find(|e| e["type"] == "token.revoked")
        .expect("token.revoked");
    assert_eq!(
        revoked["subject"],
        json!({"token_id": token_id, "username": "admin"})
    );
    for event in &events {
        let id = uuid::Uuid::parse_str(event["event_id"].as_str().expect("event_id")).unwrap();
        assert_eq!(id.get_version_num(), 7, "{event}");
        let text = event.to_string();
        for secret in [
            token.as_str(),
            ADMIN_PASSWORD,
            "wrong-password-123",
            "password_hash",
            "$argon2",
        ] {
            assert!(!text.contains(secret), "an event carries a secret: {text}");
        }
    }
    // Paging: `after` and `limit` cut the same feed.
    let page = admin
        .get("/api/v1/events?after=2&limit=3")
        .await
        .expect(200);
    assert_eq!(list_of(&page, "events"), events[2..5].to_vec());
    assert_eq!(page["next_after"], 5);
}

#[tokio::test]
async fn the_feed_refuses_bad_parameters_and_roles_that_may_not_read_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for query in [
        "after=-1",
        "after=abc",
        "after=1.5",
        "limit=0",
        "limit=1001",
        "limit=x",
    ] {
        let problem = admin
            .get(&format!("/api/v1/events?{query}"))
            .await
            .expect_problem(400, "invalid_query");
        let detail = problem["detail"].as_str().unwrap_or_default();
        let name = query.split('=').next().unwrap();
        assert!(detail.starts_with(name), "{query}: {problem}");
    }
    admin.get("/api/v1/events?limit=1000").await.expect(200);
    let operator = app.create_user("operator").await;
    operator
        .get("/api/v1/events")
        .await
        .expect_problem(403, "forbidden");
    operator
        .get("/api/v1/sinks")
        .await
        .expect_problem(403, "forbidden");
    let auditor = app.create_user("auditor").await;
    auditor.get("/api/v1/events").await.expect(200);
    auditor
        .get("/api/v1/sinks")
        .await
        .expect_problem(403, "forbidden");
    app.get("/api/v1/events")
        .await
        .expect_problem(401, "unauthenticated");
    assert_eq!(
        admin.get("/api/v1/sinks").await.expect(200),
        json!({"sinks": []})
    );
}

/// Runs the real binary's `events` command on `store`.
fn events_command(store: &TestStore, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tms-dashboard"))
        .arg("events")
        .args(args)
        .args(["--database-url", &store.url])
        .current_dir(store.dir())
        .env_remove("TMS_CONFIG")
        .output()
        .expect("tms-dashboard events")
}

/// Runs one statement on the store directly, as someone editing the database.
async fn edit_store(store: &TestStore, sql: &str) {
    use sqlx::Connection;
    match store.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&store.url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&store.url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
}

#[tokio::test]
async fn events_verify_names_the_first_event_edited_in_the_database() {
    let store = std::sync::Arc::new(TestStore::new().await);
    let app = TestApp::spawn_on(store.clone(), |_| {}).await;
    let admin = app.admin().await;
    make_events(&admin, 5).await;
    let events = all_events(&admin).await;
    drop(app);

    let intact = events_command(&store, &["verify"]);
    let out = String::from_utf8_lossy(&intact.stdout);
    assert_eq!(intact.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("{} event(s) is intact", events.len())),
        "{out}"
    );

    let tail = events_command(&store, &["tail", "--after", "2"]);
    assert_eq!(tail.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8_lossy(&tail.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    assert_eq!(lines, events[2..].to_vec());

    edit_store(
        &store,
        "UPDATE events SET data = '{\"name\":\"edited\"}' WHERE seq = 4",
    )
    .await;
    let broken = events_command(&store, &["verify"]);
    let out = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{out}");
    assert!(out.contains("breaks at seq 4"), "{out}");

    let bad = Command::new(env!("CARGO_BIN_EXE_tms-dashboard"))
        .args([
            "events",
            "verify",
            "--database-url",
            "postgres://127.0.0.1:1/none",
        ])
        .env_remove("TMS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// The Python receiver, verifying with the `standardwebhooks` package.
struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
    secret: &'static str,
    /// Seconds each delivery takes to answer.
    delay: &'static str,
}

fn receiver_python() -> PathBuf {
    let python =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook-receiver/.venv/bin/python");
    assert!(
        python.exists(),
        "the webhook receiver's venv is missing: run ./scripts/test.sh (it installs standardwebhooks into tests/webhook-receiver/.venv)"
    );
    python
}

impl Receiver {
    async fn start(dir: &Path, secret: &'static str) -> Receiver {
        Receiver::start_on(dir, free_port(), secret, "0").await
    }

    async fn start_on(
        dir: &Path,
        port: u16,
        secret: &'static str,
        delay: &'static str,
    ) -> Receiver {
        let out = dir.join(format!("received-{port}.ndjson"));
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook-receiver/receiver.py");
        let child = Command::new(receiver_python())
            .arg(script)
            .arg(port.to_string())
            .arg(secret)
            .arg(&out)
            .arg(delay)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python receiver");
        let receiver = Receiver {
            child,
            port,
            out,
            secret,
            delay,
        };
        wait_until(10, "the receiver listens", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        receiver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Every delivery so far: `(verified, event)`.
    fn deliveries(&self) -> Vec<(bool, Value)> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|d| (d["ok"] == true, d))
            .collect()
    }

    /// The seqs of the verified deliveries, in arrival order; each
    /// delivery's `webhook-id` must be its event's id.
    fn seqs(&self) -> Vec<i64> {
        self.deliveries()
            .into_iter()
            .filter(|(ok, _)| *ok)
            .map(|(_, d)| {
                assert_eq!(d["webhook_id"], d["event"]["event_id"], "{d}");
                d["event"]["seq"].as_i64().expect("seq")
            })
            .collect()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn restart(&mut self) {
        self.stop();
        let again = Receiver::start_on(
            self.out.parent().unwrap(),
            self.port,
            self.secret,
            self.delay,
        )
        .await;
        let _ = std::mem::replace(self, again);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A configuration file with `sinks` (TOML), for the real binary.
fn config_file(dir: &Path, sinks: &str) -> PathBuf {
    let path = dir.join(format!("sinks-{}.toml", free_port()));
    std::fs::write(&path, sinks).unwrap();
    path
}

fn webhook_sink(name: &str, url: &str, secret_env: &str) -> String {
    format!("[[sinks]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\nsecret_env = \"{secret_env}\"\n")
}

async fn sink_status(admin: &Session, name: &str) -> Value {
    let sinks = admin.get("/api/v1/sinks").await.expect(200);
    list_of(&sinks, "sinks")
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no sink {name}: {sinks}"))
}

#[tokio::test]
async fn a_webhook_sink_delivers_every_event_once_in_order_across_a_receiver_outage() {
    let store = TestStore::new().await;
    let mut receiver = Receiver::start(store.dir(), SECRET).await;
    let config = config_file(
        store.dir(),
        &webhook_sink("chat", &receiver.url(), "HOOK_SECRET"),
    );
    let server = ServerProcess::start(
        &store,
        free_port(),
        "serve.log",
        &[
            ("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("TMS_CONFIG", config.to_str().unwrap()),
            ("HOOK_SECRET", SECRET),
            ("TMS_SINK_MAX_BACKOFF", "200ms"),
        ],
    )
    .await;
    let admin = server.admin().await;
    make_events(&admin, 5).await;
    let head = || async { all_events(&admin).await.len() as i64 };
    let n = head().await;
    wait_until(20, "the first events arrive", || async {
        receiver.seqs().len() as i64 >= n
    })
    .await;

    // The receiver goes away; the events made meanwhile wait for it.
    receiver.stop();
    make_events(&admin, 5).await;
    wait_until(20, "the sink reports its error", || async {
        let s = sink_status(&admin, "chat").await;
        !s["last_error"].is_null() && s["pending"].as_i64() > Some(0)
    })
    .await;
    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains("tms_sink_failures_total{sink=\"chat\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tms_sink_pending{sink=\"chat\"}"),
        "{metrics}"
    );
    assert!(
        server.log().contains("[EVENTS] FAILED: sink=chat"),
        "{}",
        server.log()
    );

    receiver.restart().await;
    let n = head().await;
    wait_until(30, "every event arrives after the outage", || async {
        receiver.seqs().len() as i64 >= n
    })
    .await;
    assert_eq!(
        receiver.seqs(),
        (1..=n).collect::<Vec<_>>(),
        "in order, each once"
    );
    wait_until(10, "the sink reports its recovery", || async {
        let s = sink_status(&admin, "chat").await;
        s["last_error"].is_null() && s["delivered_seq"].as_i64() == Some(n)
    })
    .await;
    let s = sink_status(&admin, "chat").await;
    assert_eq!(s["kind"], "webhook");
    assert_eq!(s["pending"], 0);
    assert!(s["last_success_at"].is_string(), "{s}");
    assert!(
        server.log().contains("[EVENTS] RECOVERED: sink=chat"),
        "{}",
        server.log()
    );
    // The bodies are the events themselves, as the feed has them.
    let delivered: Vec<Value> = receiver
        .deliveries()
        .into_iter()
        .map(|(_, d)| d["event"].clone())
        .collect();
    assert_eq!(delivered, all_events(&admin).await[..n as usize].to_vec());
}

#[tokio::test]
async fn a_receiver_holding_another_secret_rejects_every_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), OTHER_SECRET).await;
    std::env::set_var("TMS_TEST_WRONG_SECRET", SECRET);
    let url = receiver.url();
    let app = TestApp::spawn_with(|c| {
        c.sink_max_backoff = Duration::from_millis(100);
        c.sinks = vec![sink_config(
            "wrong",
            "webhook",
            Some(&url),
            Some("TMS_TEST_WRONG_SECRET"),
            None,
        )];
    })
    .await;
    let admin = app.admin().await;
    wait_until(20, "deliveries are refused", || async {
        receiver.deliveries().len() >= 2
    })
    .await;
    assert!(receiver.deliveries().iter().all(|(ok, _)| !ok));
    let s = sink_status(&admin, "wrong").await;
    assert_eq!(s["delivered_seq"], 0, "{s}");
    assert!(
        s["last_error"].as_str().unwrap_or_default().contains("401"),
        "{s}"
    );
}

fn sink_config(
    name: &str,
    kind: &str,
    url: Option<&str>,
    secret_env: Option<&str>,
    address: Option<&str>,
) -> tms_dashboard::config::SinkConfig {
    tms_dashboard::config::SinkConfig {
        name: name.into(),
        kind: kind.into(),
        url: url.map(str::to_owned),
        secret_env: secret_env.map(str::to_owned),
        address: address.map(str::to_owned),
        types: Vec::new(),
    }
}

/// Debian's rsyslogd in the foreground with its own configuration: an
/// `imtcp` input on a free loopback port, every message to one file.
struct Rsyslog {
    child: Child,
    port: u16,
    file: PathBuf,
}

impl Rsyslog {
    async fn start(dir: &Path) -> Rsyslog {
        let rsyslogd = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("rsyslogd is missing: run ./scripts/test.sh (apt-get install rsyslog)");
        let port = free_port();
        let work = dir.join("rsyslog");
        std::fs::create_dir_all(&work).unwrap();
        let file = work.join("events.log");
        let conf = work.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\" maxMessageSize=\"256k\")\n\
                 module(load=\"imtcp\")\n\
                 input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\" ruleset=\"tms\")\n\
                 template(name=\"tms\" type=\"string\" string=\"%structured-data% %msg%\\n\")\n\
                 ruleset(name=\"tms\") {{ action(type=\"omfile\" file=\"{file}\" template=\"tms\") }}\n",
                work = work.display(),
                file = file.display(),
            ),
        )
        .unwrap();
        let child = Command::new(rsyslogd)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(work.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd");
        wait_until(10, "rsyslogd listens", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        Rsyslog { child, port, file }
    }

    /// `(seq in the structured data, the event)` of each line written.
    fn received(&self) -> Vec<(i64, Value)> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let (sd, msg) = line.split_once("] ")?;
                let seq = sd.split("seq=\"").nth(1)?.split('"').next()?.parse().ok()?;
                Some((seq, serde_json::from_str(msg.trim()).ok()?))
            })
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn rsyslog_receives_every_event_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path()).await;
    let address = format!("127.0.0.1:{}", rsyslog.port);
    let app = TestApp::spawn_with(|c| {
        c.sinks = vec![sink_config("siem", "syslog", None, None, Some(&address))];
    })
    .await;
    let admin = app.admin().await;
    make_events(&admin, 20).await;
    let events = all_events(&admin).await;
    let n = events.len();
    wait_until(20, "rsyslog wrote every event", || async {
        rsyslog.received().len() >= n
    })
    .await;
    let received = rsyslog.received();
    let seqs: Vec<i64> = received.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=n as i64).collect::<Vec<_>>(), "no gap, in order");
    for ((seq, event), original) in received.iter().zip(&events) {
        assert_eq!(event["seq"], json!(seq));
        assert_eq!(event, original);
    }
    let received: Vec<Value> = received.into_iter().map(|(_, e)| e).collect();
    assert_chain(&received);
    wait_until(10, "the sink's position is stored", || async {
        sink_status(&admin, "siem").await["delivered_seq"] == json!(n)
    })
    .await;
}

#[tokio::test]
async fn a_sink_of_some_types_skips_the_others_and_counts_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), SECRET).await;
    std::env::set_var("TMS_TEST_TYPES_SECRET", SECRET);
    let url = receiver.url();
    let app = TestApp::spawn_with(|c| {
        let mut sink = sink_config(
            "jobs",
            "webhook",
            Some(&url),
            Some("TMS_TEST_TYPES_SECRET"),
            None,
        );
        sink.types = vec!["job.*".into()];
        c.sinks = vec![sink];
    })
    .await;
    let admin = app.admin().await;
    make_events(&admin, 3).await;
    admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["C2001"])))
        .await
        .expect(201);
    make_events(&admin, 2).await;
    let events = all_events(&admin).await;
    let jobs: Vec<i64> = events
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("job."))
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(jobs.len(), 2);
    wait_until(20, "the job events arrive", || async {
        receiver.seqs().len() >= 2
    })
    .await;
    assert_eq!(receiver.seqs(), jobs);
    wait_until(10, "the sink moves past the other types", || async {
        let s = sink_status(&admin, "jobs").await;
        s["delivered_seq"] == json!(events.len()) && s["pending"] == 0
    })
    .await;
}

#[tokio::test]
async fn an_instance_killed_mid_delivery_repeats_at_most_the_event_in_flight() {
    let store = TestStore::new().await;
    // 10 ms a delivery: the kill lands with one in flight.
    let mut receiver = Receiver::start_on(store.dir(), free_port(), SECRET, "0.01").await;
    let config = config_file(
        store.dir(),
        &webhook_sink("audit", &receiver.url(), "HOOK_SECRET"),
    );
    let env = [
        ("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("TMS_CONFIG", config.to_str().unwrap()),
        ("HOOK_SECRET", SECRET),
        ("TMS_SINK_MAX_BACKOFF", "200ms"),
    ];
    let port = free_port();
    // Make a backlog while the receiver is away, then let it drain and kill
    // the instance in the middle of it.
    receiver.stop();
    let mut first = ServerProcess::start(&store, port, "first.log", &env).await;
    let admin = first.admin().await;
    make_events(&admin, 150).await;
    let n = all_events(&admin).await.len() as i64;
    receiver.restart().await;
    wait_until(30, "delivery is under way", || async {
        receiver.seqs().len() >= 20
    })
    .await;
    first.child.kill().expect("SIGKILL");
    let _ = first.child.wait();
    let at_kill = receiver.seqs().len();
    assert!(
        (at_kill as i64) < n,
        "the kill came too late to test anything"
    );

    let second = ServerProcess::start(&store, port, "second.log", &env).await;
    wait_until(40, "the next instance delivers the rest", || async {
        receiver.seqs().iter().collect::<HashSet<_>>().len() as i64 >= n
    })
    .await;
    let seqs = receiver.seqs();
    let distinct: HashSet<i64> = seqs.iter().copied().collect();
    assert_eq!(distinct, (1..=n).collect::<HashSet<_>>(), "nothing lost");
    let repeated = seqs.len() - distinct.len();
    assert!(repeated <= 1, "{repeated} events repeated: {seqs:?}");
    // In order, apart from the one repeat right after the restart.
    let mut sorted = seqs.clone();
    sorted.dedup();
    assert!(
        sorted.windows(2).all(|w| w[0] < w[1]),
        "out of order: {seqs:?}"
    );
    drop(second);
}

#[tokio::test]
async fn two_instances_sharing_a_store_deliver_each_event_once() {
    // On PostgreSQL as deployed behind a load balancer; on SQLite two
    // instances on one file, each with its own writer.
    let store = std::sync::Arc::new(TestStore::new().await);
    let receiver = Receiver::start(store.dir(), SECRET).await;
    std::env::set_var("TMS_TEST_SHARED_SECRET", SECRET);
    let url = receiver.url();
    let configure = |c: &mut tms_dashboard::config::Config| {
        c.sinks = vec![sink_config(
            "shared",
            "webhook",
            Some(&url),
            Some("TMS_TEST_SHARED_SECRET"),
            None,
        )];
    };
    let a = TestApp::spawn_on(store.clone(), configure).await;
    let b = TestApp::spawn_on(store.clone(), configure).await;
    let (admin_a, admin_b) = (a.admin().await, b.admin().await);
    let (ra, rb) = tokio::join!(make_events(&admin_a, 25), make_events(&admin_b, 25));
    let _ = (ra, rb);
    let events = all_events(&admin_a).await;
    assert_chain(&events);
    let n = events.len() as i64;
    wait_until(30, "every event arrives", || async {
        receiver.seqs().len() as i64 >= n
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.seqs(),
        (1..=n).collect::<Vec<_>>(),
        "once each, in order"
    );
}

#[tokio::test]
async fn bad_sinks_stop_the_start_up_with_a_clear_error_but_an_unreachable_one_does_not() {
    let store = TestStore::new().await;
    for (sink, expected) in [
        (
            "[[sinks]]\nname = \"x\"\nkind = \"kafka\"\n",
            "sinks[0].kind: \"kafka\" is not a kind of sink",
        ),
        (
            "[[sinks]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"ftp://host/x\"\nsecret_env = \"S\"\n",
            "sinks[0].url: \"ftp://host/x\" is not an http(s) URL",
        ),
        (
            "[[sinks]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nsecret_env = \"TMS_TEST_UNSET_SECRET\"\n",
            "sinks[0].secret_env: environment variable TMS_TEST_UNSET_SECRET is not set",
        ),
        (
            "[[sinks]]\nname = \"x\"\nkind = \"syslog\"\naddress = \"no-port\"\n",
            "sinks[0].address: \"no-port\" is not host:port",
        ),
        (
            "[[sinks]]\nname = \"x\"\nkind = \"syslog\"\naddress = \"h:1\"\ntypes = [\"jobs.*\"]\n",
            "sinks[0].types:",
        ),
    ] {
        let config = config_file(store.dir(), sink);
        let out = Command::new(env!("CARGO_BIN_EXE_tms-dashboard"))
            .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &store.url])
            .env("TMS_CONFIG", &config)
            .env_remove("TMS_TEST_UNSET_SECRET")
            .current_dir(store.dir())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sink}: {stderr}");
        assert!(stderr.contains(expected), "{sink}: {stderr}");
    }

    // Nothing listens there: the console starts, and the sink says why it waits.
    let address = format!("127.0.0.1:{}", free_port());
    let app = TestApp::spawn_with(|c| {
        c.sink_max_backoff = Duration::from_millis(100);
        c.sinks = vec![sink_config("down", "syslog", None, None, Some(&address))];
    })
    .await;
    let admin = app.admin().await;
    wait_until(20, "the sink reports the unreachable address", || async {
        let s = sink_status(&admin, "down").await;
        s["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(&address))
            && s["pending"].as_i64() > Some(0)
    })
    .await;
}
