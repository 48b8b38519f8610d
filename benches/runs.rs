//! The runs benchmark (SPEC §13): a run of 100,000 CIDs in batches of 500
//! against a sandbox cluster that answers at once (`max_in_flight = 8`), and
//! against one that takes a second (`max_in_flight = 4`, whose ideal wall
//! time is the baseline: batches / limit × 1 s); the console's own time per
//! batch from the jobs' phases; the time to answer `POST /api/v1/runs` with
//! 100,000 CIDs; and one run shared by two instances on PostgreSQL against
//! the same run on one. The sandbox is its own process and counts the most
//! requests it had in flight at once.
//!
//! `cargo bench --bench runs -- [--cids N] [--skip-slow] [--skip-postgres] [--postgres-url URL]`

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

mod common;
use common::{free_port, proc_status_mib, start_sandbox, wait_ready, Process, BIN};
const TOKEN_ENV: &str = "TMS_BENCH_CLUSTER_TOKEN";
const ADMIN_PASSWORD: &str = "bench-admin-password";

struct Options {
    cids: usize,
    skip_slow: bool,
    skip_postgres: bool,
    postgres_url: String,
}

fn options() -> Options {
    let mut o = Options {
        cids: 100_000,
        skip_slow: false,
        skip_postgres: false,
        postgres_url: std::env::var("TMS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cids" => o.cids = args.next().and_then(|v| v.parse().ok()).expect("--cids N"),
            "--skip-slow" => o.skip_slow = true,
            "--skip-postgres" => o.skip_postgres = true,
            "--postgres-url" => o.postgres_url = args.next().expect("--postgres-url URL"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

struct Server {
    process: Process,
    base: String,
    token: String,
}

/// The dashboard on `database_url` with cluster `bench` at `sandbox`.
async fn start_server(
    dir: &Path,
    name: &str,
    database_url: &str,
    sandbox: &str,
    max_in_flight: u32,
    http: &reqwest::Client,
) -> Server {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "sandbox = false\nduplicate_guard_window = \"0s\"\n\
             [[clusters]]\nname = \"bench\"\nlabel = \"Bench\"\nbase_url = \"{sandbox}\"\n\
             token_env = \"{TOKEN_ENV}\"\nmax_in_flight = {max_in_flight}\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "serve"])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--database-url", database_url])
        .env(TOKEN_ENV, "sandbox-token")
        .env("TMS_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("TMS_UPSTREAM_TIMEOUT", "30s")
        // The dispatcher's lines say which instance sent each batch.
        .env("RUST_LOG", "warn,tms_dashboard::service::dispatcher=info")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start the server");
    let base = format!("http://127.0.0.1:{port}");
    let process = Process(child);
    wait_ready(http, &format!("{base}/readyz")).await;
    let out = Command::new(BIN)
        .args(["tokens", "create", "--user", "admin", "--name", name])
        .args(["--database-url", database_url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Server {
        process,
        base,
        token: String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn at(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn ms(from: &Value, to: &Value) -> Option<f64> {
    Some((at(to)? - at(from)?).num_microseconds()? as f64 / 1000.0)
}

/// What one run came to.
struct Measured {
    /// `POST /api/v1/runs` until its answer.
    post_ms: f64,
    /// From the run's creation to its end, as the store recorded them.
    wall_s: f64,
    /// Median over its batches of claim-to-sent plus answered-to-finalised.
    console_ms_per_batch: f64,
    batches: usize,
    ok: i64,
    sandbox_max_in_flight: u64,
    sandbox_requests: u64,
    sandbox_distinct_keys: u64,
}

async fn measure_run(
    http: &reqwest::Client,
    server: &Server,
    sandbox: &str,
    cids: usize,
) -> Measured {
    let list: Vec<String> = (0..cids).map(|i| format!("B{i:07}")).collect();
    let body =
        json!({"cluster": "bench", "action": "Trans-Begin", "cids": list, "batch_size": 500});
    let start = Instant::now();
    let created = http
        .post(format!("{}/api/v1/runs", server.base))
        .bearer_auth(&server.token)
        .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
        .json(&body)
        .send()
        .await
        .unwrap();
    let post_ms = start.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(created.status(), 202);
    let created: Value = created.json().await.unwrap();
    let run_id = created["run"]["run_id"].as_str().unwrap().to_owned();
    let url = format!("{}/api/v1/runs/{run_id}", server.base);
    let detail = loop {
        let detail: Value = http
            .get(&url)
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if detail["run"]["status"] == "finished" {
            break detail;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let run = &detail["run"];
    let wall_s = ms(&run["created_at"], &run["finished_at"]).unwrap() / 1000.0;
    let mut console = Vec::new();
    let batches = detail["batches"].as_array().unwrap();
    for batch in batches {
        let job_id = batch["job_id"].as_str().unwrap();
        let job: Value = http
            .get(format!("{}/api/v1/jobs/{job_id}", server.base))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let p = &job["job"]["phases"];
        if let (Some(claim), Some(finalise)) = (
            ms(&p["claimed_at"], &p["sent_at"]),
            ms(&p["answered_at"], &p["finalized_at"]),
        ) {
            console.push(claim + finalise);
        }
    }
    let stats: Value = http
        .get(format!("{sandbox}/api/v1/_stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Measured {
        post_ms,
        wall_s,
        console_ms_per_batch: median(console),
        batches: batches.len(),
        ok: run["customers"]["ok"].as_i64().unwrap(),
        sandbox_max_in_flight: stats["max_in_flight"].as_u64().unwrap(),
        sandbox_requests: stats["requests_total"].as_u64().unwrap(),
        sandbox_distinct_keys: stats["distinct_keys"].as_u64().unwrap(),
    }
}

fn print(name: &str, m: &Measured, extra: &str) {
    println!(
        "| {name} | {} | {:.0} ms | {:.2} s | {:.2} ms | {} / {} / {} | {} ok | {extra} |",
        m.batches,
        m.post_ms,
        m.wall_s,
        m.console_ms_per_batch,
        m.sandbox_max_in_flight,
        m.sandbox_requests,
        m.sandbox_distinct_keys,
        m.ok
    );
}

async fn fresh_postgres(admin_url: &str, name: &str) -> String {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin_url)
        .await
        .expect("PostgreSQL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    format!("{base}/{name}")
}

#[tokio::main]
async fn main() {
    let o = options();
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let batches = o.cids.div_ceil(500);
    println!(
        "runs of {} CIDs in batches of 500 ({batches} batches)\n",
        o.cids
    );
    println!("| phase | batches | POST /runs | wall | console per batch (median) | sandbox max in flight / requests / keys | customers | notes |");
    println!("|---|---|---|---|---|---|---|---|");

    // At once, max_in_flight = 8, SQLite.
    let (_sandbox, sandbox) = start_sandbox(&http, 0).await;
    let url = format!("sqlite://{}", dir.path().join("fast.db").display());
    let server = start_server(dir.path(), "fast", &url, &sandbox, 8, &http).await;
    let m = measure_run(&http, &server, &sandbox, o.cids).await;
    let peak = proc_status_mib(server.process.0.id(), "VmHWM:");
    print(
        "SQLite, cluster at 0 ms, max_in_flight 8",
        &m,
        &format!("server peak RSS {peak:.0} MiB"),
    );
    drop(server);

    // A second per answer, max_in_flight = 4: the limit decides the wall time.
    if !o.skip_slow {
        let (_slow, slow) = start_sandbox(&http, 1000).await;
        let url = format!("sqlite://{}", dir.path().join("slow.db").display());
        let server = start_server(dir.path(), "slow", &url, &slow, 4, &http).await;
        let m = measure_run(&http, &server, &slow, o.cids).await;
        let ideal = batches.div_ceil(4) as f64;
        print(
            "SQLite, cluster at 1,000 ms, max_in_flight 4",
            &m,
            &format!(
                "ideal {ideal:.0} s: {:+.1}%",
                (m.wall_s / ideal - 1.0) * 100.0
            ),
        );
    }

    // One run on PostgreSQL, by one instance and by two sharing it, against
    // a cluster at 100 ms with max_in_flight 4 (ideal: batches / 4 × 0.1 s).
    if !o.skip_postgres {
        let ideal = batches.div_ceil(4) as f64 * 0.1;
        for instances in [1, 2] {
            let (_sandbox, sandbox) = start_sandbox(&http, 100).await;
            let url = fresh_postgres(&o.postgres_url, &format!("tms_bench_runs_{instances}")).await;
            let first = start_server(
                dir.path(),
                &format!("pg{instances}a"),
                &url,
                &sandbox,
                4,
                &http,
            )
            .await;
            let second = if instances == 2 {
                Some(start_server(dir.path(), "pg2b", &url, &sandbox, 4, &http).await)
            } else {
                None
            };
            let m = measure_run(&http, &first, &sandbox, o.cids).await;
            let sent_by_second = second.as_ref().map_or(0, |_| {
                std::fs::read_to_string(dir.path().join("pg2b.log"))
                    .unwrap_or_default()
                    .matches("[RUN] Batch sent")
                    .count()
            });
            print(
                &format!("PostgreSQL, {instances} instance(s), cluster at 100 ms, max_in_flight 4"),
                &m,
                &format!(
                    "ideal {ideal:.1} s: {:+.1}%{}",
                    (m.wall_s / ideal - 1.0) * 100.0,
                    if instances == 2 {
                        format!("; the second sent {sent_by_second} batches")
                    } else {
                        String::new()
                    }
                ),
            );
        }
    }
}
