//! The OpenAPI description of the domain types the API answers with: a job,
//! a user and their parts. The domain keeps only its serde derives (the
//! service stores a job's JSON as the replay body, so the API's bytes are
//! the domain's) and carries no OpenAPI concerns; these mirrors describe
//! that JSON from the HTTP layer instead. Each takes the name of the type it
//! mirrors (`#[schema(as = ...)]`) and its doc comments are the document's
//! descriptions; the envelopes, and the service's documented input types,
//! point at it with `value_type`.
//!
//! A mirror is never built, so nothing makes it follow its domain type: the
//! tests below serialise samples of each with serde and compare them with
//! the generated document, member by member.

use chrono::{DateTime, Utc};
use utoipa::ToSchema;

/// A job's id: a UUIDv7 for jobs this product creates (time-ordered).
#[derive(ToSchema)]
#[schema(as = JobId)]
pub struct JobIdSchema(pub uuid::Uuid);

/// Where a job stands. Only `pending` may change, and only once.
#[derive(ToSchema)]
#[schema(as = JobStatus)]
#[serde(rename_all = "snake_case")]
pub enum JobStatusSchema {
    Pending,
    Succeeded,
    /// Some customers `ok`, some not (the cluster listed them).
    Partial,
    Failed,
    TimedOut,
    /// The instance running it stopped before the outcome was recorded.
    Unknown,
}

/// A job as the API returns it.
#[derive(ToSchema)]
#[schema(as = Job, example = json!({"job_id": "0193f1c2-5a10-7c3e-9a51-2f4b8c1d0e11", "user": "admin",
    "cluster": "sandbox", "action": "Trans-Begin", "action_code": 1, "cids": ["C1001", "C1002"],
    "cid_count": 2, "status": "succeeded", "upstream_status": 200,
    "response_summary": "{\"status\": \"success\", \"processed\": 2}", "error": null,
    "created_at": "2026-11-29T10:00:00.123Z", "finished_at": "2026-11-29T10:00:00.140Z",
    "duration_ms": 17, "duplicate_of": null, "reason": null, "confirm_duplicate": false,
    "replay_count": 0, "last_replay_at": null,
    "phases": {"claimed_at": "2026-11-29T10:00:00.123Z", "sent_at": "2026-11-29T10:00:00.125Z",
        "answered_at": "2026-11-29T10:00:00.138Z", "finalized_at": "2026-11-29T10:00:00.140Z"},
    "audit_hash": "5e0c6a0f3b1d2e4f", "imported": false, "legacy_id": null,
    "outcomes": {"ok": 2, "failed": 0, "unknown": 0, "pending": 0}, "retry_of": null,
    "run_id": null, "batch_index": null, "approved_by": null, "approval_id": null}))]
pub struct JobSchema {
    pub job_id: JobIdSchema,
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub action_code: i64,
    pub cids: Vec<String>,
    pub cid_count: i64,
    pub status: JobStatusSchema,
    pub upstream_status: Option<i64>,
    pub response_summary: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub duplicate_of: Option<JobIdSchema>,
    pub reason: Option<String>,
    pub confirm_duplicate: bool,
    pub replay_count: i64,
    pub last_replay_at: Option<DateTime<Utc>>,
    pub phases: PhasesSchema,
    /// Links the job to the previously sealed one; null until sealed.
    pub audit_hash: Option<String>,
    /// Brought in from the old dashboard by `import legacy`.
    pub imported: bool,
    /// The old dashboard's id, when it was not a UUID and a new one was given.
    pub legacy_id: Option<String>,
    /// How many customers ended each way; they add up to `cid_count`.
    pub outcomes: OutcomeCountsSchema,
    /// The job whose failed customers this one runs again.
    pub retry_of: Option<JobIdSchema>,
    /// The run this job is a batch of; null for a job outside runs.
    pub run_id: Option<uuid::Uuid>,
    /// Which batch of the run (0-based); null for a job outside runs.
    pub batch_index: Option<i64>,
    /// Who approved the request, for an action that needs four eyes.
    pub approved_by: Option<String>,
    /// The approval the job executed; null without one.
    pub approval_id: Option<uuid::Uuid>,
}

