//! What happened to each customer of a job (SPEC §12). A cluster that
//! answers with a success body may list, per CID, whether it applied the
//! action; from the job's answer each CID gets exactly one outcome, and the
//! job its status. Pure rules: the execution feeds an answer in and stores
//! what comes out, in the same transaction as the job's finalisation.

use serde::Serialize;
use serde_json::Value;

use super::job::JobStatus;

/// A CID's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    Unknown,
    Pending,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Self::Ok, Self::Failed, Self::Unknown, Self::Pending];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A refused CID's error keeps at most this many characters.
pub const MAX_CID_ERROR_CHARS: usize = 500;
/// A refusal that gave no reason.
pub const REFUSED: &str = "refused by the cluster";

/// One customer of a job: its CID, outcome and error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CustomerOutcome {
    pub cid: String,
    pub outcome: Outcome,
    pub error: Option<String>,
}

/// How many of a job's customers ended each way; they add up to the job's
/// `cid_count`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    pub ok: i64,
    pub failed: i64,
    pub unknown: i64,
    pub pending: i64,
}

impl OutcomeCounts {
    pub fn of(customers: &[CustomerOutcome]) -> Self {
        let mut counts = OutcomeCounts::default();
        for c in customers {
            match c.outcome {
                Outcome::Ok => counts.ok += 1,
                Outcome::Failed => counts.failed += 1,
                Outcome::Unknown => counts.unknown += 1,
                Outcome::Pending => counts.pending += 1,
            }
        }
        counts
    }

    /// Every CID `pending`: a job still running.
    pub fn pending(cid_count: i64) -> Self {
        OutcomeCounts {
            pending: cid_count,
            ..OutcomeCounts::default()
        }
    }
}

/// One job in a customer's history: the job, and what it did to this
/// customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub job_id: super::job::JobId,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub action_code: i64,
    pub job_status: JobStatus,
    pub outcome: Outcome,
    pub error: Option<String>,
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_CID_ERROR_CHARS).collect()
}

/// Every CID with the same outcome and error (a job that failed, timed out
/// or is unknown as a whole).
pub fn all(cids: &[String], outcome: Outcome, error: Option<&str>) -> Vec<CustomerOutcome> {
    cids.iter()
        .map(|cid| CustomerOutcome {
            cid: cid.clone(),
            outcome,
            error: error.map(cut),
        })
        .collect()
}

/// What a success body said about each CID, and the job that makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: JobStatus,
    /// The job's error: null when every customer is `ok` or when some are
    /// and the cluster's list could be read; a sentence otherwise.
    pub error: Option<String>,
    /// In the order of the request.
    pub customers: Vec<CustomerOutcome>,
}

/// Reads a success body's `results` for the CIDs of the request, in their
/// order. An entry naming a CID outside the request is ignored; a CID
/// listed twice counts once, its first entry; a CID not listed is `unknown`.
/// A `results` the cluster got wrong (not an array, entries without a
/// string `cid` or a boolean `ok`) never fails the request: what cannot be
/// placed is `unknown`, and the job says so in its error.
pub fn read_success(cids: &[String], body: &Value) -> Verdict {
    let Some(results) = body.get("results") else {
        return verdict(all(cids, Outcome::Ok, None), None);
    };
    let mut unreadable = 0usize;
    let mut said: std::collections::HashMap<&str, (bool, Option<String>)> =
        std::collections::HashMap::with_capacity(cids.len());
    let wanted: std::collections::HashSet<&str> = cids.iter().map(String::as_str).collect();
    let problem = match results {
        Value::Array(entries) => {
            for entry in entries {
                let cid = entry.get("cid").and_then(Value::as_str);
                let ok = entry.get("ok").and_then(Value::as_bool);
                let (Some(cid), Some(ok)) = (cid, ok) else {
                    unreadable += 1;
                    continue;
                };
                if !wanted.contains(cid) || said.contains_key(cid) {
                    continue;
                }
                let error = (!ok).then(|| {
                    entry
                        .get("error")
                        .and_then(Value::as_str)
                        .filter(|e| !e.trim().is_empty())
                        .map_or_else(|| REFUSED.to_owned(), cut)
                });
                said.insert(cid, (ok, error));
            }
            (unreadable > 0).then(|| {
                format!("{unreadable} of the cluster's result entries could not be read (each needs a string cid and a boolean ok); their customers are unknown")
            })
        }
        _ => Some(
            "the cluster's results could not be read (not a list); every customer is unknown"
                .to_owned(),
        ),
    };
    let customers = cids
        .iter()
        .map(|cid| match said.remove(cid.as_str()) {
            Some((true, _)) => CustomerOutcome {
                cid: cid.clone(),
                outcome: Outcome::Ok,
                error: None,
            },
            Some((false, error)) => CustomerOutcome {
                cid: cid.clone(),
                outcome: Outcome::Failed,
                error,
            },
            None => CustomerOutcome {
                cid: cid.clone(),
                outcome: Outcome::Unknown,
                error: None,
            },
        })
        .collect();
    verdict(customers, problem)
}

