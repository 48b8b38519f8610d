//! The benchmark: Set Action throughput and latency, and audit page latency,
//! on SQLite and PostgreSQL, against the sandbox cluster running as its own
//! process, with the raw SQLite one-commit-per-write rate measured in the same
//! run as the baseline. Prints a markdown table and writes JSON.
//!
//! `cargo bench --bench tms -- [--seconds N] [--clients N] [--postgres-url URL] [--skip-postgres]`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_tms-dashboard");
const TOKEN_ENV: &str = "TMS_BENCH_CLUSTER_TOKEN";
const ADMIN_PASSWORD: &str = "bench-admin-password";

struct Options {
    seconds: u64,
    clients: usize,
    postgres_url: String,
    skip_postgres: bool,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 10,
        clients: 16,
        postgres_url: std::env::var("TMS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        skip_postgres: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                o.seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--seconds N")
            }
            "--clients" => {
                o.clients = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--clients N")
            }
            "--postgres-url" => o.postgres_url = args.next().expect("--postgres-url URL"),
            "--skip-postgres" => o.skip_postgres = true,
            "--bench" => {} // passed by cargo
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became ready");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

struct Load {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// `clients` tasks sending requests made by `make` for `seconds`.
async fn drive<F, Fut>(clients: usize, seconds: u64, make: F) -> Load
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (make, stop) = (make.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if make(client, n).await {
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        errors += 1;
                    }
                    n += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Load {
        per_second: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 50.0),
        p99_ms: percentile(&all, 99.0),
        errors,
    }
}