/// How many of a job's customers ended each way.
#[derive(ToSchema)]
#[schema(as = OutcomeCounts)]
pub struct OutcomeCountsSchema {
    pub ok: i64,
    pub failed: i64,
    pub unknown: i64,
    pub pending: i64,
}

/// When a job passed each phase of its run; phases not reached are null.
#[derive(ToSchema)]
#[schema(as = Phases)]
pub struct PhasesSchema {
    /// The claim transaction: the job's creation.
    pub claimed_at: Option<DateTime<Utc>>,
    /// The request left for the cluster.
    pub sent_at: Option<DateTime<Utc>>,
    /// The cluster's answer arrived (null on timeouts and connection errors).
    pub answered_at: Option<DateTime<Utc>>,
    /// The outcome was recorded.
    pub finalized_at: Option<DateTime<Utc>>,
}

/// What a user may do.
#[derive(ToSchema)]
#[schema(as = Role)]
#[serde(rename_all = "lowercase")]
pub enum RoleSchema {
    /// Everything, including user management.
    Admin,
    /// Executes actions; sees only their own jobs.
    Operator,
    /// Sees all jobs and duplicate reports; cannot execute.
    Auditor,
}

/// A user as the API shows it.
#[derive(ToSchema)]
#[schema(as = User, example = json!({"username": "olga", "role": "operator", "disabled": false,
    "created_at": "2026-11-29T10:00:00.000Z"}))]
pub struct UserSchema {
    pub username: String,
    pub role: RoleSchema,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// An event of the feed (SPEC §15): one change, numbered without gaps and
/// chained to the previous event by its hash.
#[derive(ToSchema)]
#[schema(as = Event, example = json!({"event_id": "0193f1c2-5a10-7c3e-9a51-2f4b8c1d0e12", "seq": 1,
    "type": "job.created", "occurred_at": "2026-11-29T10:00:00.123Z", "actor": "admin",
    "subject": {"job_id": "0193f1c2-5a10-7c3e-9a51-2f4b8c1d0e11"}, "data": {"status": "pending"},
    "prev_hash": "0000000000000000000000000000000000000000000000000000000000000000",
    "hash": "9f2c0b6e1d3a4f5e6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"}))]
pub struct EventDoc {
    /// A UUIDv7; receivers de-duplicate by it (it is the webhook's `webhook-id`).
    pub event_id: uuid::Uuid,
    /// 1, 2, 3, … without gaps.
    pub seq: i64,
    /// `job.created`, `job.finalized`, `run.created`, `run.status_changed`,
    /// `approval.requested`, `approval.decided`, `user.created`,
    /// `user.changed`, `token.created`, `token.revoked`, `session.login`,
    /// `session.login_failed` or `session.logout`.
    #[schema(rename = "type")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    /// Who made the change; null for the console itself (the sweep, the scheduler).
    pub actor: Option<String>,
    /// The object: `{"job_id"}`, `{"run_id"}`, `{"approval_id"}`, `{"username"}`, `{"token_id", "username"}`.
    #[schema(value_type = Object)]
    pub subject: serde_json::Value,
    /// The object after the change, without any secret.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// The previous event's hash; 64 zeros for event 1.
    pub prev_hash: String,
    /// SHA-256 (lower-case hex) of `prev_hash` followed by the RFC 8785
    /// canonical JSON of this event without `hash` and `prev_hash`.
    pub hash: String,
}

/// CIDs as they arrived, before validation: either one pasted text or an
/// array of strings.
#[derive(ToSchema)]
#[schema(as = CidsInput)]
#[serde(untagged)]
pub enum CidsInputSchema {
    List(Vec<String>),
    Text(String),
}

/// A customer's outcome in a job.
#[derive(ToSchema)]
#[schema(as = Outcome)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeSchema {
    Ok,
    Failed,
    Unknown,
    Pending,
}

/// One customer of a job: its CID, outcome, and error (null unless failed).
#[derive(ToSchema)]
#[schema(as = CustomerOutcome, example = json!({"cid": "C1002", "outcome": "failed", "error": "customer is locked"}))]
pub struct CustomerOutcomeSchema {
    pub cid: String,
    pub outcome: OutcomeSchema,
    pub error: Option<String>,
}

