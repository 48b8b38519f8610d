//! Reliability across a network: three instances in network namespaces of
//! their own, joined by veth pairs to a bridge, reaching PostgreSQL and the
//! cluster over that virtual network, behind Debian's nginx as the load
//! balancer. While Set Actions (retried by their clients under the same
//! key), a run of thousands of customers, approvals and a webhook sink run,
//! the harness kills an instance, partitions one from PostgreSQL and one
//! from the cluster, freezes one longer than the upstream timeout, and
//! drops a share of one's packets to PostgreSQL. A checker then proves from
//! the store, the cluster's record and the events received that nothing was
//! lost or done twice, and prints a line per fault.
//!
//! Needs root (network namespaces, iptables), `ip`, `iptables` and `nginx`.
//! `TMS_FAULTS_PROFILE=long` makes every fault longer and repeats the round.
//! The kernel here has no `netem` queueing discipline, so loss is made with
//! iptables' `statistic` match and there is no delay fault.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{new_key, ADMIN_PASSWORD};
use crate::store::{postgres_admin_url, Backend, TestStore};

const CLUSTER_TOKEN: &str = "lab-cluster-token";
/// `whsec_` and the base64 of 32 bytes.
const WEBHOOK_SECRET: &str = "whsec_bGFiLXdlYmhvb2stc2VjcmV0LTAxMjM0NTY3ODlhYmNkZWY=";
const INSTANCES: usize = 3;
const RUN_CIDS: usize = 3000;

