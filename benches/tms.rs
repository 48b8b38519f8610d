//! The benchmark: Set Action throughput and latency, and audit page latency,
//! on SQLite and PostgreSQL, against the sandbox cluster running as its own
//! process, with the raw SQLite one-commit-per-write rate measured in the same
//! run as the baseline. Prints a markdown table and writes JSON.
//!
//! The audit at scale: a legacy store of `--jobs` jobs (default 1,000,000,
//! with doubled clicks like the old dashboard's) is imported, scanned for
//! duplicates, exported and queried, each timed with its peak memory.
//!
//! The login storm (`--only logins`): 300 simultaneous logins, half with the
//! right password, half wrong or for names that do not exist, each an
//! Argon2id verification of ~19 MiB; the server's peak and settled memory and
//! the logins per second.
//!
//! Per-customer outcomes at scale (`--only customers`): a store of `--jobs`
//! jobs averaging 10 CIDs (10 customer rows per job), written with bulk SQL,
//! served by the release server: a customer's history (first page and a
//! 10,000-deep cursor page), a 500-CID job's customers, the store's size per
//! customer row, and Set Action throughput with and without the job's
//! customer rows, alternately.
//!
//! `cargo bench --bench tms -- [--seconds N] [--clients N] [--jobs N] [--postgres-url URL] [--skip-postgres] [--only PHASE]`

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Connection;

mod common;
mod wrk;
use common::{free_port, proc_status_mib, start_sandbox, wait_ready, Process, BIN};
const TOKEN_ENV: &str = "TMS_BENCH_CLUSTER_TOKEN";
const ADMIN_PASSWORD: &str = "bench-admin-password";
const SINK_SECRET_ENV: &str = "TMS_BENCH_SINK_SECRET";
const SINK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Options {
    seconds: u64,
    clients: usize,
    postgres_url: String,
    skip_postgres: bool,
    /// Jobs in the audit-at-scale phase (0 skips it).
    jobs: u64,
    /// Run only this phase: throughput, wrk, guards, events, slow, logins, audit or customers.
    only: Option<String>,
}

impl Options {
    fn runs(&self, phase: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == phase)
    }
}