/// One job of a customer's history, and what it did to the customer.
#[derive(ToSchema)]
#[schema(as = HistoryEntry)]
pub struct HistoryEntrySchema {
    pub job_id: JobIdSchema,
    pub created_at: DateTime<Utc>,
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub action_code: i64,
    pub job_status: JobStatusSchema,
    pub outcome: OutcomeSchema,
    pub error: Option<String>,
}

/// The body of `POST /api/v1/actions` (`service::execution::SetActionRequest`).
#[derive(ToSchema)]
#[schema(as = SetActionRequest)]
pub struct SetActionRequestSchema {
    pub cluster: String,
    pub action: String,
    pub cids: CidsInputSchema,
    /// Only for a cluster without a server-side token; never stored or logged.
    pub token: Option<String>,
    pub confirm_duplicate: Option<bool>,
    pub reason: Option<String>,
}

/// The body of `POST /api/v1/jobs/{job_id}/retry` (`service::execution::RetryRequest`).
#[derive(ToSchema)]
#[schema(as = RetryRequest, example = json!({"include_unknown": false, "reason": "INC-4711"}))]
pub struct RetryRequestSchema {
    /// Also the customers whose outcome is `unknown`.
    pub include_unknown: Option<bool>,
    /// Not inherited from the job: an action with `reason_required` needs one here.
    pub reason: Option<String>,
    /// Only for a cluster without a server-side token; never stored or logged.
    pub token: Option<String>,
}

/// Where a run stands.
#[derive(ToSchema)]
#[schema(as = RunStatus)]
#[serde(rename_all = "snake_case")]
pub enum RunStatusSchema {
    /// Waits for its `run_at`.
    Scheduled,
    /// No batch sent yet.
    Queued,
    Running,
    /// Sends no new batch until resumed.
    Paused,
    /// Sends no new batch again; its unsent batches are `cancelled`.
    Cancelled,
    /// Every batch ended.
    Finished,
}

/// How many of a run's batches stand each way; they add up to `batch_count`.
#[derive(ToSchema)]
#[schema(as = BatchCounts)]
pub struct BatchCountsSchema {
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub partial: i64,
    pub failed: i64,
    pub timed_out: i64,
    pub unknown: i64,
    pub cancelled: i64,
}

/// How many of a run's customers ended each way; they add up to
/// `cid_count`. A CID of a queued, running or cancelled batch is `not_run`.
#[derive(ToSchema)]
#[schema(as = RunCustomerCounts)]
pub struct RunCustomerCountsSchema {
    pub ok: i64,
    pub failed: i64,
    pub unknown: i64,
    pub not_run: i64,
}

/// A run: one confirmed request over many customers, sent in batches.
#[derive(ToSchema)]
#[schema(as = Run, example = json!({"run_id": "01a23be6-3992-7f0c-a005-fb3634c6ea8d", "user": "olga",
    "cluster": "sandbox", "action": "Trans-Begin", "action_code": 1, "reason": "INC-4711",
    "cid_count": 1200, "batch_size": 500, "batch_count": 3, "status": "running",
    "batches": {"queued": 1, "running": 1, "succeeded": 1, "partial": 0, "failed": 0,
        "timed_out": 0, "unknown": 0, "cancelled": 0},
    "customers": {"ok": 500, "failed": 0, "unknown": 0, "not_run": 700},
    "run_at": null, "created_at": "2026-11-29T10:00:00.123Z",
    "started_at": "2026-11-29T10:00:00.150Z", "finished_at": null, "retry_of": null,
    "approved_by": null, "approval_id": null}))]
pub struct RunSchema {
    pub run_id: uuid::Uuid,
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub action_code: i64,
    pub reason: Option<String>,
    pub cid_count: i64,
    pub batch_size: i64,
    pub batch_count: i64,
    pub status: RunStatusSchema,
    pub batches: BatchCountsSchema,
    pub customers: RunCustomerCountsSchema,
    /// When a scheduled run starts; null for a run queued at once.
    pub run_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When its first batch was sent.
    pub started_at: Option<DateTime<Utc>>,
    /// When its last batch ended, or it was cancelled with none in flight.
    pub finished_at: Option<DateTime<Utc>>,
    /// The run whose failed customers this one runs again.
    pub retry_of: Option<uuid::Uuid>,
    pub approved_by: Option<String>,
    pub approval_id: Option<uuid::Uuid>,
}

