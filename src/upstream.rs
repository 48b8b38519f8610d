//! The cluster client: one request per job, bounded in time and in the size
//! of what it reads, classified into exactly one outcome.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::action::{Action, UpstreamMethod};
use crate::domain::cid::CidList;
use crate::domain::cluster::Cluster;
use crate::domain::job::{now_millis, summarize, JobId};
use crate::domain::secret::Secret;

/// Reads of the upstream body stop here.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How one upstream call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer whose JSON body reports success; `body` is that JSON,
    /// for what it says about each customer.
    Succeeded {
        upstream_status: u16,
        summary: Option<String>,
        body: Value,
    },
    Failed {
        upstream_status: Option<u16>,
        summary: Option<String>,
        error: String,
    },
    TimedOut {
        error: String,
    },
}

/// The call's outcome, how long the cluster took, and when the request left
/// and its answer arrived (no answer: `None`).
#[derive(Clone, Debug)]
pub struct CallResult {
    pub outcome: Outcome,
    pub elapsed: Duration,
    pub sent_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// Calls clusters; holds one connection pool for all of them.
#[derive(Clone, Debug)]
pub struct UpstreamClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl UpstreamClient {
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            // A redirect could lead outside the cluster's host: never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(timeout)
            .pool_max_idle_per_host(64)
            .user_agent(concat!("tms-dashboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, timeout })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends the action once, with `Idempotency-Key: <job_id>`, and
    /// classifies the answer.
    pub async fn call(
        &self,
        cluster: &Cluster,
        action: &Action,
        cids: &CidList,
        token: &Secret,
        job_id: JobId,
    ) -> CallResult {
        let started = Instant::now();
        let url = format!("{}{}", cluster.base_url, action.path);
        let body = serde_json::json!({
            "action": action.name,
            "action_code": action.code,
            "cids": cids,
        });
        let method = match action.method {
            UpstreamMethod::Post => reqwest::Method::POST,
            UpstreamMethod::Put => reqwest::Method::PUT,
            UpstreamMethod::Patch => reqwest::Method::PATCH,
        };
        let request = self
            .http
            .request(method, &url)
            .bearer_auth(token.expose())
            .header("Idempotency-Key", job_id.to_string())
            .json(&body);
        let mut answered_at = None;
        let sent_at = now_millis();
        let exchange = async {
            let response = request.send().await.map_err(|e| describe_send_error(&e))?;
            answered_at = Some(now_millis());
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = read_capped(response).await;
            Ok::<_, String>((status, location, body))
        };
        let outcome = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => timed_out(self.timeout),
            Ok(Err(error)) => Outcome::Failed {
                upstream_status: None,
                summary: None,
                error,
            },
            Ok(Ok((status, location, body))) => classify(status, location.as_deref(), body),
        };
        if matches!(outcome, Outcome::TimedOut { .. }) {
            answered_at = None;
        }
        CallResult {
            outcome,
            elapsed: started.elapsed(),
            sent_at,
            answered_at,
        }
    }
}

/// A body read up to the cap, or why it could not be read.
enum Body {
    Complete(Vec<u8>),
    TooLarge(Vec<u8>),
    Broken(String),
}

async fn read_capped(mut response: reqwest::Response) -> Body {
    let mut buf = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_BODY_BYTES {
                    let room = MAX_BODY_BYTES - buf.len();
                    buf.extend_from_slice(&chunk[..room]);
                    return Body::TooLarge(buf);
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Body::Complete(buf),
            Err(e) => {
                return Body::Broken(format!(
                    "the cluster's answer broke off: {}",
                    root_cause(&e)
                ))
            }
        }
    }
}

/// The outcome of a call the cluster did not answer within `timeout`.
pub fn timed_out(timeout: Duration) -> Outcome {
    Outcome::TimedOut {
        error: format!(
            "no answer from the cluster within {}",
            humantime::format_duration(timeout)
        ),
    }
}

/// What a complete answer of the cluster means (`status` and `body`, no
/// redirect): the reading every call's answer gets, for answers the demo
/// simulates.
pub fn read_answer(status: u16, body: &[u8]) -> Outcome {
    classify(status, None, Body::Complete(body.to_vec()))
}

/// The outcome of a call that never reached the cluster, as a connection
/// error says it (`cause`: "connection refused").
pub fn unreachable(cause: &str) -> Outcome {
    Outcome::Failed {
        upstream_status: None,
        summary: None,
        error: unreachable_error(cause),
    }
}

fn unreachable_error(cause: &str) -> String {
    format!("cannot connect to the cluster: {cause}")
}

fn describe_send_error(e: &reqwest::Error) -> String {
    if e.is_connect() {
        unreachable_error(&root_cause(e))
    } else {
        format!("the request to the cluster failed: {}", root_cause(e))
    }
}

/// The innermost cause, which says what really happened ("connection
/// refused"), without the URL.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn classify(status: u16, location: Option<&str>, body: Body) -> Outcome {
    let code = Some(status);
    let bytes = match body {
        Body::Complete(b) => b,
        Body::TooLarge(b) => {
            return Outcome::Failed {
                upstream_status: code,
                summary: summarize(&b),
                error: "response larger than 1 MiB".into(),
            }
        }
        Body::Broken(error) => {
            return Outcome::Failed {
                upstream_status: code,
                summary: None,
                error,
            }
        }
    };
    let summary = summarize(&bytes);
    let json: Option<Value> = serde_json::from_slice(&bytes).ok();
    let message = json
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("error")))
        .and_then(Value::as_str)
        .map(|m| m.chars().take(300).collect::<String>());
    let fail = |error: String| Outcome::Failed {
        upstream_status: code,
        summary: summary.clone(),
        error,
    };
    if (300..400).contains(&status) {
        return fail(format!(
            "the cluster answered HTTP {status} redirecting to {}; redirects are not followed",
            location.unwrap_or("nowhere")
        ));
    }
    if !(200..300).contains(&status) {
        return fail(match message {
            Some(m) => format!("the cluster answered HTTP {status}: {m}"),
            None => format!("the cluster answered HTTP {status}"),
        });
    }
    let Some(json) = json else {
        return fail(format!(
            "the cluster answered HTTP {status} with a body that is not JSON"
        ));
    };
    let success = json.get("status").and_then(Value::as_str) == Some("success")
        || json.get("success").and_then(Value::as_bool) == Some(true);
    if success {
        Outcome::Succeeded {
            upstream_status: status,
            summary,
            body: json,
        }
    } else {
        fail(match message {
            Some(m) => format!("the cluster did not apply the action: {m}"),
            None => "the cluster's answer does not report success".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(s: &str) -> Body {
        Body::Complete(s.as_bytes().to_vec())
    }

    #[test]
    fn success_needs_a_2xx_and_a_json_body_saying_so() {
        assert!(matches!(
            classify(200, None, complete(r#"{"status":"success"}"#)),
            Outcome::Succeeded { .. }
        ));
        assert!(matches!(
            classify(201, None, complete(r#"{"success":true}"#)),
            Outcome::Succeeded { .. }
        ));
        assert!(matches!(
            classify(200, None, complete(r#"{"status":"error","message":"no"}"#)),
            Outcome::Failed { .. }
        ));
        assert!(matches!(
            classify(200, None, complete("<html>ok</html>")),
            Outcome::Failed { .. }
        ));
        assert!(matches!(
            classify(500, None, complete(r#"{"status":"success"}"#)),
            Outcome::Failed { .. }
        ));
    }

    #[test]
    fn errors_say_what_the_cluster_said() {
        let Outcome::Failed {
            error,
            upstream_status,
            ..
        } = classify(
            500,
            None,
            complete(r#"{"status":"error","message":"simulated failure"}"#),
        )
        else {
            panic!()
        };
        assert_eq!(upstream_status, Some(500));
        assert!(
            error.contains("500") && error.contains("simulated failure"),
            "{error}"
        );
    }

    #[test]
    fn redirects_and_oversized_bodies_fail() {
        let Outcome::Failed { error, .. } = classify(302, Some("http://elsewhere/"), complete(""))
        else {
            panic!()
        };
        assert!(error.contains("not followed"));
        let Outcome::Failed { error, .. } = classify(
            200,
            None,
            Body::TooLarge(b"{\"status\":\"success\"".to_vec()),
        ) else {
            panic!()
        };
        assert_eq!(error, "response larger than 1 MiB");
    }

    #[test]
    fn summaries_stop_at_4_kib_on_a_character_boundary() {
        let body = "é".repeat(3000);
        let summary = summarize(body.as_bytes()).unwrap();
        assert!(
            summary.len() <= crate::domain::job::SUMMARY_BYTES && summary.chars().all(|c| c == 'é')
        );
        assert_eq!(summarize(b""), None);
    }
}
