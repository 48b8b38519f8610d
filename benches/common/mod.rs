//! What both benchmarks need: the binary under test, child processes that
//! die with the benchmark, free ports, readiness, memory from `/proc`, and
//! the sandbox cluster as its own process.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tms-dashboard");

/// A child process killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn wait_ready(client: &reqwest::Client, url: &str) {
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

/// A line of `/proc/<pid>/status` in MiB (`VmRSS`: now, `VmHWM`: peak).
pub fn proc_status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The sandbox cluster as its own process, answering after `latency_ms`.
pub async fn start_sandbox(http: &reqwest::Client, latency_ms: u64) -> (Process, String) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let process = Process(
        Command::new(BIN)
            .args([
                "sandbox-cluster",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--latency-ms",
                &latency_ms.to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the sandbox"),
    );
    wait_ready(http, &format!("{url}/api/v1/_stats")).await;
    (process, url)
}