/// Where an approval stands.
#[derive(ToSchema)]
#[schema(as = ApprovalStatus)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatusSchema {
    Awaiting,
    /// Approved, and its job or run created.
    Approved,
    Rejected,
    /// Withdrawn by its requester.
    Cancelled,
    /// Nobody decided before `expires_at`.
    Expired,
}

/// What an approval executes once approved.
#[derive(ToSchema)]
#[schema(as = ApprovalKind)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKindSchema {
    Job,
    Run,
}

/// A request for a dangerous action, frozen exactly as it was checked,
/// waiting for a second person (SPEC §14).
#[derive(ToSchema)]
#[schema(as = Approval, example = json!({"approval_id": "01a23be6-3992-7f0c-a005-fb3634c6ea8d",
    "kind": "job", "status": "awaiting", "requested_by": "olga", "cluster": "prod-eu",
    "action": "Purge-Cache", "action_code": 6, "cids": ["C1001", "C1002"], "cid_count": 2,
    "reason": "INC-4711", "batch_size": null, "run_at": null,
    "created_at": "2026-11-29T10:00:00.123Z", "expires_at": "2026-11-30T10:00:00.123Z",
    "decided_by": null, "decided_at": null, "comment": null, "job_id": null, "run_id": null}))]
pub struct ApprovalSchema {
    pub approval_id: uuid::Uuid,
    pub kind: ApprovalKindSchema,
    pub status: ApprovalStatusSchema,
    pub requested_by: String,
    pub cluster: String,
    pub action: String,
    pub action_code: i64,
    /// Every CID, in the order sent: exactly what runs when approved.
    pub cids: Vec<String>,
    pub cid_count: i64,
    pub reason: Option<String>,
    /// For a run: its batch size; null for a job.
    pub batch_size: Option<i64>,
    /// For a run: when it starts; null to start once approved.
    pub run_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// `approval_ttl` after its creation.
    pub expires_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    /// The job it executed (kind job), once approved.
    pub job_id: Option<uuid::Uuid>,
    /// The run it queued (kind run), once approved.
    pub run_id: Option<uuid::Uuid>,
}

/// The body of approve, reject and cancel.
#[derive(ToSchema)]
#[schema(as = DecisionRequest)]
pub struct DecisionRequestSchema {
    /// 3 to 500 characters; required to reject.
    #[schema(min_length = 3, max_length = 500)]
    pub comment: Option<String>,
}

/// What a run did to one customer.
#[derive(ToSchema)]
#[schema(as = RunOutcome)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcomeSchema {
    Ok,
    Failed,
    Unknown,
    /// Its batch is being sent.
    Pending,
    /// Its batch is queued, or was cancelled.
    NotRun,
}

/// One customer of a run, with its batch's job (null while not sent).
#[derive(ToSchema)]
#[schema(as = RunCustomer, example = json!({"cid": "C1002", "outcome": "failed",
    "error": "customer is locked", "job_id": "01a23be6-3992-7f0c-a005-fb3634c6ea8d"}))]
pub struct RunCustomerSchema {
    pub cid: String,
    pub outcome: RunOutcomeSchema,
    pub error: Option<String>,
    pub job_id: Option<JobIdSchema>,
}

/// One batch of a run.
#[derive(ToSchema)]
#[schema(as = Batch)]
pub struct BatchSchema {
    pub batch_index: i64,
    pub cid_count: i64,
    pub status: BatchStatusSchema,
    /// Its job, once sent.
    pub job_id: Option<JobIdSchema>,
    pub started_at: Option<DateTime<Utc>>,
}

/// Where a batch stands.
#[derive(ToSchema)]
#[schema(as = BatchStatus)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatusSchema {
    Queued,
    Running,
    Succeeded,
    Partial,
    Failed,
    TimedOut,
    Unknown,
    Cancelled,
}

