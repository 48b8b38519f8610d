//! The `wrk` phase: Set Action under Debian's `wrk` (2 threads, 16
//! connections, keep-alive), a new key and two new CIDs per request
//! (`benches/wrk/set_action.lua`), against this console and, in the same
//! run, against the old Flask dashboard's Set Action rebuilt in
//! `benches/old-dashboard/` (gunicorn, 5 sync workers), each in front of the
//! same cluster process answering at once. Beside it, the benchmark's own
//! load generator with the same body shape, alternated with `wrk`, so the
//! two tools can be compared in one run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::{free_port, Process};

/// What one `wrk` run measured.
pub struct WrkLoad {
    /// 2xx answers per second (every answer of a Set Action here is 201
    /// unless something broke).
    pub ok_per_second: f64,
    pub non_2xx: u64,
    pub socket_errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Debian's `wrk`, installed when missing (as root).
pub fn ensure_wrk() {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return;
    }
    let status = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null",
        ])
        .status()
        .expect("apt-get");
    assert!(
        status.success(),
        "installing Debian's wrk failed (as root: apt-get install wrk)"
    );
}

/// Runs `wrk` against `base` for `seconds`.
pub fn run_wrk(base: &str, token: &str, path: &str, seconds: u64, run: &str) -> WrkLoad {
    let script = manifest_dir().join("benches/wrk/set_action.lua");
    let out = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(base)
        .env("WRK_TOKEN", token)
        .env("WRK_PATH", path)
        .env("WRK_RUN", run)
        .output()
        .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("wrk printed no summary:\n{text}"));
    let v: Value = serde_json::from_str(line).expect("wrk's summary");
    let requests = v["requests"].as_u64().unwrap_or(0);
    let non_2xx = v["non_2xx"].as_u64().unwrap_or(0);
    WrkLoad {
        ok_per_second: (requests - non_2xx) as f64 / v["seconds"].as_f64().unwrap_or(1.0),
        non_2xx,
        socket_errors: v["socket_errors"].as_u64().unwrap_or(0),
        p50_ms: v["p50_ms"].as_f64().unwrap_or(f64::NAN),
        p99_ms: v["p99_ms"].as_f64().unwrap_or(f64::NAN),
    }
}

/// A venv with Flask, gunicorn and requests at the pinned versions, kept
/// under `target/` between runs.
fn old_dashboard_python() -> PathBuf {
    let venv = manifest_dir().join("target/bench-old-dashboard-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import flask, gunicorn, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(made.success(), "making the old dashboard's venv failed");
        let installed = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(manifest_dir().join("benches/old-dashboard/requirements.txt"))
            .status()
            .expect("pip");
        assert!(installed.success(), "installing Flask and gunicorn failed");
    }
    python
}

/// The old dashboard, serving a fresh SQLite file in `dir`, calling `cluster`.
pub async fn start_old_dashboard(
    dir: &Path,
    cluster: &str,
    cluster_token: &str,
    api_token: &str,
    http: &reqwest::Client,
) -> (Process, String) {
    let python = old_dashboard_python();
    let port = free_port();
    let log = std::fs::File::create(dir.join("old-dashboard.log")).expect("log");
    let child = Command::new(python)
        .args(["-m", "gunicorn", "--workers", "5", "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--chdir"])
        .arg(manifest_dir().join("benches/old-dashboard"))
        .arg("app:app")
        .env("OLD_DASHBOARD_DB", dir.join("old-dashboard.db"))
        .env("OLD_DASHBOARD_CLUSTER", cluster)
        .env("OLD_DASHBOARD_CLUSTER_TOKEN", cluster_token)
        .env("OLD_DASHBOARD_API_TOKEN", api_token)
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("gunicorn");
    let base = format!("http://127.0.0.1:{port}");
    let process = Process(child);
    // Any answer from the app means gunicorn is up (GET on a POST route: 405).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while http
        .get(format!("{base}/api/v1/actions"))
        .send()
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the old dashboard never answered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (process, base)
}
