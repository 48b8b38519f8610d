//! `/runs/{run_id}`: one run — its progress, counters and batches (each
//! linking to its job), the pause, resume, cancel and retry buttons for
//! whoever may steer it, and the CSV of its customers. `static/run.js`
//! keeps it live by reading the API while the run goes on. An operator gets
//! the same 404 for another user's run as for no run.

use askama::Template;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;

use super::common::{render, show_time, thousands, Chrome, PageResult, PageUser};
use super::runs::{customers_done, short_id, short_run_id};
use crate::domain::job::format_time;
use crate::domain::run::{Batch, Run, RunCommand, RunStatus};
use crate::http::AppState;
use crate::service::jobs::PageParams;
use crate::service::runs::RunFilterParams;

/// How many of the user's newest runs are looked through for retries of
/// this one.
const RETRY_LOOKUP: &str = "200";

pub fn router() -> Router<AppState> {
    Router::new().route("/runs/{run_id}", get(show))
}

/// A time with its machine-readable form.
pub struct Shown {
    pub text: String,
    pub iso: String,
}

fn shown(t: &chrono::DateTime<chrono::Utc>) -> Shown {
    Shown {
        text: show_time(t),
        iso: format_time(t),
    }
}

/// One row of the batch table.
pub struct BatchRow {
    pub index: i64,
    pub number: i64,
    pub cid_count: String,
    pub status: &'static str,
    pub job_id: Option<String>,
    pub short_job_id: Option<String>,
    pub started: Option<Shown>,
}

impl BatchRow {
    fn new(batch: &Batch) -> Self {
        BatchRow {
            index: batch.batch_index,
            number: batch.batch_index + 1,
            cid_count: thousands(batch.cid_count),
            status: batch.status.as_str(),
            job_id: batch.job_id.map(|j| j.to_string()),
            short_job_id: batch.job_id.map(|j| short_id(&j.as_uuid())),
            started: batch.started_at.as_ref().map(shown),
        }
    }
}

/// A counter with the id the live updates find it by.
pub struct Counter {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
}

/// A steering button: its id, label, and the statuses it applies to (the
/// domain's transitions), so the page shows it only when it applies.
pub struct CommandButton {
    pub id: &'static str,
    pub command: &'static str,
    pub label: &'static str,
    pub applies: String,
    pub shown: bool,
    pub danger: bool,
}