/// The body of `POST /api/v1/runs` (`service::runs::RunRequest`).
#[derive(ToSchema)]
#[schema(as = RunRequest, example = json!({"cluster": "sandbox", "action": "Trans-Begin",
    "cids": ["C1001", "C1002", "C1003"], "batch_size": 500, "reason": "INC-4711"}))]
pub struct RunRequestSchema {
    pub cluster: String,
    pub action: String,
    pub cids: CidsInputSchema,
    /// CIDs per batch: 1 to the action's `max_cids`, which is the default.
    #[schema(minimum = 1)]
    pub batch_size: Option<i64>,
    pub reason: Option<String>,
    pub confirm_duplicate: Option<bool>,
    /// Start at this time (RFC 3339): in the future, at most 30 days ahead.
    pub run_at: Option<DateTime<Utc>>,
}

/// The body of `POST /api/v1/runs/{run_id}/retry` (`service::runs::RunRetryRequest`).
#[derive(ToSchema)]
#[schema(as = RunRetryRequest, example = json!({"include_unknown": false, "reason": "INC-4711"}))]
pub struct RunRetryRequestSchema {
    /// Also the customers whose outcome is `unknown` or `not_run`.
    pub include_unknown: Option<bool>,
    /// Not inherited from the run: an action with `reason_required` needs one here.
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{DateTime, Utc};
    use serde_json::{json, Value};

    use crate::domain::approval::ApprovalId;
    use crate::domain::cid::CidsInput;
    use crate::domain::job::{Job, JobId, JobStatus, Phases};
    use crate::domain::outcome::{CustomerOutcome, HistoryEntry, Outcome, OutcomeCounts};
    use crate::domain::run::{
        Batch, BatchCounts, BatchStatus, Run, RunCustomerCounts, RunId, RunOutcome, RunStatus,
    };
    use crate::domain::user::{Role, User};
    use crate::http::api::catalog::{ActionView, ClusterView};
    use crate::http::api::tokens::TokenView;
    use crate::http::openapi::document;
    use crate::service::runs::RunCustomerView;