/// The machine's own limit: claim and finalise as two separate durable
/// commits (WAL, synchronous=FULL) per Set Action, no server in between.
async fn raw_sqlite_baseline(dir: &Path, clients: usize, seconds: u64) -> Load {
    let options =
        SqliteConnectOptions::from_str(&format!("sqlite://{}", dir.join("raw.db").display()))
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(clients as u32)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE jobs (id TEXT PRIMARY KEY, k TEXT UNIQUE, status TEXT, body TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    drive(clients, seconds, move |client, n| {
        let pool = pool.clone();
        async move {
            let id = format!("{client}-{n}");
            let claim = sqlx::query("INSERT INTO jobs (id, k, status) VALUES ($1, $1, 'pending')")
                .bind(&id)
                .execute(&pool)
                .await;
            let finalise =
                sqlx::query("UPDATE jobs SET status = 'succeeded', body = '{}' WHERE id = $1")
                    .bind(&id)
                    .execute(&pool)
                    .await;
            claim.is_ok() && finalise.is_ok()
        }
    })
    .await
}

struct Server {
    _process: Process,
    base: String,
    token: String,
}

async fn start_server(
    dir: &Path,
    name: &str,
    database_url: &str,
    sandbox_url: &str,
    http: &reqwest::Client,
) -> Server {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "sandbox = false\nduplicate_guard_window = \"10m\"\nmax_connections = 32\n\n\
             [[clusters]]\nname = \"bench\"\nlabel = \"Bench sandbox\"\nbase_url = \"{sandbox_url}\"\ntoken_env = \"{TOKEN_ENV}\"\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(BIN)
        .args([
            "--config",
            config.to_str().unwrap(),
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--database-url", database_url])
        .env(TOKEN_ENV, "sandbox-token")
        .env("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start the server");
    let base = format!("http://127.0.0.1:{port}");
    let process = Process(child);
    wait_ready(http, &format!("{base}/readyz")).await;
    let login: Value = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(login["csrf_token"].is_string(), "login failed: {login}");
    // Scripts use bearer tokens; create one with the CLI like an operator would.
    let out = Command::new(BIN)
        .args([
            "tokens",
            "create",
            "--user",
            "admin",
            "--name",
            "bench",
            "--database-url",
            database_url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    Server {
        _process: process,
        base,
        token,
    }
}

async fn set_action_load(
    server: &Server,
    http: &reqwest::Client,
    clients: usize,
    seconds: u64,
    tag: &str,
) -> Load {
    let (http, base, token, tag) = (
        http.clone(),
        server.base.clone(),
        server.token.clone(),
        tag.to_owned(),
    );
    drive(clients, seconds, move |client, n| {
        let (http, base, token, tag) = (http.clone(), base.clone(), token.clone(), tag.clone());
        async move {
            let body = json!({"cluster": "bench", "action": "Trans-Begin", "cids": [format!("{tag}-{client}-{n}")]});
            match http
                .post(format!("{base}/api/v1/actions"))
                .bearer_auth(&token)
                .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
                .json(&body)
                .send()
                .await
            {
                Ok(r) => r.status() == 201 && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await
}

/// Median and p95 of `n` sequential GETs, in milliseconds.
async fn get_latency(http: &reqwest::Client, url: &str, token: &str, n: usize) -> (f64, f64) {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = http.get(url).bearer_auth(token).send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        r.bytes().await.unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (percentile(&samples, 50.0), percentile(&samples, 95.0))
}

/// p50 of a direct call to the sandbox, one client: what the console adds is
/// measured against this.
async fn direct_sandbox_p50(http: &reqwest::Client, sandbox: &str, n: usize) -> f64 {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let r = http
            .post(format!("{sandbox}/api/v1/customers/actions"))
            .bearer_auth("sandbox-token")
            .header(
                "Idempotency-Key",
                format!("direct-{i}-{}", uuid::Uuid::now_v7()),
            )
            .json(&json!({"action": "Trans-Begin", "action_code": 1, "cids": [format!("D{i}")]}))
            .send()
            .await
            .unwrap();
        r.bytes().await.unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    percentile(&samples, 50.0)
}

struct Row {
    figure: String,
    value: f64,
    unit: &'static str,
    note: String,
}

#[tokio::main]
async fn main() {
    let o = options();
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let mut rows: Vec<Row> = Vec::new();

    eprintln!(
        "baseline: raw SQLite, two durable commits per Set Action, {} clients, {} s",
        o.clients, o.seconds
    );
    let baseline = raw_sqlite_baseline(dir.path(), o.clients, o.seconds).await;
    rows.push(Row {
        figure: "raw SQLite claim+finalise (baseline)".into(),
        value: baseline.per_second,
        unit: "/s",
        note: "1.00× (the machine's one-commit-per-write limit)".into(),
    });

    let sandbox_port = free_port();
    let sandbox_url = format!("http://127.0.0.1:{sandbox_port}");
    let _sandbox = Process(
        Command::new(BIN)
            .args([
                "sandbox-cluster",
                "--bind",
                &format!("127.0.0.1:{sandbox_port}"),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the sandbox"),
    );
    wait_ready(&http, &format!("{sandbox_url}/api/v1/_stats")).await;
    let direct = direct_sandbox_p50(&http, &sandbox_url, 500).await;

    let mut stores: Vec<(String, String)> = vec![(
        "SQLite".into(),
        format!("sqlite://{}", dir.path().join("tms.db").display()),
    )];
    let mut pg_database = None;
    if !o.skip_postgres {
        let name = format!("tms_bench_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&o.postgres_url)
            .await
            .expect("PostgreSQL for the benchmark");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = reqwest::Url::parse(&o.postgres_url).unwrap();
        url.set_path(&format!("/{name}"));
        stores.push(("PostgreSQL".into(), url.to_string()));
        pg_database = Some((conn, name));
    }

    for (label, url) in &stores {
        eprintln!(
            "{label}: Set Action throughput, {} clients, {} s",
            o.clients, o.seconds
        );
        let server =
            start_server(dir.path(), &label.to_lowercase(), url, &sandbox_url, &http).await;
        let load = set_action_load(&server, &http, o.clients, o.seconds, label).await;
        rows.push(Row {
            figure: format!("{label}: Set Action, {} clients, 0 ms cluster", o.clients),
            value: load.per_second,
            unit: "/s",
            note: format!(
                "{:.2}× baseline; p50 {:.1} ms, p99 {:.1} ms; {} errors",
                load.per_second / baseline.per_second,
                load.p50_ms,
                load.p99_ms,
                load.errors
            ),
        });
        eprintln!("{label}: one client latency");
        let single =
            set_action_load(&server, &http, 1, 3.min(o.seconds), &format!("{label}-1")).await;
        rows.push(Row {
            figure: format!("{label}: Set Action p50, 1 client"),
            value: single.p50_ms,
            unit: "ms",
            note: format!(
                "direct sandbox call p50 {:.2} ms: {:.2} ms added",
                direct,
                single.p50_ms - direct
            ),
        });
        let jobs: Value = http
            .get(format!("{}/api/v1/jobs?limit=1", server.base))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let some_cid = jobs["jobs"][0]["cids"][0]
            .as_str()
            .unwrap_or("none")
            .to_owned();
        for (what, query) in [
            ("audit first page", "limit=50".to_owned()),
            (
                "audit user+action filter",
                "user=admin&action=Trans-Begin&limit=50".to_owned(),
            ),
            ("audit CID search", format!("cid={some_cid}")),
            ("audit status filter", "status=failed&limit=50".to_owned()),
        ] {
            let (p50, p95) = get_latency(
                &http,
                &format!("{}/api/v1/jobs?{query}", server.base),
                &server.token,
                200,
            )
            .await;
            rows.push(Row {
                figure: format!("{label}: {what}"),
                value: p50,
                unit: "ms",
                note: format!(
                    "median of 200; p95 {p95:.2} ms; store of ~{:.0} jobs",
                    load.per_second * o.seconds as f64
                ),
            });
        }
    }
    if let Some((mut conn, name)) = pg_database {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }

    println!("\n| figure | value | notes |\n|---|---:|---|");
    for r in &rows {
        println!("| {} | {:.2} {} | {} |", r.figure, r.value, r.unit, r.note);
    }
    let out: PathBuf = [env!("CARGO_MANIFEST_DIR"), "target", "bench"]
        .iter()
        .collect();
    std::fs::create_dir_all(&out).unwrap();
    let json: Vec<Value> = rows
        .iter()
        .map(|r| json!({"figure": r.figure, "value": r.value, "unit": r.unit, "note": r.note}))
        .collect();
    let file = out.join("results.json");
    std::fs::write(
        &file,
        serde_json::to_string_pretty(
            &json!({"clients": o.clients, "seconds": o.seconds, "rows": json}),
        )
        .unwrap(),
    )
    .unwrap();
    eprintln!("\nwrote {}", file.display());
}