fn options() -> Options {
    let mut o = Options {
        seconds: 10,
        clients: 16,
        postgres_url: std::env::var("TMS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        skip_postgres: false,
        jobs: 1_000_000,
        only: None,
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
            "--jobs" => o.jobs = args.next().and_then(|v| v.parse().ok()).expect("--jobs N"),
            "--only" => {
                o.only = Some(
                    args.next()
                        .expect("--only throughput|wrk|guards|events|slow|logins|audit|customers"),
                )
            }
            "--bench" => {} // passed by cargo
            other => panic!("unknown argument {other}"),
        }
    }
    o
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

/// A bearer token for `admin`, made with the CLI as an operator would.
fn admin_token(database_url: &str) -> String {
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
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The first CID of the first job a query lists, to search for.
async fn first_cid(http: &reqwest::Client, base: &str, token: &str, query: &str) -> String {
    let jobs: Value = http
        .get(format!("{base}/api/v1/jobs?{query}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jobs["jobs"][0]["cids"][0]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

struct Server {
    process: Process,
    base: String,
    token: String,
}

/// Where a benchmarked server sends its Set Actions: cluster `bench` answers
/// at once, cluster `slow` after a second.
struct Sandboxes {
    fast: String,
    slow: String,
    slow_pid: u32,
}

/// Starts the dashboard on `database_url`; `settings` are extra top-level
/// lines of its configuration file (the recent-duplicate guard is on with a
/// 10-minute window unless they set it).
async fn start_server(
    dir: &Path,
    name: &str,
    database_url: &str,
    sandboxes: &Sandboxes,
    settings: &str,
    http: &reqwest::Client,
) -> Server {
    let config = dir.join(format!("{name}.toml"));
    let Sandboxes { fast, slow, .. } = sandboxes;
    let guard = if settings.contains("duplicate_guard_window") {
        ""
    } else {
        "duplicate_guard_window = \"10m\"\n"
    };
    std::fs::write(
        &config,
        format!(
            "sandbox = false\n{guard}{settings}\n\
             [[clusters]]\nname = \"bench\"\nlabel = \"Bench sandbox\"\nbase_url = \"{fast}\"\ntoken_env = \"{TOKEN_ENV}\"\n\n\
             [[clusters]]\nname = \"slow\"\nlabel = \"Slow sandbox\"\nbase_url = \"{slow}\"\ntoken_env = \"{TOKEN_ENV}\"\n"
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
        .env(SINK_SECRET_ENV, SINK_SECRET)
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
    let token = admin_token(database_url);
    Server {
        process,
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
    let tag = tag.to_owned();
    set_action_load_with(server, http, clients, seconds, move |client, n| {
        vec![format!("{tag}-{client}-{n}")]
    })
    .await
}

/// Set Actions whose CIDs `cids(client, n)` chooses for the `n`th request
/// of each client.
async fn set_action_load_with(
    server: &Server,
    http: &reqwest::Client,
    clients: usize,
    seconds: u64,
    cids: impl Fn(usize, usize) -> Vec<String> + Send + Sync + 'static,
) -> Load {
    let (http, base, token) = (http.clone(), server.base.clone(), server.token.clone());
    let cids = Arc::new(cids);
    drive(clients, seconds, move |client, n| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let body = json!({"cluster": "bench", "action": "Trans-Begin", "cids": cids(client, n)});
        async move {
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

    let (_fast_sandbox, fast) = start_sandbox(&http, 0).await;
    let (_slow_sandbox, slow) = start_sandbox(&http, 1000).await;
    let sandboxes = Sandboxes {
        fast,
        slow,
        slow_pid: _slow_sandbox.0.id(),
    };
    let sandbox_url = sandboxes.fast.clone();
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

    for (label, url) in stores.iter().filter(|_| o.runs("throughput")) {
        eprintln!(
            "{label}: Set Action throughput, {} clients, {} s",
            o.clients, o.seconds
        );
        let server = start_server(
            dir.path(),
            &label.to_lowercase(),
            url,
            &sandboxes,
            "",
            &http,
        )
        .await;
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
        let some_cid = first_cid(&http, &server.base, &server.token, "limit=1").await;
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

    if o.runs("wrk") {
        wrk_phase(dir.path(), &sandboxes, &http, &o, &mut rows).await;
    }
    if o.runs("guards") {
        guard_rails_cost(
            dir.path(),
            &sandboxes,
            &http,
            &o,
            baseline.per_second,
            &mut rows,
        )
        .await;
    }
    if o.runs("events") {
        events_cost(
            dir.path(),
            &sandboxes,
            &http,
            &o,
            baseline.per_second,
            &mut rows,
        )
        .await;
    }
    if o.runs("slow") {
        slow_cluster(dir.path(), &sandboxes, &http, &mut rows).await;
    }
    if o.runs("logins") {
        login_storm(dir.path(), &sandboxes, &http, &mut rows).await;
    }

    if o.jobs > 0 && o.runs("audit") {
        audit_at_scale(dir.path(), o.jobs, &http, &mut rows).await;
    }
    if o.jobs > 0 && o.runs("customers") {
        customers_at_scale(dir.path(), &sandboxes, &http, &o, &mut rows).await;
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

/// Runs the CLI, polling its peak resident memory (VmHWM) while it runs.
/// Returns (seconds, peak MiB).
fn timed_cli(args: &[&str]) -> (f64, f64) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the CLI");
    let pid = child.id();
    let mut peak_mib: f64 = 0.0;
    loop {
        // NaN once the process is gone; `max` keeps the last reading then.
        peak_mib = peak_mib.max(proc_status_mib(pid, "VmHWM:"));
        if let Some(exit) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            // `audit duplicates` exits 1 when it finds duplicates: that is its answer.
            assert!(matches!(exit.code(), Some(0 | 1)), "{args:?} failed: {err}");
            return (started.elapsed().as_secs_f64(), peak_mib);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A legacy store of `n` jobs shaped like the old dashboard's: 5 users,
/// 3 clusters, the 6 actions, 1 to 3 CIDs, 90 days, ~8 % doubled clicks.
async fn write_legacy_store(path: &Path, n: u64) {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Off)
        .synchronous(SqliteSynchronous::Off);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL, \
         action_code INTEGER NOT NULL, action_name TEXT NOT NULL, cids TEXT NOT NULL, cid_count INTEGER NOT NULL DEFAULT 0, \
         cluster_url TEXT, request_payload TEXT, response_summary TEXT, status TEXT NOT NULL DEFAULT 'completed', \
         created_at TEXT NOT NULL)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let actions = [
        "Trans-Begin",
        "Trans-End",
        "Suspend",
        "Resume",
        "Reprocess",
        "Purge-Cache",
    ];
    let start = chrono::DateTime::parse_from_rfc3339("2025-03-01T00:00:00Z")
        .unwrap()
        .timestamp();
    let span = 90 * 86_400;
    let mut tx = conn.begin().await.unwrap();
    let mut written = 0u64;
    let mut i = 0u64;
    // A tiny deterministic generator: the same store every run.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    while written < n {
        let r = next();
        let user = format!("ops{}", r % 5 + 1);
        let action = (r >> 8) % 6;
        let count = (r >> 16) % 3 + 1;
        let cids: Vec<String> = (0..count)
            .map(|k| format!("{}", 10_000_000 + (next() % 90_000_000) + k))
            .collect();
        let at = start + (i as i64 * span / n as i64);
        let doubled = (r >> 24) % 100 < 8 && written + 1 < n;
        for copy in 0..if doubled { 2 } else { 1 } {
            let when = chrono::DateTime::from_timestamp(at + copy, 0)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string();
            let cids_json = serde_json::to_string(&cids).unwrap();
            sqlx::query(
                "INSERT INTO jobs (job_id, user_id, action_code, action_name, cids, cid_count, cluster_url, \
                 request_payload, response_summary, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&user)
            .bind(action as i64 + 1)
            .bind(actions[action as usize])
            .bind(&cids_json)
            .bind(count as i64)
            .bind(format!("http://tms-{}.internal:8443", ["eu-1", "us-2", "ap-1"][(r % 3) as usize]))
            .bind(format!("{{\"action\":\"{}\",\"cids\":{cids_json},\"token\":\"bench-secret\"}}", actions[action as usize]))
            .bind(format!("Successfully processed {count} customer(s)"))
            .bind(when)
            .execute(&mut *tx)
            .await
            .unwrap();
            written += 1;
        }
        i += 1;
        if written % 100_000 < 2 {
            eprint!("\r  writing the legacy store: {written} / {n}");
        }
    }
    tx.commit().await.unwrap();
    eprintln!();
}

async fn audit_at_scale(dir: &Path, n: u64, http: &reqwest::Client, rows: &mut Vec<Row>) {
    let legacy = dir.join("legacy.db");
    let store = format!("sqlite://{}", dir.join("scale.db").display());
    eprintln!("audit at scale: {n} jobs");
    write_legacy_store(&legacy, n).await;
    let (secs, mib) = timed_cli(&[
        "import",
        "legacy",
        legacy.to_str().unwrap(),
        "--database-url",
        &store,
    ]);
    rows.push(Row {
        figure: format!("import legacy, {n} jobs"),
        value: secs,
        unit: "s",
        note: format!("{:.0} jobs/s; peak {mib:.1} MiB", n as f64 / secs),
    });
    let (secs, mib) = timed_cli(&["audit", "duplicates", "--json", "--database-url", &store]);
    rows.push(Row {
        figure: format!("audit duplicates (2 s window), {n} jobs"),
        value: secs,
        unit: "s",
        note: format!("one index-ordered pass; peak {mib:.1} MiB"),
    });
    let (secs, mib) = timed_cli(&[
        "jobs",
        "export",
        "--format",
        "csv",
        "--database-url",
        &store,
    ]);
    rows.push(Row {
        figure: format!("jobs export CSV, {n} jobs"),
        value: secs,
        unit: "s",
        note: format!("streamed; peak {mib:.1} MiB"),
    });

    // The audit through the HTTP API on that store.
    let port = free_port();
    let log = std::fs::File::create(dir.join("scale.log")).unwrap();
    let started = Instant::now();
    let child = Command::new(BIN)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &store,
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let _server = Process(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(http, &format!("{base}/readyz")).await;
    rows.push(Row {
        figure: format!("start-up to /readyz, {n} jobs"),
        value: started.elapsed().as_secs_f64() * 1000.0,
        unit: "ms",
        note: "includes the start-up sweep".into(),
    });
    let token = admin_token(&store);
    let cid = first_cid(http, &base, &token, "limit=1&user=ops3").await;
    for (what, query) in [
        ("first page", "limit=50".to_owned()),
        (
            "user+action filter",
            "user=ops2&action=Suspend&limit=50".to_owned(),
        ),
        ("status filter", "status=succeeded&limit=50".to_owned()),
        ("CID search, hit", format!("cid={cid}")),
        ("CID search, miss", "cid=NOPE-0".to_owned()),
        (
            "date range",
            "since=2025-04-01T00:00:00Z&until=2025-04-02T00:00:00Z&limit=50".to_owned(),
        ),
    ] {
        let (p50, p95) =
            get_latency(http, &format!("{base}/api/v1/jobs?{query}"), &token, 100).await;
        rows.push(Row {
            figure: format!("audit at {n} jobs: {what}"),
            value: p50,
            unit: "ms",
            note: format!("median of 100 through the API; p95 {p95:.2} ms"),
        });
    }
    // The Jobs Audit page as a browser gets it: a session cookie, the HTML.
    let cookie = page_session(http, &base, &store).await;
    for (what, query) in [
        ("first page", ""),
        ("user+action filter", "?user=ops2&action=Suspend"),
    ] {
        let mut samples = Vec::with_capacity(100);
        for _ in 0..100 {
            let t = Instant::now();
            let r = http
                .get(format!("{base}/jobs{query}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "/jobs{query}");
            r.bytes().await.unwrap();
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        rows.push(Row {
            figure: format!("audit at {n} jobs: /jobs page, {what}"),
            value: percentile(&samples, 50.0),
            unit: "ms",
            note: format!(
                "median of 100, HTML with a session; p95 {:.2} ms; target < 15 ms",
                percentile(&samples, 95.0)
            ),
        });
    }
}

/// A session cookie for a user made for the benchmark with the CLI.
async fn page_session(http: &reqwest::Client, base: &str, store: &str) -> String {
    use std::io::Write;
    let mut add = Command::new(BIN)
        .args([
            "users",
            "add",
            "--role",
            "auditor",
            "--password-stdin",
            "bench-pages",
        ])
        .args(["--database-url", store])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(ADMIN_PASSWORD.as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success(), "users add failed");
    let login = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "bench-pages", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success(), "login: {}", login.status());
    login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the recent-duplicate guard and the sealer cost: the same load on two
/// fresh SQLite stores, one with both off, run alternately so that noise on
/// the machine falls on both. (The per-customer lock has no switch: it is in
/// both.)
async fn guard_rails_cost(
    dir: &Path,
    sandboxes: &Sandboxes,
    http: &reqwest::Client,
    o: &Options,
    baseline: f64,
    rows: &mut Vec<Row>,
) {
    eprintln!("guard rails: Set Action with and without the guard and the sealer, alternately");
    let url = |name: &str| format!("sqlite://{}", dir.join(format!("{name}.db")).display());
    let with = start_server(dir, "with-guards", &url("with-guards"), sandboxes, "", http).await;
    let without = start_server(
        dir,
        "without-guards",
        &url("without-guards"),
        sandboxes,
        "duplicate_guard_window = \"0s\"\nseal_interval = \"1h\"",
        http,
    )
    .await;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..2 {
        on.push(
            set_action_load(&with, http, o.clients, o.seconds, &format!("on{round}"))
                .await
                .per_second,
        );
        off.push(
            set_action_load(&without, http, o.clients, o.seconds, &format!("off{round}"))
                .await
                .per_second,
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (on, off) = (mean(&on), mean(&off));
    rows.push(Row {
        figure: format!(
            "SQLite: Set Action, guard and sealer off, {} clients",
            o.clients
        ),
        value: off,
        unit: "/s",
        note: format!("{:.2}× baseline; mean of 2 runs", off / baseline),
    });
    rows.push(Row {
        figure: format!("SQLite: Set Action, guard and sealer on, {} clients", o.clients),
        value: on,
        unit: "/s",
        note: format!(
            "{:.2}× baseline; mean of 2 runs alternating with the line above: the guard rails cost {:.1}% (target ≤ 15%)",
            on / baseline,
            (1.0 - on / off) * 100.0
        ),
    });
}

/// What the outbox costs (SPEC §15): Set Action on two fresh SQLite servers,
/// one writing events (the default) and one with the undocumented
/// `outbox = false`, loaded alternately, twice each; then how fast a webhook
/// sink drains the first one's backlog into a local receiver (this
/// process, answering 204 at once), from a fresh start at seq 1.
async fn events_cost(
    dir: &Path,
    sandboxes: &Sandboxes,
    http: &reqwest::Client,
    o: &Options,
    baseline: f64,
    rows: &mut Vec<Row>,
) {
    eprintln!("events: Set Action with and without the outbox, alternately");
    let url = |name: &str| format!("sqlite://{}", dir.join(format!("{name}.db")).display());
    let with = start_server(dir, "with-outbox", &url("with-outbox"), sandboxes, "", http).await;
    let without = start_server(
        dir,
        "without-outbox",
        &url("without-outbox"),
        sandboxes,
        "outbox = false",
        http,
    )
    .await;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..2 {
        on.push(
            set_action_load(&with, http, o.clients, o.seconds, &format!("ev-on{round}"))
                .await
                .per_second,
        );
        off.push(
            set_action_load(
                &without,
                http,
                o.clients,
                o.seconds,
                &format!("ev-off{round}"),
            )
            .await
            .per_second,
        );
    }
    drop(without);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (on, off) = (mean(&on), mean(&off));
    rows.push(Row {
        figure: format!("SQLite: Set Action, outbox off, {} clients", o.clients),
        value: off,
        unit: "/s",
        note: format!("{:.2}× baseline; mean of 2 runs", off / baseline),
    });
    rows.push(Row {
        figure: format!("SQLite: Set Action, outbox on, {} clients", o.clients),
        value: on,
        unit: "/s",
        note: format!(
            "{:.2}× baseline; mean of 2 runs alternating with the line above: the outbox costs {:.1}% (target ≤ 10%)",
            on / baseline,
            (1.0 - on / off) * 100.0
        ),
    });

    // The backlog: every event the loaded server wrote.
    let events: Value = http
        .get(format!("{}/api/v1/events?after=0&limit=1", with.base))
        .bearer_auth(&with.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(events["events"].is_array(), "{events}");
    drop(with);
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = tokio::spawn(async move { axum::serve(listener, receiver).await });
    let backlog = {
        let conn_url = url("with-outbox");
        let mut conn = sqlx::SqliteConnection::connect(&conn_url).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        n as u64
    };
    eprintln!("events: a webhook sink drains a backlog of {backlog} events");
    let started = Instant::now();
    let sink = format!(
        "[[sinks]]\nname = \"bench\"\nkind = \"webhook\"\nurl = \"{hook}\"\nsecret_env = \"{SINK_SECRET_ENV}\""
    );
    let sinking = start_server(
        dir,
        "with-sink",
        &url("with-outbox"),
        sandboxes,
        &sink,
        http,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(600);
    while received.load(Ordering::Relaxed) < backlog && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let delivered = received.load(Ordering::Relaxed);
    drop(sinking);
    receiver.abort();
    rows.push(Row {
        figure: "SQLite: webhook sink delivery, local receiver".into(),
        value: delivered as f64 / seconds,
        unit: "events/s",
        note: format!(
            "{delivered} of {backlog} events in {seconds:.1} s from the server's start, each signed and its position stored before the next (target ≥ 2,000/s)"
        ),
    });
}

/// 1,000 Set Actions sent at once against a cluster that takes a second to
/// answer, on a fresh server: how long until every one is answered, and the
/// server's memory when idle and at its peak.
async fn slow_cluster(
    dir: &Path,
    sandboxes: &Sandboxes,
    http: &reqwest::Client,
    rows: &mut Vec<Row>,
) {
    const REQUESTS: usize = 1000;
    eprintln!("slow cluster: {REQUESTS} simultaneous Set Actions against a 1,000 ms cluster");
    let url = format!("sqlite://{}", dir.join("slow.db").display());
    let server = start_server(dir, "slow", &url, sandboxes, "", http).await;
    let pid = server.process.0.id();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = proc_status_mib(pid, "VmRSS:");
    rows.push(Row {
        figure: "idle memory (RSS) after start-up and a login".into(),
        value: idle,
        unit: "MiB",
        note: "target < 25 MB".into(),
    });
    // Every request on its own connection, all released at once.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(REQUESTS)
        .build()
        .unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(REQUESTS + 1));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|n| {
            let (client, start) = (client.clone(), start.clone());
            let (base, token) = (server.base.clone(), server.token.clone());
            tokio::spawn(async move {
                let body = json!({"cluster": "slow", "action": "Trans-Begin", "cids": [format!("S1K-{n}")]});
                let request = client
                    .post(format!("{base}/api/v1/actions"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
                    .json(&body);
                start.wait().await;
                let sent = Instant::now();
                let ok = match request.send().await {
                    Ok(r) => r.status() == 201 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                (ok, sent.elapsed().as_secs_f64())
            })
        })
        .collect();
    start.wait().await;
    let began = Instant::now();
    let mut latencies = Vec::with_capacity(REQUESTS);
    let mut errors = 0;
    for t in tasks {
        let (ok, seconds) = t.await.unwrap();
        latencies.push(seconds);
        errors += usize::from(!ok);
    }
    let all = began.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let slowest = latencies.last().copied().unwrap_or(f64::NAN);
    let p50 = percentile(&latencies, 50.0);
    let p90 = percentile(&latencies, 90.0);
    rows.push(Row {
        figure: format!("{REQUESTS} simultaneous Set Actions, 1,000 ms cluster: all answered"),
        value: all,
        unit: "s",
        note: format!(
            "median request {p50:.2} s, p90 {p90:.2} s, slowest {slowest:.2} s; {errors} errors; target ≤ 1.3 s"
        ),
    });
    eprintln!(
        "the slow sandbox's own peak memory, for comparison: {:.1} MiB",
        proc_status_mib(sandboxes.slow_pid, "VmHWM:")
    );
    rows.push(Row {
        figure: format!("peak memory (VmHWM) serving {REQUESTS} simultaneous Set Actions"),
        value: proc_status_mib(pid, "VmHWM:"),
        unit: "MiB",
        note: "target < 60 MB".into(),
    });
}

/// 300 logins sent at once to a fresh server with 50 users: every one is an
/// Argon2id verification (~19 MiB, a dummy hash for names that do not exist),
/// so this is the load that grows memory if hashing is not bounded. Every
/// name gets at most two wrong passwords, below the throttle's five, so no
/// attempt is refused before it is verified.
async fn login_storm(
    dir: &Path,
    sandboxes: &Sandboxes,
    http: &reqwest::Client,
    rows: &mut Vec<Row>,
) {
    const REQUESTS: usize = 300;
    const USERS: usize = 50;
    const PASSWORD: &str = "storm-password-1";
    eprintln!("login storm: {REQUESTS} simultaneous logins, half with a wrong password");
    let url = format!("sqlite://{}", dir.join("logins.db").display());
    let server = start_server(dir, "logins", &url, sandboxes, "", http).await;
    let pid = server.process.0.id();
    for n in 0..USERS {
        let r = http
            .post(format!("{}/api/v1/users", server.base))
            .bearer_auth(&server.token)
            .json(
                &json!({"username": format!("storm-{n}"), "password": PASSWORD, "role": "auditor"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            201,
            "create storm-{n}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = proc_status_mib(pid, "VmRSS:");
    let peak_before = proc_status_mib(pid, "VmHWM:");
    // Every request on its own connection, all released at once.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(REQUESTS)
        .build()
        .unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(REQUESTS + 1));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (client, start, base) = (client.clone(), start.clone(), server.base.clone());
            // Even: an existing user, right password (3 per user). Odd: a wrong
            // password for one of 75 names, 25 of which do not exist (2 per name).
            let right = i % 2 == 0;
            let (username, password) = if right {
                (format!("storm-{}", (i / 2) % USERS), PASSWORD.to_owned())
            } else {
                (format!("storm-{}", (i / 2) % 75), format!("wrong-{i}"))
            };
            tokio::spawn(async move {
                let request = client
                    .post(format!("{base}/api/v1/session"))
                    .json(&json!({"username": username, "password": password}));
                start.wait().await;
                let sent = Instant::now();
                let status = match request.send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        r.bytes().await.map_or(0, |_| status)
                    }
                    Err(_) => 0,
                };
                let expected = if right { 200 } else { 401 };
                (status, status == expected, sent.elapsed().as_secs_f64())
            })
        })
        .collect();
    start.wait().await;
    let began = Instant::now();
    let mut latencies = Vec::with_capacity(REQUESTS);
    // Unexpected answers by status (0: no answer).
    let mut unexpected = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        let (status, ok, seconds) = t.await.unwrap();
        latencies.push(seconds);
        if !ok {
            *unexpected.entry(status).or_default() += 1;
        }
    }
    let all = began.elapsed().as_secs_f64();
    let peak = proc_status_mib(pid, "VmHWM:");
    let errors: usize = unexpected.values().sum();
    let by_status: Vec<String> = unexpected
        .iter()
        .map(|(s, n)| format!("{n}× {s}"))
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let settled = proc_status_mib(pid, "VmRSS:");
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rows.push(Row {
        figure: format!("{REQUESTS} simultaneous logins: throughput"),
        value: REQUESTS as f64 / all,
        unit: "/s",
        note: format!(
            "all answered in {all:.2} s; median {:.2} s, slowest {:.2} s; {errors} unexpected answers{}",
            percentile(&latencies, 50.0),
            latencies.last().copied().unwrap_or(f64::NAN),
            if errors > 0 { format!(" ({})", by_status.join(", ")) } else { String::new() }
        ),
    });
    rows.push(Row {
        figure: format!("peak memory (VmHWM) during {REQUESTS} simultaneous logins"),
        value: peak,
        unit: "MiB",
        note: format!("{idle:.1} MiB RSS before the storm, {peak_before:.1} MiB peak before it"),
    });
    rows.push(Row {
        figure: format!("memory (RSS) 5 s after {REQUESTS} simultaneous logins"),
        value: settled,
        unit: "MiB",
        note: "what the server keeps once the storm is over".into(),
    });
}

/// Customers of the per-customer store: `C0000000` to `C0999999`.
const POPULATION: u64 = 1_000_000;
/// Customers in far more jobs than the others, for the deep cursor page.
const HEAVY: [&str; 3] = ["HEAVY-1", "HEAVY-2", "HEAVY-3"];
/// Jobs each heavy customer is in (when the store has that many).
const HEAVY_JOBS: u64 = 12_000;
/// How far into a heavy customer's history the deep page starts.
const DEEP: usize = 10_000;
/// Jobs of 500 CIDs in the store.
const WIDE_JOBS: u64 = 10;

fn population_cid(i: u64) -> String {
    format!("C{:07}", i % POPULATION)
}

/// A customer of the store, in about as many jobs as the average.
fn typical_cid() -> String {
    population_cid(123_457)
}

/// A 64-bit mix of `x` (splitmix64): random-looking, the same every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Creates a user with the CLI, as an operator would.
fn cli_add_user(store: &str, username: &str, role: &str) {
    use std::io::Write;
    let mut add = Command::new(BIN)
        .args(["users", "add", "--role", role, "--password-stdin", username])
        .args(["--database-url", store])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(ADMIN_PASSWORD.as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success(), "users add {username} failed");
}

/// The size of an SQLite file in bytes, from its page count.
async fn file_bytes(conn: &mut sqlx::SqliteConnection) -> i64 {
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    pages * size
}

/// What the bulk writer made: the figures, and what to ask the API for.
struct CustomerStore {
    seconds: f64,
    customer_rows: i64,
    /// Bytes of `job_cids` and of each of its indexes (SQLite's dbstat),
    /// and of all four together (the file's growth).
    sizes: Vec<(String, i64)>,
    total_bytes: i64,
    /// A job of 500 CIDs.
    wide_job: uuid::Uuid,
    /// Jobs of `HEAVY[0]`, and of `typical_cid()`.
    heavy_jobs: i64,
    typical_jobs: i64,
    /// The job `DEEP` entries into `HEAVY[0]`'s history (0-based), newest
    /// first: the first entry the deep page must show.
    deep_job: uuid::Uuid,
}

/// The per-customer store: `n` jobs on cluster `bench`, 1 to 19 CIDs each
/// (10 on average) drawn from `POPULATION` customers, every 83rd job or so
/// with a heavy customer, `WIDE_JOBS` jobs of 500 CIDs (the most a Set
/// Action takes); 95 % succeeded, 3 %
/// failed, 2 % partial (the first customer failed). Written in time order,
/// as the server would have written them, with the indexes made after the
/// rows. Jobs are marked sealed with placeholder hashes, so the sealer does
/// not spend the measured minutes sealing a million jobs (`audit verify`
/// would fail on this store; nothing here runs it).
async fn write_customer_store(url: &str, n: u64) -> CustomerStore {
    let started = Instant::now();
    // The CLI makes and migrates the store, and the admin the benchmark logs in as.
    cli_add_user(url, "admin", "admin");
    let options = SqliteConnectOptions::from_str(url)
        .unwrap()
        .journal_mode(SqliteJournalMode::Off)
        .synchronous(SqliteSynchronous::Off)
        .foreign_keys(false)
        .pragma("cache_size", "-2000000");
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let indexes: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' \
         AND tbl_name IN ('jobs', 'job_cids') AND sql IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (name, _, _) in &indexes {
        sqlx::query(&format!("DROP INDEX {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let users = ["ops1", "ops2", "ops3", "ops4"];
    for user in users {
        sqlx::query(
            "INSERT INTO users (username, role, password_hash, disabled, created_at) \
             VALUES ($1, 'operator', NULL, TRUE, '2025-03-01T00:00:00+00:00')",
        )
        .bind(user)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
    };
    let start_ms = 1_740_787_200_000i64; // 2025-03-01T00:00:00Z
    let step = (90 * 86_400_000 / n as i64).max(1);
    let heavy_every = (n / HEAVY_JOBS).max(1);
    let wide_every = (n / WIDE_JOBS).max(1);
    let mut wide_job = None;
    let mut tx = conn.begin().await.unwrap();
    const BATCH: usize = 5_000;
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        let r = mix(i);
        let at = start_ms + i as i64 * step + (r % step as u64) as i64;
        let base = r % POPULATION;
        let wide = i % wide_every == wide_every / 2 && i / wide_every < WIDE_JOBS;
        // Distinct within a job: the strides stay below POPULATION.
        let mut cids: Vec<String> = if wide {
            (0..500).map(|k| population_cid(base + k * 1_999)).collect()
        } else {
            (0..1 + (r >> 8) % 19)
                .map(|k| population_cid(base + k * 99_991))
                .collect()
        };
        for (h, heavy) in HEAVY.iter().enumerate() {
            if !wide && i % heavy_every == h as u64 % heavy_every {
                cids.push((*heavy).to_owned());
            }
        }
        let count = cids.len() as i64;
        let (status, ok, failed, upstream, summary, error) = match (r >> 40) % 100 {
            0..=2 => (
                "failed",
                0,
                count,
                502,
                "upstream answered 502".to_owned(),
                Some("upstream answered 502"),
            ),
            3..=4 if count > 1 => (
                "partial",
                count - 1,
                1,
                200,
                format!("{} of {count} customer(s) processed", count - 1),
                None,
            ),
            _ => (
                "succeeded",
                count,
                0,
                200,
                format!("Successfully processed {count} customer(s)"),
                None,
            ),
        };
        let random = mix(r);
        let mut tail = [0u8; 10];
        tail[..8].copy_from_slice(&random.to_le_bytes());
        tail[8..].copy_from_slice(&mix(random).to_le_bytes()[..2]);
        let id = uuid::Builder::from_unix_timestamp_millis(at as u64, &tail).into_uuid();
        if wide && wide_job.is_none() {
            wide_job = Some(id);
        }
        batch.push(json!([
            id.simple().to_string(),
            users[(r >> 32) as usize % users.len()],
            format!("{:016x}{:016x}", mix(random), mix(random ^ 1)),
            format!(
                "{:016x}{:016x}{:016x}{:016x}",
                mix(r ^ 2),
                mix(r ^ 3),
                mix(r ^ 4),
                mix(r ^ 5)
            ),
            format!(
                "{:016x}{:016x}{:016x}{:016x}",
                mix(r ^ 6),
                mix(r ^ 7),
                mix(r ^ 8),
                mix(r ^ 9)
            ),
            serde_json::to_string(&cids).unwrap(),
            count,
            status,
            upstream,
            summary,
            error,
            time(at),
            time(at + 40),
            40,
            time(at + 1),
            time(at + 39),
            time(at + 40),
            i + 1,
            format!("{:064x}", i + 1),
            ok,
            failed,
        ]));
        if batch.len() == BATCH || i + 1 == n {
            sqlx::query(
                "INSERT INTO jobs (job_id, user_name, idempotency_key, payload_hash, intent_hash, cluster, \
                 action, action_code, cids, cid_count, status, upstream_status, response_summary, error, \
                 created_at, finished_at, duration_ms, sent_at, answered_at, finalized_at, audit_seq, \
                 audit_hash, ok_count, failed_count, unknown_count) \
                 SELECT unhex(v.value ->> 0), v.value ->> 1, v.value ->> 2, v.value ->> 3, v.value ->> 4, \
                 'bench', 'Trans-Begin', 1, v.value ->> 5, v.value ->> 6, v.value ->> 7, v.value ->> 8, \
                 v.value ->> 9, v.value ->> 10, v.value ->> 11, v.value ->> 12, v.value ->> 13, \
                 v.value ->> 14, v.value ->> 15, v.value ->> 16, v.value ->> 17, v.value ->> 18, \
                 v.value ->> 19, v.value ->> 20, 0 FROM json_each($1) AS v",
            )
            .bind(serde_json::to_string(&batch).unwrap())
            .execute(&mut *tx)
            .await
            .unwrap();
            batch.clear();
            eprint!("\r  writing the jobs: {} / {n}", i + 1);
        }
    }
    eprintln!();
    let make_indexes = |table: &'static str| {
        indexes
            .iter()
            .filter(move |(_, t, _)| t == table)
            .map(|(_, _, sql)| sql.clone())
    };
    for sql in make_indexes("jobs") {
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
    }
    let before = file_bytes(&mut tx).await;
    eprintln!("  writing the customer rows");
    sqlx::query(
        "INSERT INTO job_cids (cid, job_id, position, created_at, outcome, error) \
         SELECT c.value, j.job_id, c.key, j.created_at, \
         CASE WHEN j.status = 'failed' OR (j.status = 'partial' AND c.key = 0) THEN 'failed' ELSE 'ok' END, \
         CASE WHEN j.status = 'failed' THEN j.error WHEN j.status = 'partial' AND c.key = 0 \
         THEN 'customer is locked' END \
         FROM jobs j, json_each(j.cids) AS c",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    for sql in make_indexes("job_cids") {
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
    }
    let total_bytes = file_bytes(&mut tx).await - before;
    tx.commit().await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let customer_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_cids")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let sizes: Vec<(String, i64)> = match sqlx::query_as(
        "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN \
         (SELECT name FROM sqlite_master WHERE tbl_name = 'job_cids') GROUP BY name ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    {
        Ok(sizes) => sizes,
        Err(e) => {
            eprintln!("  no dbstat ({e}): the file's growth only");
            Vec::new()
        }
    };
    let count_of = "SELECT COUNT(*) FROM job_cids WHERE cid = $1";
    let heavy_jobs: i64 = sqlx::query_scalar(count_of)
        .bind(HEAVY[0])
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let typical_jobs: i64 = sqlx::query_scalar(count_of)
        .bind(typical_cid())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let deep_job: uuid::Uuid = sqlx::query_scalar(
        "SELECT job_id FROM job_cids WHERE cid = $1 ORDER BY created_at DESC, job_id DESC LIMIT 1 OFFSET $2",
    )
    .bind(HEAVY[0])
    .bind(DEEP as i64)
    .fetch_one(&mut conn)
    .await
    .expect("a heavy customer with more than 10,000 jobs (--jobs of at least 10000)");
    // What SQLite does for the two reads, as the server sends them.
    let history_plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT c.job_id, c.created_at, j.user_name, j.cluster, j.action, \
         j.action_code, j.status, c.outcome, c.error FROM job_cids c JOIN jobs j ON j.job_id = c.job_id \
         WHERE c.cid = $1 AND (c.created_at, c.job_id) < ($2, $3) \
         ORDER BY c.created_at DESC, c.job_id DESC LIMIT $4",
    )
    .bind(HEAVY[0])
    .bind("2025-04-01T00:00:00+00:00")
    .bind(deep_job)
    .bind(51i64)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let customers_plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT cid, outcome, error FROM job_cids WHERE job_id = $1 ORDER BY position",
    )
    .bind(deep_job)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (what, plan) in [
        ("history page after a cursor", history_plan),
        ("a job's customers", customers_plan),
    ] {
        for (_, _, _, detail) in plan {
            eprintln!("  plan of {what}: {detail}");
        }
    }
    CustomerStore {
        seconds,
        customer_rows,
        sizes,
        total_bytes,
        wide_job: wide_job.expect("a 500-CID job (--jobs of at least 10)"),
        heavy_jobs,
        typical_jobs,
        deep_job,
    }
}

/// Set Actions of 10 of the store's customers each. Each client takes its
/// own customers (every `clients`th); its `n`th request takes the `10 n`th
/// to `10 n + 9`th of them in a fixed shuffled order, so requests land all
/// over the store and no two ask for the same set (the recent-duplicate
/// guard would refuse the second). Round 1 starts half-way through. With
/// `fresh`, 10 CIDs never seen before instead, next to each other in every
/// index keyed by CID.
async fn customer_load(
    server: &Server,
    http: &reqwest::Client,
    o: &Options,
    round: u64,
    fresh: bool,
) -> Load {
    let clients = o.clients as u64;
    let share = POPULATION / clients;
    set_action_load_with(server, http, o.clients, o.seconds, move |client, n| {
        (0..10)
            .map(|k| {
                if fresh {
                    return format!("NEW{round}-{client}-{n}-{k}");
                }
                let j = (round * share / 2 + n as u64 * 10 + k) % share;
                // 1,000,003 is a prime above `share`: a permutation of 0..share.
                population_cid(j * 1_000_003 % share * clients + client as u64)
            })
            .collect()
    })
    .await
}

/// A customer's history and a job's customers on a store of `--jobs` jobs
/// averaging 10 CIDs, through the API; then Set Action throughput with 10
/// of the store's customers per request, on that store and on a copy that
/// keeps no customer rows for new jobs (a trigger skips them), alternately.
async fn customers_at_scale(
    dir: &Path,
    sandboxes: &Sandboxes,
    http: &reqwest::Client,
    o: &Options,
    rows: &mut Vec<Row>,
) {
    let n = o.jobs;
    let path = dir.join("customers.db");
    let url = format!("sqlite://{}", path.display());
    eprintln!("customers at scale: {n} jobs averaging 10 CIDs");
    let store = write_customer_store(&url, n).await;
    let per_row = |bytes: i64| bytes as f64 / store.customer_rows as f64;
    let million = |rows: i64| rows as f64 / 1e6;
    rows.push(Row {
        figure: format!(
            "customers: store of {n} jobs, {:.2} M customer rows, written",
            million(store.customer_rows)
        ),
        value: store.seconds,
        unit: "s",
        note: "bulk SQL in time order, indexes made after the rows".into(),
    });
    for (name, bytes) in &store.sizes {
        rows.push(Row {
            figure: format!("customers: {name}, per customer row"),
            value: per_row(*bytes),
            unit: "B",
            note: format!("{:.0} MiB in all (dbstat)", *bytes as f64 / 1048576.0),
        });
    }
    rows.push(Row {
        figure: "customers: job_cids and its indexes, per customer row".into(),
        value: per_row(store.total_bytes),
        unit: "B",
        note: format!(
            "{:.0} MiB in all: the file's growth from writing the customer rows and their indexes",
            store.total_bytes as f64 / 1048576.0
        ),
    });

    // The baseline: the same store, keeping no customer rows for new jobs.
    let without_path = dir.join("customers-without.db");
    std::fs::copy(&path, &without_path).unwrap();
    let without_url = format!("sqlite://{}", without_path.display());
    let mut conn = sqlx::SqliteConnection::connect(&without_url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER bench_no_customer_rows BEFORE INSERT ON job_cids BEGIN SELECT RAISE(IGNORE); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let with = start_server(dir, "customers", &url, sandboxes, "", http).await;
    let without = start_server(dir, "customers-without", &without_url, sandboxes, "", http).await;
    let (base, token) = (&with.base, &with.token);
    let history = |cid: &str| format!("{base}/api/v1/customers/{cid}/jobs");
    let typical = typical_cid();
    let heavy = HEAVY[0];

    // The cursor of the page that starts DEEP entries in, followed page by page.
    let mut cursor = String::new();
    let mut seen = 0;
    while seen < DEEP {
        let page: Value = http
            .get(format!("{}?limit=500&cursor={cursor}", history(heavy)))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen += page["entries"].as_array().map_or(0, Vec::len);
        cursor = page["next_cursor"]
            .as_str()
            .expect("a next page")
            .to_owned();
    }
    assert_eq!(seen, DEEP, "pages of 500 reach exactly {DEEP}");
    let deep_url = format!("{}?cursor={cursor}", history(heavy));
    let deep: Value = http
        .get(&deep_url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        deep["entries"][0]["job_id"].as_str(),
        Some(store.deep_job.to_string().as_str()),
        "the deep page starts {DEEP} entries in"
    );
    let wide_url = format!("{base}/api/v1/jobs/{}/customers", store.wide_job);
    let wide: Value = http
        .get(&wide_url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wide["customers"].as_array().map(Vec::len), Some(500));
    for (what, url, target) in [
        (
            format!(
                "history first page, a customer in {} jobs",
                store.typical_jobs
            ),
            history(&typical),
            5,
        ),
        (
            format!(
                "history first page, a customer in {} jobs",
                store.heavy_jobs
            ),
            history(heavy),
            5,
        ),
        (
            format!("history page {DEEP} entries deep (cursor)"),
            deep_url.clone(),
            5,
        ),
        (
            "customers of a 500-CID job, all 500".to_owned(),
            wide_url.clone(),
            10,
        ),
    ] {
        let (p50, p95) = get_latency(http, &url, token, 200).await;
        rows.push(Row {
            figure: format!("customers at {n} jobs: {what}"),
            value: p50,
            unit: "ms",
            note: format!("median of 200 through the API; p95 {p95:.2} ms; target < {target} ms"),
        });
    }

    eprintln!("customers: Set Action with and without customer rows, alternately");
    let (mut on, mut off, mut fresh) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..2 {
        on.push(customer_load(&with, http, o, round, false).await);
        off.push(customer_load(&without, http, o, round, false).await);
        fresh.push(customer_load(&with, http, o, round, true).await);
    }
    let mean = |v: &[Load]| v.iter().map(|l| l.per_second).sum::<f64>() / v.len() as f64;
    let errors = |v: &[Load]| v.iter().map(|l| l.errors).sum::<usize>();
    let latency = |v: &[Load]| {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms (second run)",
            v[1].p50_ms, v[1].p99_ms
        )
    };
    let without_rows = mean(&off);
    rows.push(Row {
        figure: format!(
            "customers: Set Action of 10 CIDs, no customer rows kept, {} clients",
            o.clients
        ),
        value: without_rows,
        unit: "/s",
        note: format!(
            "mean of 2 runs on a copy of the store whose trigger drops new customer rows; {}; {} errors",
            latency(&off),
            errors(&off)
        ),
    });
    for (what, loads) in [
        ("with customer rows", &on),
        ("with customer rows, CIDs new to the store", &fresh),
    ] {
        let value = mean(loads);
        rows.push(Row {
            figure: format!("customers: Set Action of 10 CIDs, {what}, {} clients", o.clients),
            value,
            unit: "/s",
            note: format!(
                "mean of 2 runs, alternating with the other two: {:.1}% below no customer rows kept (target ≤ 10%); {}; {} errors",
                (1.0 - value / without_rows) * 100.0,
                latency(loads),
                errors(loads)
            ),
        });
    }
}

/// CPU time (user + system) a process has used, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks * 1000.0 / 100.0 // USER_HZ is 100 on Linux
}

/// Set Action under `wrk` and under this benchmark's own load generator,
/// alternately, with the same body shape (a new key, two new CIDs), then the
/// old Flask dashboard under `wrk` in the same run.
async fn wrk_phase(
    dir: &Path,
    sandboxes: &Sandboxes,
    http: &reqwest::Client,
    o: &Options,
    rows: &mut Vec<Row>,
) {
    wrk::ensure_wrk();
    let url = format!("sqlite://{}", dir.join("wrk.db").display());
    let server = start_server(dir, "wrk", &url, sandboxes, "", http).await;
    let pid = server.process.0.id();
    let (old_process, old_base) =
        wrk::start_old_dashboard(dir, &sandboxes.fast, "sandbox-token", "old-token", http).await;
    let (mut console_wrk, mut console_own, mut old_wrk) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu_per_request = Vec::new();
    for round in 0..2 {
        eprintln!("wrk: round {}: the console under wrk", round + 1);
        let before = cpu_ms(pid);
        let load = wrk::run_wrk(
            &server.base,
            &server.token,
            "/api/v1/actions",
            o.seconds,
            &format!("c{round}-{}", uuid::Uuid::now_v7().simple()),
        );
        let used = cpu_ms(pid) - before;
        cpu_per_request.push(used / (load.ok_per_second * o.seconds as f64));
        console_wrk.push(load);
        eprintln!(
            "wrk: round {}: the console under this benchmark's load generator",
            round + 1
        );
        let tag = format!("own{round}");
        console_own.push(
            set_action_load_with(&server, http, o.clients, o.seconds, move |client, n| {
                vec![
                    format!("{tag}-{client}-{n}a"),
                    format!("{tag}-{client}-{n}b"),
                ]
            })
            .await,
        );
        eprintln!("wrk: round {}: the old dashboard under wrk", round + 1);
        old_wrk.push(wrk::run_wrk(
            &old_base,
            "old-token",
            "/api/v1/actions",
            o.seconds,
            &format!("o{round}"),
        ));
    }
    drop(old_process);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let console = mean(
        &console_wrk
            .iter()
            .map(|l| l.ok_per_second)
            .collect::<Vec<_>>(),
    );
    let own = mean(&console_own.iter().map(|l| l.per_second).collect::<Vec<_>>());
    let old = mean(&old_wrk.iter().map(|l| l.ok_per_second).collect::<Vec<_>>());
    let last = |v: &[wrk::WrkLoad]| (v[v.len() - 1].p50_ms, v[v.len() - 1].p99_ms);
    let errors = |v: &[wrk::WrkLoad]| v.iter().map(|l| l.non_2xx + l.socket_errors).sum::<u64>();
    let (c50, c99) = last(&console_wrk);
    let (o50, o99) = last(&old_wrk);
    rows.push(Row {
        figure: "wrk: old dashboard (Flask, gunicorn 5 sync workers), Set Action 2xx".into(),
        value: old,
        unit: "/s",
        note: format!(
            "1.00× (this phase's baseline); mean of 2 runs of wrk -t2 -c16; p50 {o50:.1} ms, p99 {o99:.1} ms; {} non-2xx or socket errors",
            errors(&old_wrk)
        ),
    });
    rows.push(Row {
        figure: "wrk: SQLite: Set Action 2xx, 2 new CIDs a request".into(),
        value: console,
        unit: "/s",
        note: format!(
            "{:.2}× the old dashboard (target ≥ 10×); mean of 2 runs alternating with the lines around it; p50 {c50:.1} ms, p99 {c99:.1} ms; {} non-2xx or socket errors",
            console / old,
            errors(&console_wrk)
        ),
    });
    rows.push(Row {
        figure: format!(
            "own load generator: SQLite: Set Action, 2 new CIDs a request, {} clients",
            o.clients
        ),
        value: own,
        unit: "/s",
        note: format!(
            "{:.2}× wrk's figure in the same run; mean of 2 runs; {} errors",
            own / console,
            console_own.iter().map(|l| l.errors).sum::<usize>()
        ),
    });
    rows.push(Row {
        figure: "wrk: server CPU per Set Action".into(),
        value: mean(&cpu_per_request),
        unit: "ms",
        note: "user + system time of the server process over the wrk runs ÷ their 2xx answers (target < 0.4 ms)".into(),
    });
}