    fn component<'a>(doc: &'a Value, name: &str) -> &'a Value {
        let schema = &doc["components"]["schemas"][name];
        assert!(schema.is_object(), "the document has no schema {name}");
        schema
    }

    /// The JSON type of a value, as a schema's `type` names it.
    fn json_type(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The part of `schema` that admits a value of JSON type `ty`, following
    /// `$ref` and `oneOf` (how utoipa writes `Option<Mirror>` and untagged enums).
    fn admitting<'a>(doc: &'a Value, schema: &'a Value, ty: &str) -> Option<&'a Value> {
        if let Some(name) = schema["$ref"].as_str() {
            let name = name.trim_start_matches("#/components/schemas/");
            return admitting(doc, component(doc, name), ty);
        }
        let admits = |t: &str| t == ty || (t == "number" && ty == "integer");
        let typed = match &schema["type"] {
            Value::String(t) => admits(t),
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(admits),
            _ => false,
        };
        if typed {
            return Some(schema);
        }
        let alternatives = schema["oneOf"].as_array().into_iter().flatten();
        alternatives
            .filter_map(|alternative| admitting(doc, alternative, ty))
            .next()
    }

    /// Checks what serde wrote against the document: every value of a type
    /// the schema admits, every object with exactly the schema's properties,
    /// every string of an enum one of its names; arrays and nested objects
    /// too.
    fn check(doc: &Value, schema: &Value, value: &Value, at: &str) {
        let ty = json_type(value);
        let Some(schema) = admitting(doc, schema, ty) else {
            panic!("{at}: serde writes a {ty} ({value}), the document admits none: {schema}");
        };
        match value {
            // A free-form object (an event's `subject` and `data`).
            Value::Object(_)
                if schema.get("properties").is_none() && schema["type"] == "object" => {}
            Value::Object(members) => {
                let properties = schema["properties"].as_object();
                let documented: BTreeSet<&str> = properties
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.as_str())
                    .collect();
                let written: BTreeSet<&str> = members.keys().map(String::as_str).collect();
                assert_eq!(
                    written, documented,
                    "{at}: the members serde writes (left) are not the documented ones (right)"
                );
                for (name, member) in members {
                    check(
                        doc,
                        &schema["properties"][name],
                        member,
                        &format!("{at}.{name}"),
                    );
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(doc, &schema["items"], item, &format!("{at}[{i}]"));
                }
            }
            Value::String(s) => {
                if let Some(names) = schema["enum"].as_array() {
                    assert!(names.contains(value), "{at}: {s:?} is not in {names:?}");
                }
            }
            _ => {}
        }
    }

    fn check_component(doc: &Value, name: &str, sample: impl serde::Serialize) {
        let value = serde_json::to_value(sample).unwrap();
        check(doc, component(doc, name), &value, name);
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// Every member filled, so no `Option` hides one.
    fn full_job() -> Job {
        let id = JobId::parse("0193f1c2-5a10-7c3e-9a51-2f4b8c1d0e11").unwrap();
        Job {
            job_id: id,
            user: "olga".into(),
            cluster: "sandbox".into(),
            action: "Trans-Begin".into(),
            action_code: 1,
            cids: vec!["C1001".into(), "C1002".into()],
            cid_count: 2,
            status: JobStatus::Succeeded,
            upstream_status: Some(200),
            response_summary: Some("ok".into()),
            error: Some("none".into()),
            created_at: at("2026-11-29T10:00:00.123Z"),
            finished_at: Some(at("2026-11-29T10:00:00.140Z")),
            duration_ms: Some(17),
            duplicate_of: Some(id),
            reason: Some("TICKET-1".into()),
            confirm_duplicate: true,
            replay_count: 1,
            last_replay_at: Some(at("2026-11-29T10:00:01.000Z")),
            phases: Phases {
                claimed_at: Some(at("2026-11-29T10:00:00.123Z")),
                sent_at: Some(at("2026-11-29T10:00:00.125Z")),
                answered_at: Some(at("2026-11-29T10:00:00.138Z")),
                finalized_at: Some(at("2026-11-29T10:00:00.140Z")),
            },
            audit_hash: Some("5e0c6a0f3b1d2e4f".into()),
            imported: true,
            legacy_id: Some("legacy-7".into()),
            outcomes: OutcomeCounts {
                ok: 1,
                failed: 1,
                unknown: 0,
                pending: 0,
            },
            retry_of: Some(id),
            run_id: Some(crate::domain::run::RunId::from_uuid(uuid::Uuid::now_v7())),
            batch_index: Some(3),
            approved_by: Some("piet".into()),
            approval_id: Some(ApprovalId::from_uuid(uuid::Uuid::now_v7())),
        }
    }

    /// Fails when a domain type the API answers with gains, loses or renames
    /// a member, or changes its JSON type or nullability, and its mirror
    /// (or DTO) is not changed with it.
    #[test]
    fn the_document_describes_exactly_what_serde_writes() {
        let doc = document();

        let job = full_job();
        check_component(&doc, "Job", &job);
        // Every `Option` empty: each must be documented as nullable.
        let pending = Job {
            status: JobStatus::Pending,
            upstream_status: None,
            response_summary: None,
            error: None,
            finished_at: None,
            duration_ms: None,
            duplicate_of: None,
            reason: None,
            last_replay_at: None,
            phases: Phases::default(),
            audit_hash: None,
            legacy_id: None,
            retry_of: None,
            run_id: None,
            batch_index: None,
            approved_by: None,
            approval_id: None,
            ..full_job()
        };
        check_component(&doc, "Job", &pending);

        let user = User {
            username: "olga".into(),
            role: Role::Operator,
            disabled: false,
            created_at: at("2026-11-29T10:00:00.000Z"),
        };
        check_component(&doc, "User", &user);

        for actor in [Some("olga".to_owned()), None] {
            let event = crate::domain::event::Event {
                event_id: job.job_id.as_uuid(),
                seq: 1,
                event_type: "user.created".into(),
                occurred_at: "2026-11-29T10:00:00.000Z".into(),
                actor,
                subject: serde_json::json!({"username": "olga"}),
                data: serde_json::to_value(&user).unwrap(),
                prev_hash: crate::domain::event::GENESIS_HASH.into(),
                hash: "h".into(),
            };
            check_component(&doc, "Event", &event);
        }
        for (error, at_time) in [
            (Some("cannot connect".to_owned()), None),
            (None, Some(at("2026-11-29T10:00:00.000Z"))),
        ] {
            let sink = crate::sinks::SinkStatus {
                name: "siem".into(),
                kind: "syslog".into(),
                delivered_seq: 3,
                pending: 0,
                last_error: error,
                last_success_at: at_time,
            };
            check_component(&doc, "SinkStatus", &sink);
        }

        let token = TokenView {
            id: job.job_id.as_uuid(),
            name: "nightly report".into(),
            created_at: at("2026-11-29T10:00:00.000Z"),
            last_used_at: Some(at("2026-11-29T11:00:00.000Z")),
        };
        check_component(&doc, "TokenInfo", &token);
        check_component(
            &doc,
            "TokenInfo",
            TokenView {
                last_used_at: None,
                ..token
            },
        );

        let catalog = crate::domain::action::ActionCatalog::default();
        for action in catalog.iter() {
            check_component(&doc, "ActionView", ActionView::from(action));
        }
        let cluster = crate::domain::cluster::Cluster {
            name: "sandbox".into(),
            label: "Sandbox".into(),
            base_url: "http://127.0.0.1:1".into(),
            token: None,
            max_in_flight: 4,
            max_per_second: None,
            approval_required: false,
        };
        check_component(&doc, "ClusterView", ClusterView::from(&cluster));

        for error in [Some("customer is locked".to_owned()), None] {
            let customer = CustomerOutcome {
                cid: "C1".into(),
                outcome: Outcome::Failed,
                error: error.clone(),
            };
            check_component(&doc, "CustomerOutcome", &customer);
            let entry = HistoryEntry {
                job_id: JobId::from_uuid(uuid::Uuid::now_v7()),
                created_at: at("2026-11-29T10:00:00.123Z"),
                user: "olga".into(),
                cluster: "sandbox".into(),
                action: "Suspend".into(),
                action_code: 3,
                job_status: JobStatus::Partial,
                outcome: Outcome::Failed,
                error,
            };
            check_component(&doc, "HistoryEntry", &entry);
        }

        let run = Run {
            run_id: RunId::new_at(at("2026-11-29T10:00:00.123Z")),
            user: "olga".into(),
            cluster: "sandbox".into(),
            action: "Trans-Begin".into(),
            action_code: 1,
            reason: Some("INC-4711".into()),
            cid_count: 1200,
            batch_size: 500,
            batch_count: 3,
            status: RunStatus::Running,
            batches: BatchCounts {
                queued: 1,
                running: 1,
                succeeded: 1,
                ..BatchCounts::default()
            },
            customers: RunCustomerCounts {
                ok: 500,
                not_run: 700,
                ..RunCustomerCounts::default()
            },
            run_at: Some(at("2026-11-29T10:00:00.000Z")),
            created_at: at("2026-11-29T09:00:00.000Z"),
            started_at: Some(at("2026-11-29T10:00:00.150Z")),
            finished_at: Some(at("2026-11-29T10:05:00.150Z")),
            retry_of: Some(RunId::new_at(at("2026-11-28T10:00:00.000Z"))),
            approved_by: Some("piet".into()),
            approval_id: Some(ApprovalId::from_uuid(uuid::Uuid::now_v7())),
        };
        check_component(&doc, "Run", &run);
        let bare = Run {
            reason: None,
            run_at: None,
            started_at: None,
            finished_at: None,
            retry_of: None,
            approved_by: None,
            approval_id: None,
            ..run.clone()
        };
        check_component(&doc, "Run", &bare);

        let approval = crate::domain::approval::Approval {
            approval_id: ApprovalId::new_at(at("2026-11-29T10:00:00.000Z")),
            kind: crate::domain::approval::ApprovalKind::Run,
            status: crate::domain::approval::ApprovalStatus::Approved,
            requested_by: "olga".into(),
            cluster: "sandbox".into(),
            action: "Purge-Cache".into(),
            action_code: 6,
            cids: vec!["C1".into()],
            cid_count: 1,
            reason: Some("INC-1".into()),
            batch_size: Some(500),
            run_at: Some(at("2026-11-29T12:00:00.000Z")),
            created_at: at("2026-11-29T10:00:00.000Z"),
            expires_at: at("2026-11-30T10:00:00.000Z"),
            decided_by: Some("piet".into()),
            decided_at: Some(at("2026-11-29T10:05:00.000Z")),
            comment: Some("looks right".into()),
            job_id: Some(JobId::from_uuid(uuid::Uuid::now_v7())),
            run_id: Some(RunId::new_at(at("2026-11-29T10:05:00.000Z"))),
        };
        check_component(&doc, "Approval", &approval);
        let awaiting = crate::domain::approval::Approval {
            kind: crate::domain::approval::ApprovalKind::Job,
            status: crate::domain::approval::ApprovalStatus::Awaiting,
            reason: None,
            batch_size: None,
            run_at: None,
            decided_by: None,
            decided_at: None,
            comment: None,
            job_id: None,
            run_id: None,
            ..approval
        };
        check_component(&doc, "Approval", &awaiting);
        for job_id in [Some(JobId::from_uuid(uuid::Uuid::now_v7())), None] {
            let customer = RunCustomerView {
                cid: "C1".into(),
                outcome: RunOutcome::NotRun,
                error: job_id.map(|_| "customer is locked".to_owned()),
                job_id,
            };
            check_component(&doc, "RunCustomer", &customer);
            let batch = Batch {
                batch_index: 0,
                cid_count: 500,
                status: BatchStatus::TimedOut,
                job_id,
                started_at: job_id.map(|_| at("2026-11-29T10:00:00.150Z")),
            };
            check_component(&doc, "Batch", &batch);
        }

        // CidsInput is only read: both forms it reads must be documented.
        for sent in [json!(["C1001", "C1002"]), json!("C1001, C1002")] {
            assert!(serde_json::from_value::<CidsInput>(sent.clone()).is_ok());
            check(&doc, component(&doc, "CidsInput"), &sent, "CidsInput");
        }
    }

    /// The enums list exactly the names serde writes, no more, no fewer.
    #[test]
    fn enum_schemas_list_exactly_the_serde_names() {
        let doc = document();
        let names = |values: Vec<Value>| -> BTreeSet<String> {
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let documented = |name: &str| {
            names(
                component(&doc, name)["enum"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            )
        };

        let statuses = JobStatus::ALL.map(|s| serde_json::to_value(s).unwrap());
        assert_eq!(documented("JobStatus"), names(statuses.to_vec()));
        assert_eq!(
            documented("JobStatus"),
            names(
                [
                    "pending",
                    "succeeded",
                    "partial",
                    "failed",
                    "timed_out",
                    "unknown"
                ]
                .map(Value::from)
                .to_vec()
            )
        );

        let outcomes = Outcome::ALL.map(|o| serde_json::to_value(o).unwrap());
        assert_eq!(documented("Outcome"), names(outcomes.to_vec()));

        let run_statuses = RunStatus::ALL.map(|s| serde_json::to_value(s).unwrap());
        assert_eq!(documented("RunStatus"), names(run_statuses.to_vec()));
        let batch_statuses = BatchStatus::ALL.map(|s| serde_json::to_value(s).unwrap());
        assert_eq!(documented("BatchStatus"), names(batch_statuses.to_vec()));
        let run_outcomes = RunOutcome::ALL.map(|s| serde_json::to_value(s).unwrap());
        assert_eq!(documented("RunOutcome"), names(run_outcomes.to_vec()));

        let roles = <Role as clap::ValueEnum>::value_variants();
        let roles = roles.iter().map(|r| serde_json::to_value(r).unwrap());
        assert_eq!(documented("Role"), names(roles.collect()));
        assert_eq!(
            documented("Role"),
            names(["admin", "operator", "auditor"].map(Value::from).to_vec())
        );
    }
}
