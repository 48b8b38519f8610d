//! `tms-dashboard demo`: a fresh store filled with made-up history to try
//! the console on, and `demo legacy PATH`, a file of the old dashboard's
//! shape to try `import legacy` on. What the history holds is decided in
//! `service::demo`; this adapter parses, calls and prints.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use clap::{Args, Subcommand};

use super::{console_as, Output, StoreArgs, StoreUse};
use crate::config::Config;
use crate::service::demo::legacy_file::{write_legacy_file, LegacyPlan, SAMPLE_CLUSTER_URLS};
use crate::service::demo::{check_until, DemoOptions, DEFAULT_SEED};

/// Fills a fresh store; `demo legacy PATH` writes an old-dashboard file instead.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub command: Option<DemoCommand>,
    /// The same seed (and --until) makes the same history, ids included.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// When the history ends, RFC 3339 (default: now).
    #[arg(long, value_parser = parse_until)]
    pub until: Option<DateTime<Utc>>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Write a new SQLite file shaped like the old Flask dashboard's jobs
    /// store (doubled clicks included), for `import legacy` and the
    /// duplicate audit. Touches no store.
    Legacy {
        /// The file to create (refused if it exists).
        path: PathBuf,
        /// The same seed (and --until) makes the same file.
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
        /// When its history ends, RFC 3339 (default: now); it covers the
        /// six weeks before.
        #[arg(long, value_parser = parse_until)]
        until: Option<DateTime<Utc>>,
    },
}

/// Weeks of history in a legacy file made on its own.
const LEGACY_FILE_WEEKS: i64 = 6;
/// Who ran its jobs.
const LEGACY_FILE_USERS: [&str; 5] = ["olga", "piet", "sanjay", "jonas", "admin"];

fn parse_until(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| crate::time::truncate_millis(t.with_timezone(&Utc)))
        .map_err(|_| format!("{s:?} is not an RFC 3339 time like 2026-11-30T18:00:00Z"))
}

pub async fn run_demo(
    config: &Config,
    args: DemoArgs,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    if let Some(DemoCommand::Legacy { path, seed, until }) = args.command {
        let until = until.unwrap_or_else(crate::time::now_millis);
        let plan = LegacyPlan {
            seed,
            since: until - Duration::weeks(LEGACY_FILE_WEEKS),
            until,
            users: LEGACY_FILE_USERS.iter().map(|u| u.to_string()).collect(),
            cluster_urls: SAMPLE_CLUSTER_URLS.iter().map(|u| u.to_string()).collect(),
            actions: config
                .catalog()?
                .iter()
                .map(|a| (a.code, a.name.clone()))
                .collect(),
        };
        let written = write_legacy_file(&path, &plan).await?;
        writeln!(
            out,
            "wrote {}: {} rows of the old dashboard's jobs table, {} doubled click(s) \
             (the duplicate audit finds {} group(s) of 2 at its 2 s window), {} deliberate re-run(s) \
             minutes apart (not duplicates)",
            path.display(),
            written.rows,
            written.doubled_clicks,
            written.doubled_clicks,
            written.reruns
        )?;
        writeln!(out, "next: tms-dashboard import legacy {}", path.display())?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }

    let options = DemoOptions {
        seed: args.seed,
        until: args.until.unwrap_or_else(crate::time::now_millis),
        admin_password: config.admin_password.clone(),
    };
    check_until(options.until)?;
    let service = console_as(config, &args.store, StoreUse::MayCreate).await?;
    let summary = service.fill_demo(&options).await?;
    service.db().close().await;
    let statuses: Vec<String> = summary
        .jobs_by_status
        .iter()
        .map(|(status, n)| format!("{n} {}", status.replace('_', " ")))
        .collect();
    writeln!(
        out,
        "demo: {} jobs over {} days ({}), {} run, {} user(s)",
        summary.jobs(),
        crate::service::demo::HISTORY_DAYS,
        statuses.join(", "),
        usize::from(summary.run.is_some()),
        summary.users.len()
    )?;
    writeln!(
        out,
        "imported {} jobs of the {} days before from the old dashboard, with {} doubled click(s) \
         for `tms-dashboard audit duplicates` to find",
        summary.imported.imported,
        crate::service::demo::LEGACY_DAYS,
        summary.legacy.doubled_clicks
    )?;
    if let Some(rerun) = summary.rerun {
        writeln!(
            out,
            "job {rerun} ran the same customers again on purpose, minutes after the first (confirm_duplicate): \
             the duplicates page lists it only when asked (include_confirmed=true, and a window of minutes: window_s=600)"
        )?;
    }
    if let Some(retry) = summary.retry {
        writeln!(
            out,
            "job {retry} retried the customers a partial job's cluster refused (retry_of)"
        )?;
    }
    if summary.refused_by_guard > 0 {
        writeln!(
            out,
            "{} request(s) refused by the recent-duplicate guard (no job)",
            summary.refused_by_guard
        )?;
    }
    if summary.imported.users_created > 0 {
        writeln!(
            out,
            "the import created {} user(s) of the old dashboard who have no account here (disabled, no password)",
            summary.imported.users_created
        )?;
    }
    writeln!(out, "audit chain: {} job(s) sealed", summary.sealed)?;
    writeln!(out, "users (passwords are shown this once):")?;
    for user in &summary.users {
        match &user.password {
            Some(password) => writeln!(
                out,
                "  {:<8}  {} password: {password}",
                user.role.as_str(),
                user.username
            )?,
            None => writeln!(
                out,
                "  {:<8}  {} (it existed already, or its password came from TMS_ADMIN_PASSWORD)",
                user.role.as_str(),
                user.username
            )?,
        }
    }
    writeln!(
        out,
        "next: tms-dashboard serve (on the same store), then log in"
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