/// Runs a command that must succeed.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command whose failure does not matter (clean-up).
fn try_run(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The virtual network: a bridge in this namespace (the host side, where
/// PostgreSQL, the cluster, the webhook receiver and nginx are reached) and
/// one namespace per instance, each with a veth pair to the bridge.
struct Network {
    octet: u32,
    bridge: String,
    namespaces: Vec<String>,
}

impl Network {
    fn create() -> Network {
        let octet = 20 + std::process::id() % 200;
        let bridge = format!("tmsf{octet}br");
        let namespaces: Vec<String> = (0..INSTANCES).map(|i| format!("tmsf{octet}-{i}")).collect();
        let network = Network {
            octet,
            bridge,
            namespaces,
        };
        network.remove();
        run("ip", &["link", "add", &network.bridge, "type", "bridge"]);
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", network.host_ip()),
                "dev",
                &network.bridge,
            ],
        );
        run("ip", &["link", "set", &network.bridge, "up"]);
        for (i, ns) in network.namespaces.iter().enumerate() {
            let host_end = format!("tmsf{octet}v{i}");
            run("ip", &["netns", "add", ns]);
            run(
                "ip",
                &[
                    "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", ns,
                ],
            );
            run(
                "ip",
                &["link", "set", &host_end, "master", &network.bridge, "up"],
            );
            let address = format!("{}/24", network.instance_ip(i));
            run("ip", &["-n", ns, "addr", "add", &address, "dev", "eth0"]);
            run("ip", &["-n", ns, "link", "set", "eth0", "up"]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        network
    }

    fn host_ip(&self) -> String {
        format!("10.231.{}.1", self.octet)
    }

    fn instance_ip(&self, i: usize) -> String {
        format!("10.231.{}.{}", self.octet, 11 + i)
    }

    fn iptables(&self, i: usize, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.namespaces[i], "iptables"];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// Drops every packet instance `i` sends to the host's `port`: its
    /// connections there hang, as across a real partition.
    fn partition(&self, i: usize, port: u16) {
        let port = port.to_string();
        let host = self.host_ip();
        self.iptables(
            i,
            &[
                "-A", "OUTPUT", "-p", "tcp", "-d", &host, "--dport", &port, "-j", "DROP",
            ],
        );
    }

    /// Drops a share of the packets instance `i` sends to the host's `port`.
    fn lose(&self, i: usize, port: u16, share: &str) {
        let port = port.to_string();
        let host = self.host_ip();
        self.iptables(
            i,
            &[
                "-A",
                "OUTPUT",
                "-p",
                "tcp",
                "-d",
                &host,
                "--dport",
                &port,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                share,
                "-j",
                "DROP",
            ],
        );
    }

    fn heal(&self, i: usize) {
        self.iptables(i, &["-F", "OUTPUT"]);
    }

    fn remove(&self) {
        for (i, ns) in self.namespaces.iter().enumerate() {
            try_run("ip", &["link", "del", &format!("tmsf{}v{i}", self.octet)]);
            try_run("ip", &["netns", "del", ns]);
        }
        try_run("ip", &["link", "del", &self.bridge]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A child process killed with its test.
struct Process {
    child: Child,
}

impl Process {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }
    fn signal(&self, name: &str) {
        run("kill", &[&format!("-{name}"), &self.pid()]);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        try_run("kill", &["-CONT", &self.pid()]);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Forwards connections from the bridge to the PostgreSQL server of the
/// tests, so the instances reach it over the virtual network.
async fn forward_postgres(host_ip: &str) -> u16 {
    let target = {
        let url = reqwest::Url::parse(&postgres_admin_url()).expect("the PostgreSQL URL");
        format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(5432)
        )
    };
    let listener = tokio::net::TcpListener::bind((host_ip, 0))
        .await
        .expect("bind the PostgreSQL forwarder");
    let port = listener.local_addr().expect("local_addr").port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

/// The simulated cluster, on the bridge, answering after `latency`.
async fn start_cluster(host_ip: &str) -> (u16, String) {
    let listener = tokio::net::TcpListener::bind((host_ip, 0))
        .await
        .expect("bind the cluster");
    let port = listener.local_addr().expect("local_addr").port();
    let router = tms_dashboard::sandbox::router(tms_dashboard::sandbox::SandboxOptions {
        token: CLUSTER_TOKEN.into(),
        latency: Duration::from_millis(150),
        fail_rate: 0.0,
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (port, format!("http://{host_ip}:{port}"))
}

/// Every event the webhook sink delivered: (seq, event_id), in arrival order.
type Received = Arc<Mutex<Vec<(i64, String)>>>;

async fn start_receiver(host_ip: &str) -> (String, Received) {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind((host_ip, 0))
        .await
        .expect("bind the receiver");
    let address: SocketAddr = listener.local_addr().expect("local_addr");
    let store = received.clone();
    let router = axum::Router::new().route(
        "/events",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                if let Ok(event) = serde_json::from_slice::<Value>(&body) {
                    let seq = event["seq"].as_i64().unwrap_or(-1);
                    let id = event["event_id"].as_str().unwrap_or_default().to_owned();
                    store.lock().expect("receiver").push((seq, id));
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{address}/events"), received)
}

/// One instance: its namespace, address, log and process.
struct Instance {
    index: usize,
    address: String,
    log: PathBuf,
    process: Option<Process>,
}

/// Dropped in field order: the processes first, then the network they
/// lived in, then the store.
struct Lab {
    dir: tempfile::TempDir,
    instances: Vec<Instance>,
    config: PathBuf,
    store_url: String,
    local_store_url: String,
    postgres_port: u16,
    cluster_port: u16,
    cluster: crate::helpers::Endpoint,
    nginx: Option<Process>,
    balancer: String,
    received: Received,
    network: Network,
    _store: TestStore,
}

impl Lab {
    async fn build() -> Lab {
        let network = Network::create();
        let host = network.host_ip();
        let store = TestStore::on(Backend::Postgres).await;
        let postgres_port = forward_postgres(&host).await;
        let store_url = {
            let mut url = reqwest::Url::parse(&store.url).expect("store URL");
            url.set_host(Some(&host)).expect("host");
            url.set_port(Some(postgres_port)).expect("port");
            url.to_string()
        };
        let (cluster_port, cluster_url) = start_cluster(&host).await;
        let (receiver_url, received) = start_receiver(&host).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("tms.toml");
        std::fs::write(
            &config,
            format!(
                r#"upstream_timeout = "2s"
sweep_interval = "1s"
sink_max_backoff = "1s"

[[clusters]]
name = "lab"
label = "Lab cluster"
base_url = "{cluster_url}"
token_env = "TMS_LAB_TOKEN"
max_in_flight = 4

[[actions]]
name = "Trans-Begin"
code = 1

[[actions]]
name = "Purge-Cache"
code = 6
approval_required = true

[[sinks]]
name = "lab-webhook"
kind = "webhook"
url = "{receiver_url}"
secret_env = "TMS_LAB_WEBHOOK_SECRET"
"#
            ),
        )
        .expect("config");
        let instances = (0..INSTANCES)
            .map(|index| Instance {
                index,
                address: format!("{}:8080", network.instance_ip(index)),
                log: dir.path().join(format!("instance-{index}.log")),
                process: None,
            })
            .collect();
        let mut lab = Lab {
            network,
            instances,
            config,
            store_url,
            local_store_url: store.url.clone(),
            postgres_port,
            cluster_port,
            cluster: crate::helpers::Endpoint::new(cluster_url),
            nginx: None,
            balancer: String::new(),
            received,
            dir,
            _store: store,
        };
        // One at a time: the first creates the admin account.
        for i in 0..INSTANCES {
            lab.start_instance(i).await;
        }
        lab.start_nginx().await;
        lab
    }

    async fn start_instance(&mut self, i: usize) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.instances[i].log)
            .expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.network.namespaces[i]])
            .arg(env!("CARGO_BIN_EXE_tms-dashboard"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .args(["--bind", &self.instances[i].address])
            .args(["--database-url", &self.store_url])
            .current_dir(self.dir.path())
            .env_remove("TMS_CONFIG")
            .env_remove("RUST_LOG")
            .env("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("TMS_LAB_TOKEN", CLUSTER_TOKEN)
            .env("TMS_LAB_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("TMS_LOG_FORMAT", "text")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start an instance");
        self.instances[i].process = Some(Process { child });
        let url = format!("http://{}/readyz", self.instances[i].address);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "instance {i} never became ready:\n{}",
                std::fs::read_to_string(&self.instances[i].log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn start_nginx(&mut self) {
        let dir = self.dir.path();
        std::fs::create_dir_all(dir.join("nginx-temp")).expect("nginx temp");
        let port = crate::helpers::free_port();
        let servers: String = self
            .instances
            .iter()
            .map(|i| {
                format!(
                    "        server {} max_fails=1 fail_timeout=2s;\n",
                    i.address
                )
            })
            .collect();
        let d = dir.display();
        let conf = format!(
            r#"user root;
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/nginx-access.log;
    client_body_temp_path {d}/nginx-temp/body;
    proxy_temp_path {d}/nginx-temp/proxy;
    fastcgi_temp_path {d}/nginx-temp/fastcgi;
    uwsgi_temp_path {d}/nginx-temp/uwsgi;
    scgi_temp_path {d}/nginx-temp/scgi;
    client_max_body_size 4m;
    upstream tms_dashboard {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://tms_dashboard;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_connect_timeout 1s;
            proxy_read_timeout 10s;
            # Retried on another instance only when the request cannot have
            # reached this one (nginx never re-sends a POST it sent):
            # the client's own retry, same key, does the rest.
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"#
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf");
        let child = Command::new("nginx")
            .args(["-e", &format!("{d}/nginx-error.log"), "-p"])
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (Debian's nginx package)");
        self.nginx = Some(Process { child });
        self.balancer = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(client.get(format!("{}/readyz", self.balancer)).send().await, Ok(r) if r.status() == 200)
        {
            assert!(
                Instant::now() < deadline,
                "nginx never answered: {}",
                std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn process(&self, i: usize) -> &Process {
        self.instances[i].process.as_ref().expect("running")
    }

    /// The real binary on the store, from this namespace.
    fn tms(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_tms-dashboard"))
            .args(args)
            .args(["--database-url", &self.local_store_url])
            .current_dir(self.dir.path())
            .env_remove("TMS_CONFIG")
            .output()
            .expect("tms-dashboard")
    }

    fn token(&self, user: &str) -> String {
        let out = self.tms(&["tokens", "create", "--user", user, "--name", "lab"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn logs(&self) -> String {
        self.instances
            .iter()
            .map(|i| {
                format!(
                    "--- instance {} ---\n{}",
                    i.index,
                    std::fs::read_to_string(&i.log).unwrap_or_default()
                )
            })
            .collect()
    }
}

/// A client of the balancer that retries under the same key until it gets
/// the console's own answer, as the product's page does.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// What one request ended as, from the client's side.
enum Answer {
    /// The console answered (a job, a run, an approval, or a problem).
    Console(u16, Value),
    /// No answer from the console after every try.
    GaveUp,
}

impl Client {
    fn new(base: &str, token: &str) -> Client {
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .expect("client"),
            base: base.to_owned(),
            token: token.to_owned(),
        }
    }

    /// POSTs `body` under `key` until the console answers with something
    /// other than "try again"; `retries` counts the extra tries.
    async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
        retries: &AtomicUsize,
    ) -> Answer {
        for attempt in 0..40 {
            if attempt > 0 {
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let mut request = self
                .http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(body);
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            let Ok(response) = request.send().await else {
                continue;
            };
            let status = response.status().as_u16();
            let from_console = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| {
                    t.starts_with("application/json") || t.starts_with("application/problem+json")
                });
            let Ok(bytes) = response.bytes().await else {
                continue;
            };
            if !from_console {
                continue; // nginx's own 502/504: no instance answered
            }
            let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            match answer["code"].as_str() {
                Some("request_in_progress" | "unavailable") => continue,
                _ => return Answer::Console(status, answer),
            }
        }
        Answer::GaveUp
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .ok()?;
        if response.status() != 200 {
            return None;
        }
        response.json().await.ok()
    }

    /// GETs until the console answers 200.
    async fn get_eventually(&self, path: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = self.get(path).await {
                return v;
            }
            assert!(Instant::now() < deadline, "GET {path} never answered");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Per fault window: what the clients saw.
#[derive(Default)]
struct Tally {
    acknowledged: AtomicUsize,
    retries: AtomicUsize,
    gave_up: AtomicUsize,
    refused: AtomicUsize,
}

struct Fault {
    name: String,
    tally: Tally,
}

/// What a Set Action client was told: job id and status.
type Acknowledged = Arc<Mutex<Vec<(String, String)>>>;

fn profile_is_long() -> bool {
    std::env::var("TMS_FAULTS_PROFILE").is_ok_and(|p| p == "long")
}

#[tokio::test]
async fn instances_behind_nginx_lose_and_double_nothing_under_partitions_pauses_kills_and_loss() {
    // Arrange: the lab, users and their tokens.
    let mut lab = Lab::build().await;
    let admin = Client::new(&lab.balancer, &lab.token("admin"));
    for user in ["olga", "piet"] {
        let created = admin
            .post(
                "/api/v1/users",
                None,
                &json!({"username": user, "role": "operator", "password": format!("{user}-password-1")}),
                &AtomicUsize::new(0),
            )
            .await;
        assert!(
            matches!(created, Answer::Console(201, _)),
            "creating {user}"
        );
    }
    let olga = Client::new(&lab.balancer, &lab.token("olga"));
    let piet = Client::new(&lab.balancer, &lab.token("piet"));

    let long = profile_is_long();
    let seconds = |short: u64| Duration::from_secs(if long { short * 3 } else { short });
    let rounds = if long { 3 } else { 1 };
    let mut plan: Vec<(String, usize)> = Vec::new();
    for round in 0..rounds {
        for (name, instance) in [
            ("instance killed (SIGKILL) and restarted", 0),
            ("instance partitioned from PostgreSQL", 1),
            ("instance frozen (SIGSTOP) past the upstream timeout", 2),
            ("30% of packets to PostgreSQL dropped", 0),
            ("instance partitioned from the cluster", 1),
        ] {
            plan.push((
                format!("{name} (instance {instance}, round {})", round + 1),
                instance,
            ));
        }
    }
    let faults: Arc<Vec<Fault>> = Arc::new(
        std::iter::once("no fault (warm-up)".to_owned())
            .chain(plan.iter().map(|(name, _)| name.clone()))
            .map(|name| Fault {
                name,
                tally: Tally::default(),
            })
            .collect(),
    );
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Acknowledged = Arc::default();

    // Set Actions from eight clients, each request a new key and customer.
    let mut clients = Vec::new();
    for c in 0..8 {
        let client = Client::new(&lab.balancer, &admin.token);
        let (faults, phase, stop, acknowledged) = (
            faults.clone(),
            phase.clone(),
            stop.clone(),
            acknowledged.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let tally = &faults[phase.load(Ordering::SeqCst)].tally;
                let body = json!({"cluster": "lab", "action": "Trans-Begin", "cids": [format!("N{c}X{i}")]});
                match client.post("/api/v1/actions", Some(&new_key()), &body, &tally.retries).await {
                    Answer::Console(status, answer) if answer["job"]["job_id"].is_string() => {
                        assert!(matches!(status, 201 | 207 | 502 | 504), "{status} {answer}");
                        tally.acknowledged.fetch_add(1, Ordering::Relaxed);
                        acknowledged.lock().expect("acks").push((
                            answer["job"]["job_id"].as_str().unwrap_or_default().to_owned(),
                            answer["job"]["status"].as_str().unwrap_or_default().to_owned(),
                        ));
                    }
                    Answer::Console(..) => {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Answer::GaveUp => {
                        tally.gave_up.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    // A run of thousands of customers, queued before the faults.
    let run_cids: Vec<String> = (0..RUN_CIDS).map(|i| format!("R{i}")).collect();
    let run = admin
        .post(
            "/api/v1/runs",
            Some(&new_key()),
            &json!({"cluster": "lab", "action": "Trans-Begin", "cids": run_cids.join(" "), "batch_size": 100}),
            &AtomicUsize::new(0),
        )
        .await;
    let Answer::Console(202, run) = run else {
        panic!("the run was not queued")
    };
    let run_id = run["run"]["run_id"].as_str().expect("run_id").to_owned();

    // Approvals: olga asks, piet approves, one per fault window.
    let approvals = Arc::new(Mutex::new(Vec::<String>::new()));

    // Act: the faults, one after another, with the load running throughout.
    tokio::time::sleep(seconds(2)).await;
    for (n, (_, instance)) in plan.iter().enumerate() {
        phase.store(n + 1, Ordering::SeqCst);
        let approval = {
            let body = json!({"cluster": "lab", "action": "Purge-Cache", "cids": [format!("A{n}")], "reason": "fault drill"});
            let (olga, piet, approvals) = (olga.clone(), piet.clone(), approvals.clone());
            tokio::spawn(async move {
                let retries = AtomicUsize::new(0);
                let Answer::Console(202, asked) = olga
                    .post("/api/v1/actions", Some(&new_key()), &body, &retries)
                    .await
                else {
                    return;
                };
                let id = asked["approval"]["approval_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                approvals.lock().expect("approvals").push(id.clone());
                // Two approvers' clicks at once, through the balancer.
                let path = format!("/api/v1/approvals/{id}/approve");
                let empty = json!({});
                let first = piet.post(&path, None, &empty, &retries);
                let second = piet.post(&path, None, &empty, &retries);
                let _ = tokio::join!(first, second);
            })
        };
        match n % 5 {
            0 => {
                lab.process(*instance).signal("KILL");
                tokio::time::sleep(seconds(2)).await;
                lab.instances[*instance].process = None;
                lab.start_instance(*instance).await;
            }
            1 => {
                lab.network.partition(*instance, lab.postgres_port);
                tokio::time::sleep(seconds(8)).await;
                lab.network.heal(*instance);
            }
            2 => {
                lab.process(*instance).signal("STOP");
                tokio::time::sleep(seconds(9)).await;
                lab.process(*instance).signal("CONT");
            }
            3 => {
                lab.network.lose(*instance, lab.postgres_port, "0.3");
                tokio::time::sleep(seconds(6)).await;
                lab.network.heal(*instance);
            }
            _ => {
                lab.network.partition(*instance, lab.cluster_port);
                tokio::time::sleep(seconds(6)).await;
                lab.network.heal(*instance);
            }
        }
        let _ = approval.await;
        tokio::time::sleep(seconds(2)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("a client");
    }

    // Assert: the sweep leaves nothing pending ...
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = admin
            .get_eventually("/api/v1/jobs?status=pending&limit=10")
            .await;
        if pending["jobs"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs still pending: {pending}\n{}",
            lab.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // ... the run ends, every customer once ...
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let run = admin
            .get_eventually(&format!("/api/v1/runs/{run_id}"))
            .await;
        if run["run"]["status"] == "finished" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not finish: {run}\n{}",
            lab.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let customers = {
        let response = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/runs/{run_id}/customers?format=csv",
                lab.balancer
            ))
            .bearer_auth(&admin.token)
            .send()
            .await
            .expect("run customers");
        response.text().await.expect("CSV")
    };
    let rows: Vec<&str> = customers.lines().skip(1).collect();
    let run_outcomes: HashMap<&str, usize> = rows
        .iter()
        .map(|row| row.split(',').next().unwrap_or_default())
        .fold(HashMap::new(), |mut seen, cid| {
            *seen.entry(cid).or_default() += 1;
            seen
        });
    assert_eq!(rows.len(), RUN_CIDS, "one outcome per customer of the run");
    assert!(
        run_outcomes.values().all(|n| *n == 1),
        "a customer with two outcomes"
    );
    assert!(run_cids
        .iter()
        .all(|c| run_outcomes.contains_key(c.as_str())));

    // ... every acknowledged job is stored as it was answered ...
    let export = {
        let response = reqwest::Client::new()
            .get(format!("{}/api/v1/jobs/export?format=ndjson", lab.balancer))
            .bearer_auth(&admin.token)
            .send()
            .await
            .expect("export");
        response.text().await.expect("NDJSON")
    };
    let stored: HashMap<String, Value> = export
        .lines()
        .map(|line| {
            let job: Value = serde_json::from_str(line).expect("a job");
            (job["job_id"].as_str().unwrap_or_default().to_owned(), job)
        })
        .collect();
    let acknowledged = acknowledged.lock().expect("acks").clone();
    for (job_id, status) in &acknowledged {
        let job = stored
            .get(job_id)
            .unwrap_or_else(|| panic!("acknowledged job {job_id} is not in the store"));
        assert_eq!(
            &job["status"].as_str().unwrap_or_default(),
            status,
            "job {job_id}"
        );
    }

    // ... the cluster got no job twice, none it was not sent, and none
    // after its console had called it interrupted ...
    let keys = lab.cluster.get("/api/v1/_keys").await.expect(200);
    let keys = keys["keys"].as_array().expect("keys").clone();
    let mut sent_twice = 0;
    for key in &keys {
        let job_id = key["key"].as_str().unwrap_or_default();
        let job = stored
            .get(job_id)
            .unwrap_or_else(|| panic!("the cluster got {job_id}, which is no job"));
        if key["requests"] != 1 {
            sent_twice += 1;
        }
        if job["error"] == "interrupted: outcome unknown, check the cluster" {
            let arrived = key["first_at"].as_str().unwrap_or_default();
            let given_up = job["finished_at"].as_str().unwrap_or_default();
            assert!(
                arrived <= given_up,
                "job {job_id} reached the cluster at {arrived}, after it was called interrupted at {given_up}"
            );
        }
    }
    assert_eq!(sent_twice, 0, "jobs sent to the cluster twice");
    for job in stored.values() {
        if matches!(job["status"].as_str(), Some("succeeded" | "partial")) {
            assert!(
                keys.iter().any(|k| k["key"] == job["job_id"]),
                "job {} succeeded without reaching the cluster",
                job["job_id"]
            );
        }
    }

    // ... each approval ran at most once ...
    let approvals = approvals.lock().expect("approvals").clone();
    let mut approved_jobs = 0;
    for id in &approvals {
        let runs_of_it = stored
            .values()
            .filter(|j| j["approval_id"] == id.as_str())
            .count();
        assert!(runs_of_it <= 1, "approval {id} ran {runs_of_it} times");
        approved_jobs += runs_of_it;
    }

    // ... and the webhook receiver has every event, the chain intact.
    let verified = lab.tms(&["events", "verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let head = {
        let out = lab.tms(&["events", "tail", "--after", "0"]);
        String::from_utf8_lossy(&out.stdout).lines().count() as i64
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (missing, redelivered) = loop {
        let received = lab.received.lock().expect("receiver").clone();
        let seqs: BTreeSet<i64> = received.iter().map(|(seq, _)| *seq).collect();
        let missing = (1..=head).filter(|s| !seqs.contains(s)).count();
        if missing == 0 || Instant::now() > deadline {
            break (missing, received.len() - seqs.len());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(missing, 0, "events the webhook never received, of {head}");

    // The report: a line per fault, then the totals.
    for fault in faults.iter() {
        let t = &fault.tally;
        eprintln!(
            "network faults: {}: {} acknowledged, {} retried under the same key, {} given up, {} refused",
            fault.name,
            t.acknowledged.load(Ordering::Relaxed),
            t.retries.load(Ordering::Relaxed),
            t.gave_up.load(Ordering::Relaxed),
            t.refused.load(Ordering::Relaxed),
        );
    }
    eprintln!(
        "network faults ({}): {} acknowledged jobs, all stored as answered; {} jobs reached the cluster, none twice, none after being called interrupted; \
         run of {RUN_CIDS} customers: {} outcomes, each once; {} approvals, {} ran, none twice; {head} events, 0 missing at the webhook, {redelivered} delivered again; 0 pending",
        if long { "long" } else { "short" },
        acknowledged.len(),
        keys.len(),
        rows.len(),
        approvals.len(),
        approved_jobs,
    );
}
