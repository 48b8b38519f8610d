//! `runs`: queue a run from a file of CIDs, list and show runs, cancel one,
//! and watch one to its end. A running `serve` (any instance on the store)
//! sends the batches; these commands only talk to the store, through the
//! service, as the rules there say.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;

use super::{console, Output, StoreArgs};
use crate::config::Config;
use crate::domain::cid::cids_from_file;
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::format_time;
use crate::domain::run::{Run, RunCommand, RunStatus};
use crate::service::jobs::PageParams;
use crate::service::runs::{Queued, RunFilterParams, RunRequest};
use crate::service::Actor;

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Queue a run over the CIDs of a file (a CID per line, or a CSV's `cid`
    /// column) and print its id; a running `serve` sends its batches.
    Create {
        /// The user the run is queued for (an admin or operator).
        #[arg(long)]
        user: String,
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        action: String,
        /// A text file (a CID per line) or a CSV file (its `cid` column, else the first).
        #[arg(long)]
        file: PathBuf,
        /// CIDs per batch: 1 to the action's max_cids (the default).
        #[arg(long)]
        batch_size: Option<i64>,
        #[arg(long)]
        reason: Option<String>,
        /// Start at this time (RFC 3339), at most 30 days ahead.
        #[arg(long)]
        run_at: Option<String>,
        /// Run it even though the same action ran on the same customers
        /// within the duplicate guard's window.
        #[arg(long)]
        confirm_duplicate: bool,
        /// The run's key: the same key again answers the same run instead
        /// of queuing a second one (default: a new key).
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List runs, newest first.
    List {
        #[command(flatten)]
        filters: RunFilterParams,
        /// How many runs (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print the API's JSON document instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one run as JSON, then its batches as a table.
    Show {
        run_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Cancel a run: its unsent batches are cancelled, the ones sent finish.
    Cancel {
        run_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Follow a run with a progress bar until it ends: exit 0 when every
    /// customer is ok, 1 otherwise.
    Watch {
        run_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// How often `watch` reads the run.
const WATCH_EVERY: Duration = Duration::from_millis(500);

fn done_count(run: &Run) -> u64 {
    let c = run.customers;
    (c.ok + c.failed + c.unknown).max(0) as u64
}

fn is_over(run: &Run) -> bool {
    run.status == RunStatus::Finished
        || (run.status == RunStatus::Cancelled && run.finished_at.is_some())
}

fn summary(run: &Run) -> String {
    let c = run.customers;
    format!(
        "run {} {}: {} customers, ok {}, failed {}, unknown {}, not run {}",
        run.run_id, run.status, run.cid_count, c.ok, c.failed, c.unknown, c.not_run
    )
}

pub async fn run_runs(
    config: &Config,
    command: RunsCommand,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    match command {
        RunsCommand::Create {
            user,
            cluster,
            action,
            file,
            batch_size,
            reason,
            run_at,
            confirm_duplicate,
            idempotency_key,
            store,
        } => {
            let bytes = std::fs::read(&file)
                .with_context(|| format!("Failed to read {}", file.display()))?;
            let name = file.to_string_lossy();
            let read = cids_from_file(&name, &bytes)
                .with_context(|| format!("{} holds no list of customer IDs", file.display()))?;
            if let Some(header) = &read.header {
                eprintln!("left out the header line {header:?} of {}", file.display());
            }
            if read.rows_with_extra_cells > 0 {
                eprintln!(
                    "{} line(s) of {} had more than one cell: only the first cell of each is a CID",
                    read.rows_with_extra_cells,
                    file.display()
                );
            }
            let cids = read.cids;
            let key = idempotency_key.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            let key = IdempotencyKey::parse(Some(key.as_bytes()))
                .map_err(|e| anyhow::anyhow!("--idempotency-key: {e:?}"))?;
            let service = console(config, &store).await?;
            let request = RunRequest {
                cluster,
                action,
                cids,
                batch_size,
                reason,
                confirm_duplicate: Some(confirm_duplicate),
                run_at,
            };
            let answer = service
                .runs()
                .create_for(&service, &user, key, request)
                .await?;
            match answer.created {
                Queued::Run(run_id) => {
                    writeln!(out, "{run_id}")?;
                    if answer.replayed {
                        eprintln!("this key already queued run {run_id}");
                    }
                }
                Queued::Approval(approval_id) => {
                    writeln!(out, "{approval_id}")?;
                    eprintln!(
                        "this action needs a second person's approval: approval {approval_id} awaits (tms-dashboard approvals show {approval_id})"
                    );
                }
            }
        }
        RunsCommand::List {
            filters,
            limit,
            json,
            store,
        } => {
            let service = console(config, &store).await?;
            let page = PageParams {
                limit: Some(limit.to_string()),
                cursor: None,
            };
            let page = service
                .runs()
                .list(&Actor::Console, &filters, &page)
                .await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"runs": page.runs, "next_cursor": page.next_cursor})
                )?;
            } else {
                writeln!(
                    out,
                    "{:<36}  {:<24}  {:<9} {:>9} {:>9} {:<14} {:<12} USER",
                    "RUN ID", "CREATED", "STATUS", "DONE", "CIDS", "ACTION", "CLUSTER"
                )?;
                for r in &page.runs {
                    writeln!(
                        out,
                        "{:<36}  {:<24}  {:<9} {:>9} {:>9} {:<14} {:<12} {}",
                        r.run_id.to_string(),
                        format_time(&r.created_at),
                        r.status.as_str(),
                        done_count(r),
                        r.cid_count,
                        r.action,
                        r.cluster,
                        r.user
                    )?;
                }
                if page.runs.is_empty() {
                    writeln!(out, "(no runs)")?;
                }
            }
        }
        RunsCommand::Show { run_id, store } => {
            let service = console(config, &store).await?;
            let detail = service.runs().get(&Actor::Console, &run_id).await?;
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "run": detail.run }))?
            )?;
            writeln!(out)?;
            writeln!(
                out,
                "{:>6} {:>6} {:<10} {:<36}  STARTED",
                "BATCH", "CIDS", "STATUS", "JOB ID"
            )?;
            for b in &detail.batches {
                writeln!(
                    out,
                    "{:>6} {:>6} {:<10} {:<36}  {}",
                    b.batch_index,
                    b.cid_count,
                    b.status.as_str(),
                    b.job_id.map(|j| j.to_string()).unwrap_or_default(),
                    b.started_at.as_ref().map(format_time).unwrap_or_default()
                )?;
            }
        }
        RunsCommand::Cancel { run_id, store } => {
            let service = console(config, &store).await?;
            let run = service
                .runs()
                .command(&Actor::Console, &run_id, RunCommand::Cancel)
                .await?;
            writeln!(out, "{}", summary(&run))?;
        }
        RunsCommand::Watch { run_id, store } => {
            let service = console(config, &store).await?;
            let runs = service.runs();
            let run = runs.get(&Actor::Console, &run_id).await?.run;
            let bar = indicatif::ProgressBar::new(run.cid_count.max(0) as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} customers  {msg}  [{elapsed}]",
                )
                .context("progress style")?,
            );
            let run = loop {
                let run = runs.get(&Actor::Console, &run_id).await?.run;
                bar.set_position(done_count(&run));
                bar.set_message(run.status.as_str());
                if is_over(&run) {
                    break run;
                }
                tokio::time::sleep(WATCH_EVERY).await;
            };
            bar.finish();
            writeln!(out, "{}", summary(&run))?;
            out.flush()?;
            let all_ok = run.status == RunStatus::Finished && run.customers.ok == run.cid_count;
            return Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