/// The job's status from its customers: all `ok` succeeded, some partial,
/// none failed.
fn verdict(customers: Vec<CustomerOutcome>, problem: Option<String>) -> Verdict {
    let counts = OutcomeCounts::of(&customers);
    let total = customers.len();
    let (status, error) = if counts.ok as usize == total {
        (JobStatus::Succeeded, None)
    } else if counts.ok > 0 {
        (JobStatus::Partial, problem)
    } else {
        let none = format!("the cluster applied the action to none of the {total} customers");
        let error = match problem {
            Some(p) => format!("{none} ({p})"),
            None => none,
        };
        (JobStatus::Failed, Some(error))
    };
    Verdict {
        status,
        error,
        customers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cids(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| c.to_string()).collect()
    }

    fn outcomes(v: &Verdict) -> Vec<(&str, Outcome, Option<&str>)> {
        v.customers
            .iter()
            .map(|c| (c.cid.as_str(), c.outcome, c.error.as_deref()))
            .collect()
    }

    #[test]
    fn a_success_without_results_is_every_customer_ok() {
        let v = read_success(&cids(&["A", "B"]), &json!({"status": "success"}));
        assert_eq!(v.status, JobStatus::Succeeded);
        assert_eq!(v.error, None);
        assert!(v.customers.iter().all(|c| c.outcome == Outcome::Ok));
    }

    #[test]
    fn listed_refused_and_unlisted_cids_make_a_partial_job() {
        let body = json!({"status": "success", "results": [
            {"cid": "A", "ok": true},
            {"cid": "B", "ok": false, "error": "customer is locked"},
            {"cid": "C", "ok": false},
            {"cid": "ELSEWHERE", "ok": false},
            {"cid": "A", "ok": false, "error": "a second entry for A"},
        ]});
        let v = read_success(&cids(&["A", "B", "C", "D"]), &body);
        assert_eq!(v.status, JobStatus::Partial);
        assert_eq!(v.error, None);
        assert_eq!(
            outcomes(&v),
            [
                ("A", Outcome::Ok, None),
                ("B", Outcome::Failed, Some("customer is locked")),
                ("C", Outcome::Failed, Some(REFUSED)),
                ("D", Outcome::Unknown, None),
            ]
        );
    }

    #[test]
    fn no_customer_ok_fails_the_job_and_keeps_each_outcome() {
        let body = json!({"status": "success", "results": [{"cid": "A", "ok": false}]});
        let v = read_success(&cids(&["A", "B"]), &body);
        assert_eq!(v.status, JobStatus::Failed);
        assert_eq!(
            v.error.as_deref(),
            Some("the cluster applied the action to none of the 2 customers")
        );
        assert_eq!(
            outcomes(&v),
            [
                ("A", Outcome::Failed, Some(REFUSED)),
                ("B", Outcome::Unknown, None)
            ]
        );
    }

    #[test]
    fn malformed_results_never_fail_the_request_and_the_job_says_so() {
        let body = json!({"status": "success", "results": [
            {"cid": "A", "ok": true}, {"ok": true}, {"cid": "B", "ok": "yes"}, 7,
        ]});
        let v = read_success(&cids(&["A", "B"]), &body);
        assert_eq!(v.status, JobStatus::Partial);
        assert!(v
            .error
            .as_deref()
            .unwrap()
            .starts_with("3 of the cluster's result entries"));
        let v = read_success(
            &cids(&["A"]),
            &json!({"status": "success", "results": {"A": true}}),
        );
        assert_eq!(v.status, JobStatus::Failed);
        assert!(v.error.as_deref().unwrap().contains("not a list"), "{v:?}");
        assert_eq!(v.customers[0].outcome, Outcome::Unknown);
    }

    #[test]
    fn a_refusal_is_cut_to_500_characters_and_ten_thousand_entries_are_read() {
        let long = "é".repeat(900);
        let mut entries: Vec<Value> = (0..10_000)
            .map(|i| json!({"cid": format!("X{i}"), "ok": true}))
            .collect();
        entries.push(json!({"cid": "B", "ok": false, "error": long}));
        let v = read_success(&cids(&["X9999", "B"]), &json!({"results": entries}));
        assert_eq!(v.status, JobStatus::Partial);
        assert_eq!(v.customers[1].error.as_ref().unwrap().chars().count(), 500);
    }

    #[test]
    fn counts_add_up() {
        let v = read_success(
            &cids(&["A", "B", "C"]),
            &json!({"results": [{"cid": "A", "ok": true}, {"cid": "B", "ok": false}]}),
        );
        let c = OutcomeCounts::of(&v.customers);
        assert_eq!((c.ok, c.failed, c.unknown, c.pending), (1, 1, 1, 0));
    }
}
