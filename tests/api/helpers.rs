//! Runs the real application — in-process on port 0, or as the real binary —
//! each with its own SQLite file, and talks to it over plain HTTP.

use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};
use tms_dashboard::app::App;
use tms_dashboard::config::Config;

pub use crate::store::TestStore;

pub const ADMIN_PASSWORD: &str = "admin-pass-123";

/// A fresh, unique idempotency key.
pub fn new_key() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The body of `POST /api/v1/actions` on the sandbox cluster.
pub fn action_body(action: &str, cids: Value) -> Value {
    json!({"cluster": "sandbox", "action": action, "cids": cids})
}

/// The password `create_user` gives a user.
pub fn password_of(username: &str) -> String {
    format!("{username}-secret-pw-0123")
}

/// Percent-encodes a query parameter value.
pub fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The list in a list answer: `{"<member>": [...]}` or a bare array.
pub fn list_of(body: &Value, member: &str) -> Vec<Value> {
    body.as_array()
        .or_else(|| body[member].as_array())
        .unwrap_or_else(|| panic!("no {member} list in {body}"))
        .clone()
}

/// Asserts that `job` carries every field of SPEC §4 with the right types.
pub fn assert_job(job: &Value) {
    let id = job["job_id"]
        .as_str()
        .unwrap_or_else(|| panic!("job_id missing: {job}"));
    let uuid =
        uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("job_id {id} is not a UUID: {e}"));
    assert_eq!(uuid.get_version_num(), 7, "job_id {id} is not a UUIDv7");
    for field in ["user", "cluster", "action", "status", "created_at"] {
        assert!(job[field].is_string(), "job.{field} is not a string: {job}");
    }
    assert!(job["action_code"].is_i64(), "job.action_code: {job}");
    let cids = job["cids"]
        .as_array()
        .unwrap_or_else(|| panic!("job.cids: {job}"));
    assert!(cids.iter().all(Value::is_string), "job.cids: {job}");
    assert_eq!(
        job["cid_count"].as_u64(),
        Some(cids.len() as u64),
        "job.cid_count: {job}"
    );
    for field in [
        "upstream_status",
        "response_summary",
        "error",
        "finished_at",
        "duration_ms",
        "duplicate_of",
    ] {
        assert!(job.get(field).is_some(), "job.{field} is missing: {job}");
    }
    for field in ["created_at", "finished_at"] {
        if let Some(time) = job[field].as_str() {
            chrono::DateTime::parse_from_rfc3339(time)
                .unwrap_or_else(|e| panic!("job.{field} {time} is not RFC 3339: {e}"));
        }
    }
    assert!(
        job["upstream_status"].is_null() || job["upstream_status"].is_u64(),
        "{job}"
    );
    assert!(
        job["duration_ms"].is_null() || job["duration_ms"].is_u64(),
        "{job}"
    );
    assert!(job["error"].is_null() || job["error"].is_string(), "{job}");
    assert!(
        job["response_summary"].is_null() || job["response_summary"].is_string(),
        "{job}"
    );
    assert!(
        job["response_summary"].as_str().map_or(0, str::len) <= 4096,
        "{job}"
    );
}

/// A whole HTTP answer, read eagerly so that assertions can look at it twice.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .expect("Failed to read the body")
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("non-ASCII header").to_owned())
    }

    /// True when the answer carries `Idempotent-Replayed: true`.
    pub fn replayed(&self) -> bool {
        self.header("idempotent-replayed").as_deref() == Some("true")
    }

    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        self.assert_status(status).json()
    }

    /// Asserts an RFC 9457 problem document with this status and `code`.
    pub fn expect_problem(&self, status: u16, code: &str) -> Value {
        self.assert_status(status);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/problem+json"),
            "content type {content_type:?} is not application/problem+json; body: {}",
            self.text()
        );
        let problem = self.json();
        assert_eq!(problem["code"], code, "problem code: {problem}");
        assert_eq!(problem["status"], status, "problem status: {problem}");
        for field in ["type", "title", "detail"] {
            let text = problem[field].as_str().unwrap_or_default();
            assert!(
                !text.is_empty(),
                "problem.{field} missing or empty: {problem}"
            );
        }
        problem
    }
}

/// Sends a request built with `Session::request` and reads the whole answer.
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    Reply::read(request.send().await.expect("HTTP request failed")).await
}

/// Where a server listens, and the client that talks to it.
#[derive(Clone)]
pub struct Endpoint {
    pub address: String,
    client: reqwest::Client,
}

