//! A misbehaving cluster, run by the test itself: every fault ends as one
//! job with a precise error, and a redirect is never followed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tms_dashboard::config::ClusterConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{free_port, new_key, TestApp};

/// A loopback HTTP server that answers every request the same bad way, and
/// counts the requests it got.
struct BadCluster {
    base_url: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BadCluster {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone, Copy)]
enum Fault {
    ResetMidBody,
    TenMebibyteBody,
    HeadersNeverFinish,
    InvalidJson,
    HtmlPage,
    RedirectElsewhere(u16),
}

async fn read_request(stream: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Head, then as much body as Content-Length says.
    loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return;
        }
    }
}

async fn misbehave(mut stream: TcpStream, fault: Fault) {
    read_request(&mut stream).await;
    let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n";
    match fault {
        Fault::ResetMidBody => {
            let _ = stream
                .write_all(
                    format!("{ok}Content-Length: 5000\r\n\r\n{{\"status\":\"succ").as_bytes(),
                )
                .await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            // A zero linger closes with RST at once; it never blocks.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
        }
        Fault::TenMebibyteBody => {
            let size = 10 * 1024 * 1024;
            let head = format!("{ok}Content-Length: {size}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let mut body = b"{\"status\":\"success\",\"pad\":\"".to_vec();
            body.resize(size, b'x');
            let _ = stream.write_all(&body).await;
        }
        Fault::HeadersNeverFinish => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: appl")
                .await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Fault::InvalidJson => {
            let body = "{\"status\": \"success\",";
            let _ = stream
                .write_all(format!("{ok}Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
                .await;
        }
        Fault::HtmlPage => {
            let body = "<html><body>Service maintenance</body></html>";
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n";
            let _ = stream
                .write_all(format!("{head}Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
                .await;
        }
        Fault::RedirectElsewhere(port) => {
            let head = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.2:{port}/api/v1/customers/actions\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes()).await;
        }
    }
}

impl BadCluster {
    async fn start(fault: Fault) -> BadCluster {
        BadCluster::start_on("127.0.0.1:0", fault).await
    }

    async fn start_on(address: &str, fault: Fault) -> BadCluster {
        let listener = TcpListener::bind(address).await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(misbehave(stream, fault));
            }
        });
        BadCluster {
            base_url,
            requests,
            task,
        }
    }
}

/// Runs one action against a cluster at `base_url` and returns the status,
/// the job, and the number of jobs the store then holds.
async fn run_against(base_url: &str) -> (u16, Value, usize) {
    let app = TestApp::spawn_with(|c| {
        c.sandbox = false;
        c.upstream_timeout = Duration::from_secs(1);
        c.clusters = vec![ClusterConfig {
            name: "flaky".into(),
            label: None,
            base_url: base_url.into(),
            token_env: None,
            max_in_flight: None,
            max_per_second: None,
            approval_required: None,
        }];
    })
    .await;
    let admin = app.admin().await;
    let body =
        json!({"cluster": "flaky", "action": "Trans-Begin", "cids": ["C1"], "token": "t0k3n"});
    let reply = admin.set_action(&new_key(), &body).await;
    let job = reply.json()["job"].clone();
    assert!(job.is_object(), "no job in the answer: {}", reply.text());
    let count = admin.jobs("").await.len();
    (reply.status, job, count)
}

fn error_of(job: &Value) -> String {
    job["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_one_failed_job_saying_so() {
    let closed_port = free_port();
    let (status, job, count) = run_against(&format!("http://127.0.0.1:{closed_port}")).await;
    assert_eq!((status, count), (502, 1));
    assert_eq!(job["status"], "failed");
    assert!(job["upstream_status"].is_null(), "{job}");
    assert!(error_of(&job).contains("connect"), "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_reset_mid_body_is_one_failed_job() {
    let cluster = BadCluster::start(Fault::ResetMidBody).await;
    let (status, job, count) = run_against(&cluster.base_url).await;
    assert_eq!((status, count), (502, 1));
    assert_eq!(job["status"], "failed");
    assert!(error_of(&job).contains("broke off"), "{job}");
    assert_eq!(cluster.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_mebibyte_body_is_one_failed_job_and_is_not_read_whole() {
    let cluster = BadCluster::start(Fault::TenMebibyteBody).await;
    let (status, job, count) = run_against(&cluster.base_url).await;
    assert_eq!((status, count), (502, 1));
    assert_eq!(error_of(&job), "response larger than 1 MiB", "{job}");
    assert!(job["response_summary"].as_str().unwrap_or_default().len() <= 4096);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_never_finish_time_out_as_one_job() {
    let cluster = BadCluster::start(Fault::HeadersNeverFinish).await;
    let (status, job, count) = run_against(&cluster.base_url).await;
    assert_eq!((status, count), (504, 1));
    assert_eq!(job["status"], "timed_out");
    assert!(job["upstream_status"].is_null(), "{job}");
    assert!(error_of(&job).contains("1s"), "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_is_one_failed_job() {
    let cluster = BadCluster::start(Fault::InvalidJson).await;
    let (status, job, count) = run_against(&cluster.base_url).await;
    assert_eq!((status, count), (502, 1));
    assert_eq!(job["upstream_status"], 200);
    assert!(error_of(&job).contains("not JSON"), "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_page_with_200_is_one_failed_job() {
    let cluster = BadCluster::start(Fault::HtmlPage).await;
    let (status, job, count) = run_against(&cluster.base_url).await;
    assert_eq!((status, count), (502, 1));
    assert!(error_of(&job).contains("not JSON"), "{job}");
    assert!(job["response_summary"]
        .as_str()
        .unwrap_or_default()
        .contains("maintenance"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_is_not_followed() {
    let elsewhere = BadCluster::start_on("127.0.0.2:0", Fault::InvalidJson).await;
    let port: u16 = elsewhere
        .base_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let cluster = BadCluster::start(Fault::RedirectElsewhere(port)).await;

    let (status, job, count) = run_against(&cluster.base_url).await;

    assert_eq!((status, count), (502, 1));
    assert_eq!(job["upstream_status"], 307);
    assert!(error_of(&job).contains("not followed"), "{job}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        elsewhere.requests.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}
