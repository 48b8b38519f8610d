//! The sandbox cluster: a simulated TMS API implementing the contract the
//! console calls, so the product can be tried and tested with no real
//! cluster. Magic CIDs make its answers deterministic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::domain::cluster::SANDBOX_TOKEN;

/// How the sandbox behaves.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    pub token: String,
    /// Added before every answer.
    pub latency: Duration,
    /// Share of requests (0–1) answered with a simulated 500.
    pub fail_rate: f64,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            token: SANDBOX_TOKEN.into(),
            latency: Duration::ZERO,
            fail_rate: 0.0,
        }
    }
}

type Answer = (u16, Value);

struct Sandbox {
    options: SandboxOptions,
    requests_total: AtomicU64,
    /// Requests being answered now, and the most there ever were at once:
    /// what proves a cluster's `max_in_flight` held.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// What each `Idempotency-Key` received.
    keys: Mutex<HashMap<String, KeyRecord>>,
}

/// One `Idempotency-Key`'s record.
struct KeyRecord {
    /// The first answer given under it. A cell per key so a concurrent
    /// repeat waits for the first answer instead of applying twice.
    answer: Arc<OnceCell<Answer>>,
    /// When it first arrived and how often: what lets a checker tell
    /// whether a job reached the cluster after its console had given it up.
    first_at: chrono::DateTime<chrono::Utc>,
    requests: u64,
}

/// The sandbox's routes (`/api/v1/...`), to serve at a root or nest.
pub fn router(options: SandboxOptions) -> Router {
    let state = Arc::new(Sandbox {
        options,
        requests_total: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        max_in_flight: AtomicU64::new(0),
        keys: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/api/v1/customers/actions", post(apply_action))
        .route("/api/v1/_stats", get(stats))
        .route("/api/v1/_keys", get(keys))
        .with_state(state)
}

/// Serves the sandbox on its own until Ctrl-C or SIGTERM.
pub async fn serve_standalone(
    listener: tokio::net::TcpListener,
    options: SandboxOptions,
) -> anyhow::Result<()> {
    axum::serve(listener, router(options))
        .with_graceful_shutdown(crate::net::shutdown_signal())
        .await?;
    Ok(())
}

async fn stats(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    let distinct_keys = sandbox.keys.lock().map(|k| k.len()).unwrap_or(0);
    Json(json!({
        "requests_total": sandbox.requests_total.load(Ordering::SeqCst),
        "distinct_keys": distinct_keys,
        "in_flight": sandbox.in_flight.load(Ordering::SeqCst),
        "max_in_flight": sandbox.max_in_flight.load(Ordering::SeqCst),
    }))
}

/// Every `Idempotency-Key` received: when it first came, and how many
/// requests carried it.
async fn keys(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    let keys: Vec<Value> = sandbox
        .keys
        .lock()
        .map(|keys| {
            keys.iter()
                .map(|(key, record)| {
                    json!({"key": key, "first_at": crate::time::format_time(&record.first_at),
                        "requests": record.requests})
                })
                .collect()
        })
        .unwrap_or_default();
    Json(json!({ "keys": keys }))
}

fn reply((status, body): Answer) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(body),
    )
        .into_response()
}

async fn apply_action(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let authorised = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == sandbox.options.token);
    if !authorised {
        return reply((
            401,
            json!({"status": "error", "message": "missing or wrong bearer token"}),
        ));
    }
    sandbox.requests_total.fetch_add(1, Ordering::SeqCst);
    let now = sandbox.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    sandbox.max_in_flight.fetch_max(now, Ordering::SeqCst);
    // Counted down also when the client goes away mid-answer.
    let _in_flight = InFlight(&sandbox.in_flight);
    answer_request(&sandbox, &headers, &body).await
}

struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer_request(sandbox: &Sandbox, headers: &HeaderMap, body: &[u8]) -> Response {
    let cids: Vec<String> = match serde_json::from_slice::<Value>(body) {
        Ok(v) => match v.get("cids").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect(),
            None => {
                return reply((
                    400,
                    json!({"status": "error", "message": "body needs a cids array"}),
                ))
            }
        },
        Err(_) => {
            return reply((
                400,
                json!({"status": "error", "message": "body is not JSON"}),
            ))
        }
    };

    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match key {
        None => reply(answer(&sandbox.options, &cids).await),
        Some(key) => {
            let cell = {
                let Ok(mut keys) = sandbox.keys.lock() else {
                    return reply((
                        500,
                        json!({"status": "error", "message": "sandbox state poisoned"}),
                    ));
                };
                let record = keys
                    .entry(key)
                    .and_modify(|r| r.requests += 1)
                    .or_insert_with(|| KeyRecord {
                        answer: Arc::default(),
                        first_at: chrono::Utc::now(),
                        requests: 1,
                    });
                record.answer.clone()
            };
            reply(
                cell.get_or_init(|| answer(&sandbox.options, &cids))
                    .await
                    .clone(),
            )
        }
    }
}

/// What the simulated cluster does with these CIDs. The first of `FAIL`,
/// `REJECT`, `SLOW` and `DELAY` decides the whole answer.
async fn answer(options: &SandboxOptions, cids: &[String]) -> Answer {
    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }
    for cid in cids {
        if cid.starts_with("FAIL") {
            return (
                500,
                json!({"status": "error", "message": "simulated failure"}),
            );
        }
        if cid.starts_with("REJECT") {
            return (
                200,
                json!({"status": "error", "message": "simulated rejection"}),
            );
        }
        if cid.starts_with("SLOW") {
            // Dropped with the request when the client goes away.
            tokio::time::sleep(Duration::from_secs(120)).await;
            break;
        }
        if let Some(rest) = cid.strip_prefix("DELAY") {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(ms) = digits.parse::<u64>() {
                tokio::time::sleep(Duration::from_millis(ms.min(600_000))).await;
                break;
            }
        }
    }
    if options.fail_rate > 0.0 && rand::thread_rng().gen_bool(options.fail_rate.clamp(0.0, 1.0)) {
        return (
            500,
            json!({"status": "error", "message": "simulated random failure"}),
        );
    }
    // Per customer: `NOPE…` is refused, `LOST…` left out of the list; neither
    // decides the whole answer.
    let results: Vec<Value> = cids
        .iter()
        .filter(|cid| !cid.starts_with("LOST"))
        .map(|cid| {
            if cid.starts_with("NOPE") {
                json!({"cid": cid, "ok": false, "error": "simulated refusal for this customer"})
            } else {
                json!({"cid": cid, "ok": true})
            }
        })
        .collect();
    let processed = results.iter().filter(|r| r["ok"] == true).count();
    (
        200,
        json!({"status": "success", "processed": processed, "results": results}),
    )
}