impl Endpoint {
    pub fn new(address: String) -> Endpoint {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("Failed to build the HTTP client");
        Endpoint { address, client }
    }

    pub fn anonymous(&self) -> Session {
        self.session(String::new(), Credential::None, None)
    }

    pub fn bearer(&self, token: &str) -> Session {
        self.session(String::new(), Credential::Bearer(token.to_owned()), None)
    }

    fn session(&self, username: String, credential: Credential, csrf: Option<String>) -> Session {
        Session {
            endpoint: self.clone(),
            username,
            csrf_token: csrf,
            credential,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.anonymous().get(path).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.anonymous().post_json(path, body).await
    }

    pub async fn try_login(&self, username: &str, password: &str) -> Reply {
        let body = json!({"username": username, "password": password});
        self.post_json("/api/v1/session", &body).await
    }

    /// Logs in and keeps the session cookie and the CSRF token.
    pub async fn login(&self, username: &str, password: &str) -> Session {
        let reply = self.try_login(username, password).await;
        let body = reply.expect(200);
        let cookie = reply
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect::<Vec<_>>()
            .join("; ");
        assert!(!cookie.is_empty(), "login set no cookie");
        let csrf = body["csrf_token"].as_str().expect("csrf_token").to_owned();
        self.session(username.to_owned(), Credential::Cookie(cookie), Some(csrf))
    }

    pub async fn admin(&self) -> Session {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates a user with `role` (as admin) and logs them in.
    pub async fn create_user(&self, role: &str) -> Session {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let username = format!("{role}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let body = json!({"username": username, "password": password_of(&username), "role": role});
        self.admin()
            .await
            .post_json("/api/v1/users", &body)
            .await
            .expect(201);
        self.login(&username, &password_of(&username)).await
    }

    /// The sandbox cluster's `requests_total`.
    pub async fn sandbox_requests(&self) -> u64 {
        let stats = self.get("/sandbox/api/v1/_stats").await.expect(200);
        stats["requests_total"].as_u64().expect("requests_total")
    }
}

#[derive(Clone)]
enum Credential {
    None,
    Cookie(String),
    Bearer(String),
}

/// A client as one user: cookie + CSRF token, a bearer token, or nobody.
#[derive(Clone)]
pub struct Session {
    pub endpoint: Endpoint,
    pub username: String,
    pub csrf_token: Option<String>,
    credential: Credential,
}

impl Session {
    /// The same session sent to another instance (behind a load balancer).
    pub fn via(&self, endpoint: &Endpoint) -> Session {
        Session {
            endpoint: endpoint.clone(),
            ..self.clone()
        }
    }

    /// The same session, but its unsafe requests lack `X-CSRF-Token`.
    pub fn without_csrf(&self) -> Session {
        Session {
            csrf_token: None,
            ..self.clone()
        }
    }

    /// A request carrying this session's credentials (and CSRF token when unsafe).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let unsafe_method = !matches!(method, Method::GET | Method::HEAD);
        let mut request = self
            .endpoint
            .client
            .request(method, format!("{}{path}", self.endpoint.address));
        request = match &self.credential {
            Credential::None => request,
            Credential::Cookie(cookie) => request.header(COOKIE, cookie),
            Credential::Bearer(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
        };
        match &self.csrf_token {
            Some(csrf) if unsafe_method => request.header("X-CSRF-Token", csrf),
            _ => request,
        }
    }

    fn with_json(request: reqwest::RequestBuilder, body: &Value) -> reqwest::RequestBuilder {
        request
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).expect("JSON"))
    }

    pub async fn get(&self, path: &str) -> Reply {
        send(self.request(Method::GET, path)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        send(Self::with_json(self.request(Method::POST, path), body)).await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Reply {
        send(Self::with_json(self.request(Method::PATCH, path), body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        send(self.request(Method::DELETE, path)).await
    }

    /// `POST /api/v1/actions` under `Idempotency-Key: key`.
    pub async fn set_action(&self, key: &str, body: &Value) -> Reply {
        let request = self
            .request(Method::POST, "/api/v1/actions")
            .header("Idempotency-Key", key);
        send(Self::with_json(request, body)).await
    }

    /// The `jobs` of `GET /api/v1/jobs?{query}`.
    pub async fn jobs(&self, query: &str) -> Vec<Value> {
        let page = self.get(&format!("/api/v1/jobs?{query}")).await.expect(200);
        page["jobs"].as_array().expect("jobs array").clone()
    }

    /// Polls `GET /api/v1/jobs/{job_id}` (up to 15 s) until `done` holds for
    /// the job, and returns it; `context` is shown if it never does.
    pub async fn wait_for_job(
        &self,
        job_id: &str,
        done: impl Fn(&Value) -> bool,
        context: impl Fn() -> String,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let job = self
                .get(&format!("/api/v1/jobs/{job_id}"))
                .await
                .expect(200)["job"]
                .clone();
            if done(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "the job never got there: {job}\n{}",
                context()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until a job of this session's view is `pending`, and returns it.
    pub async fn wait_for_pending_job(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(job) = self.jobs("status=pending").await.into_iter().next() {
                return job;
            }
            assert!(Instant::now() < deadline, "no job became pending");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Creates an API token; returns `(id, token)`.
    pub async fn create_token(&self, name: &str) -> (String, String) {
        let created = self
            .post_json("/api/v1/tokens", &json!({"name": name}))
            .await
            .expect(201);
        let id = match &created["id"] {
            Value::String(id) => id.clone(),
            other => other.to_string(),
        };
        let token = created["token"].as_str().expect("token").to_owned();
        (id, token)
    }
}

/// The application running in this process, on a store of its own or one
/// it shares with another instance.
pub struct TestApp {
    endpoint: Endpoint,
    server: tokio::task::JoinHandle<()>,
    /// Kept so the store lives (and is dropped) with the app.
    _store: Arc<TestStore>,
}

impl Deref for TestApp {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// Spawns the app on a fresh store with the test defaults, then
    /// `configure` applied.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::spawn_on(Arc::new(TestStore::new().await), configure).await
    }

    /// Spawns another instance on `store`, as behind a load balancer.
    // Field by field: `Config` may gain private fields, which forbid `..Default::default()`.
    #[allow(clippy::field_reassign_with_default)]
    pub async fn spawn_on(store: Arc<TestStore>, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = Config::default();
        config.bind = "127.0.0.1:0".into();
        config.database_url = store.url.clone();
        config.admin_password = Some(ADMIN_PASSWORD.into());
        config.upstream_timeout = Duration::from_secs(2);
        configure(&mut config);
        let app = App::build(config).await.expect("Failed to build the app");
        let port = app.port();
        let run = app.run_until_stopped();
        let server = tokio::spawn(async move {
            if let Err(e) = run.await {
                eprintln!("server stopped with an error: {e:#}");
            }
        });
        TestApp {
            endpoint: Endpoint::new(format!("http://127.0.0.1:{port}")),
            server,
            _store: store,
        }
    }
}

/// The simulated cluster on a port of its own, shared by several instances.
pub struct SandboxServer {
    pub base_url: String,
    endpoint: Endpoint,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SandboxServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl SandboxServer {
    pub async fn start() -> SandboxServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("local_addr"));
        let router =
            tms_dashboard::sandbox::router(tms_dashboard::sandbox::SandboxOptions::default());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        SandboxServer {
            endpoint: Endpoint::new(base_url.clone()),
            base_url,
            server,
        }
    }

    /// Its `_stats`: requests, distinct keys, the most requests in flight at once.
    pub async fn stats(&self) -> Value {
        self.endpoint.get("/api/v1/_stats").await.expect(200)
    }

    /// Authorised action requests it received.
    pub async fn requests(&self) -> u64 {
        let stats = self.endpoint.get("/api/v1/_stats").await.expect(200);
        stats["requests_total"].as_u64().expect("requests_total")
    }

    /// Configures an instance to use this sandbox as its only cluster,
    /// `shared`, whose token the user types.
    pub fn configure(&self, config: &mut Config) {
        config.sandbox = false;
        config.clusters = vec![tms_dashboard::config::ClusterConfig {
            name: "shared".into(),
            label: Some("Shared sandbox".into()),
            base_url: self.base_url.clone(),
            token_env: None,
            max_in_flight: None,
            max_per_second: None,
            approval_required: None,
        }];
    }
}

/// Where the browser tests find Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The test OpenID provider's folder; `npm ci` there installs its packages.
pub fn oidc_provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

/// What a test drives besides the application.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Chromium through chromedriver (`pages::`, and every `oidc::` test).
    Browser,
    /// That and the test OpenID provider under Node.js (`oidc::` tests that sign in).
    BrowserAndProvider,
}

/// What to run when `require` fails: the same in every such failure.
pub const INSTALL_HINT: &str = "./scripts/test.sh installs them; or as root: \
    apt-get install chromium chromium-driver nodejs npm && npm ci --prefix tests/oidc-provider";

/// Fails the test at once, before anything starts, when a program or package
/// it needs is missing: these tests are never skipped, and without this a
/// machine lacking them ends a run in scattered panics from deep inside each
/// test. The message is one sentence naming everything the browser and single
/// sign-on tests miss on this machine, so every test that fails for it says
/// the same thing, and the command that installs it all.
pub fn require(needs: Needs) {
    let missing = missing_tools();
    let fails = missing
        .iter()
        .any(|(_, part)| *part == Needs::Browser || needs == Needs::BrowserAndProvider);
    if fails {
        let names: Vec<&str> = missing.iter().map(|(name, _)| name.as_str()).collect();
        let message = format!(
            "Missing for the browser and single sign-on tests: {}. {INSTALL_HINT}",
            names.join(", ")
        );
        eprintln!("{message}");
        // Not `panic!`: with RUST_BACKTRACE set, each test would print a
        // backtrace of test internals under the one line that matters.
        // Unwinding without the panic hook fails the test all the same.
        std::panic::resume_unwind(Box::new(message));
    }
}

/// Each missing program or package, and what needs it.
fn missing_tools() -> Vec<(String, Needs)> {
    let on_path = |program: &str| {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(dir.join(program))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        })
    };
    let mut missing = Vec::new();
    if !std::path::Path::new(CHROMIUM).exists() {
        missing.push((format!("chromium ({CHROMIUM})"), Needs::Browser));
    }
    if !on_path("chromedriver") {
        missing.push(("chromedriver (not on PATH)".to_owned(), Needs::Browser));
    }
    if !on_path("node") {
        missing.push(("node (not on PATH)".to_owned(), Needs::BrowserAndProvider));
    }
    let packages = oidc_provider_dir().join("node_modules/oidc-provider");
    if !packages.exists() {
        if !on_path("npm") {
            missing.push(("npm (not on PATH)".to_owned(), Needs::BrowserAndProvider));
        }
        missing.push((
            "the test OpenID provider's packages (tests/oidc-provider/node_modules)".to_owned(),
            Needs::BrowserAndProvider,
        ));
    }
    missing
}

/// A free TCP port on the loopback interface (free when this returns).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local_addr").port()
}

/// The real `tms-dashboard serve` binary, its stdout and stderr in one log file.
pub struct ServerProcess {
    endpoint: Endpoint,
    pub child: Child,
    pub log_path: PathBuf,
}

impl Deref for ServerProcess {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl ServerProcess {
    /// Starts `serve` on `db` and `port` with the test environment, `env`
    /// applied on top (`TMS_ADMIN_PASSWORD` only if `env` gives it), and
    /// waits until `/readyz` answers 200.
    pub async fn start(
        store: &TestStore,
        port: u16,
        log_name: &str,
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let binary = Path::new(env!("CARGO_BIN_EXE_tms-dashboard"));
        ServerProcess::start_binary(binary, store, port, log_name, env).await
    }

    /// As `start`, with another build of the console (a previous release).
    pub async fn start_binary(
        binary: &Path,
        store: &TestStore,
        port: u16,
        log_name: &str,
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let dir = store.dir();
        let log_path = dir.join(log_name);
        let log = File::create(&log_path).expect("log file");
        let mut command = Command::new(binary);
        command
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &store.url])
            .current_dir(dir)
            .env_remove("TMS_ADMIN_PASSWORD")
            .env_remove("TMS_CONFIG")
            .env_remove("RUST_LOG")
            .env("TMS_UPSTREAM_TIMEOUT", "1s")
            .env("TMS_SWEEP_INTERVAL", "500ms")
            .env("TMS_LOG_FORMAT", "text")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log));
        let child = command.spawn().expect("Failed to start tms-dashboard");
        let mut server = ServerProcess {
            endpoint: Endpoint::new(format!("http://127.0.0.1:{port}")),
            child,
            log_path,
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let url = format!("{}/readyz", self.address);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("server exited early with {status}; log:\n{}", self.log());
            }
            if let Ok(response) = self.endpoint.client.get(&url).send().await {
                if response.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server never became ready; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (up to 15 s) for the exit code.
    pub async fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "server ignored SIGTERM; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