fn statuses(list: &[RunStatus]) -> String {
    list.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn command_button(
    command: RunCommand,
    id: &'static str,
    label: &'static str,
    status: RunStatus,
) -> CommandButton {
    let (from, _) = command.transition();
    CommandButton {
        id,
        command: command.as_str(),
        label,
        applies: statuses(from),
        shown: from.contains(&status),
        danger: command == RunCommand::Cancel,
    }
}

/// A run this one retried, or that retried it.
pub struct RelatedRun {
    pub id: String,
    pub short_id: String,
    pub status: &'static str,
    pub created: String,
}

impl RelatedRun {
    fn new(run: &Run) -> Self {
        RelatedRun {
            id: run.run_id.to_string(),
            short_id: short_run_id(&run.run_id),
            status: run.status.as_str(),
            created: show_time(&run.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    chrome: Chrome,
    id: String,
    run: Run,
    status: &'static str,
    over: bool,
    done: i64,
    progress_text: String,
    /// What the live updates are doing, beside the progress.
    live_note: String,
    cid_count: String,
    batch_count: String,
    created: Shown,
    started: Option<Shown>,
    finished: Option<Shown>,
    run_at: Option<Shown>,
    batch_counters: Vec<Counter>,
    customer_counters: Vec<Counter>,
    batches: Vec<BatchRow>,
    may_steer: bool,
    commands: Vec<CommandButton>,
    retry_applies: String,
    retry_shown: bool,
    retry_of: Option<RelatedRun>,
    retry_of_id: Option<String>,
    retries: Vec<RelatedRun>,
}

/// "1,203 of 1,203 customers done".
pub fn progress_text(run: &Run) -> String {
    format!(
        "{} of {} customer{} done",
        thousands(customers_done(run)),
        thousands(run.cid_count),
        if run.cid_count == 1 { "" } else { "s" }
    )
}

/// Beside the progress: what the page is waiting for, if anything.
fn live_note(run: &Run) -> String {
    match (run.status, run.run_at) {
        (RunStatus::Scheduled, Some(at)) => format!("· starts at {}", show_time(&at)),
        (status, _) if status.is_over() && run.batches.running > 0 => {
            "· the batches already sent are finishing".to_owned()
        }
        (status, _) if status.is_over() => String::new(),
        _ => "· updated live".to_owned(),
    }
}

fn counters(run: &Run) -> (Vec<Counter>, Vec<Counter>) {
    let b = &run.batches;
    let c = &run.customers;
    let counter = |name, label, n: i64| Counter {
        name,
        label,
        value: thousands(n),
    };
    (
        vec![
            counter("queued", "queued", b.queued),
            counter("running", "running", b.running),
            counter("succeeded", "succeeded", b.succeeded),
            counter("partial", "partial", b.partial),
            counter("failed", "failed", b.failed),
            counter("timed_out", "timed out", b.timed_out),
            counter("unknown", "unknown", b.unknown),
            counter("cancelled", "cancelled", b.cancelled),
        ],
        vec![
            counter("ok", "ok", c.ok),
            counter("failed", "failed", c.failed),
            counter("unknown", "unknown", c.unknown),
            counter("not_run", "not run", c.not_run),
        ],
    )
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn show(
    State(state): State<AppState>,
    page_user: PageUser,
    Path(run_id): Path<String>,
) -> PageResult {
    let actor = page_user.actor();
    let runs = state.service.runs();
    let detail = runs.get(&actor, &run_id).await?;
    let run = detail.run;

    // The run it retried, when the viewer may see it.
    let retry_of = match run.retry_of {
        Some(id) => runs
            .get(&actor, &id.to_string())
            .await
            .ok()
            .map(|d| RelatedRun::new(&d.run)),
        None => None,
    };
    // The runs that retried it: the newest runs of its user, cluster and
    // action that the viewer may see.
    let same = RunFilterParams {
        user: Some(run.user.clone()),
        cluster: Some(run.cluster.clone()),
        action: Some(run.action.clone()),
        status: None,
    };
    let page = PageParams {
        limit: Some(RETRY_LOOKUP.to_owned()),
        cursor: None,
    };
    let retries = match runs.list(&actor, &same, &page).await {
        Ok(list) => list
            .runs
            .iter()
            .filter(|r| r.retry_of == Some(run.run_id))
            .map(RelatedRun::new)
            .collect(),
        Err(_) => Vec::new(),
    };

    let status = run.status;
    let (batch_counters, customer_counters) = counters(&run);
    let over_statuses: Vec<RunStatus> =
        RunStatus::ALL.into_iter().filter(|s| s.is_over()).collect();
    let retryable = run.customers.failed + run.customers.unknown + run.customers.not_run > 0;
    render(&RunPage {
        chrome: page_user.chrome("runs"),
        id: run.run_id.to_string(),
        status: status.as_str(),
        over: status.is_over(),
        done: customers_done(&run),
        progress_text: progress_text(&run),
        live_note: live_note(&run),
        cid_count: thousands(run.cid_count),
        batch_count: thousands(run.batch_count),
        created: shown(&run.created_at),
        started: run.started_at.as_ref().map(shown),
        finished: run.finished_at.as_ref().map(shown),
        run_at: run.run_at.as_ref().map(shown),
        batch_counters,
        customer_counters,
        batches: detail.batches.iter().map(BatchRow::new).collect(),
        may_steer: detail.may_steer,
        commands: vec![
            command_button(RunCommand::Pause, "run-pause", "Pause", status),
            command_button(RunCommand::Resume, "run-resume", "Resume", status),
            command_button(RunCommand::Cancel, "run-cancel", "Cancel the run", status),
        ],
        retry_applies: statuses(&over_statuses),
        retry_shown: status.is_over() && retryable,
        retry_of_id: run.retry_of.map(|r| r.to_string()),
        retry_of,
        retries,
        run,
    })
}
