//! The audit commands: `audit duplicates`, `audit dedupe`, `import legacy`
//! and `jobs export`. Each parses its flags, calls `service::audit`, and prints
//! for a person (tables, a progress bar on a terminal) or for a program
//! (`--json`, CSV, NDJSON), with exit codes cron and CI can read.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::{console, open_store, open_store_as, Output, StoreArgs, StoreUse};
use crate::config::Config;
use crate::domain::job::format_time;
use crate::domain::query::JobFilter;
use crate::service::accounts::ensure_admin;
use crate::service::audit::dedupe::{dedupe, DedupeEvent, DEFAULT_BATCH};
use crate::service::audit::duplicates::{DuplicateGroup, DuplicateParams, DuplicateScan, Window};
use crate::service::audit::export::{export_to_writer, ExportFormat};
use crate::service::audit::legacy::{import_legacy, parse_legacy_time, ImportEvent, ImportOptions};
use crate::service::audit::seal;
use crate::service::jobs::JobFilterParams;
use crate::service::Actor;
use crate::store::Db;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Report duplicate jobs; exit 0 when there are none (PASS), 1 when there are (FAIL), 2 on error.
    Duplicates {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Also list groups already marked by `audit dedupe` (they never fail the check).
        #[arg(long)]
        include_marked: bool,
        /// Also count jobs run again on purpose (`confirm_duplicate`), which
        /// are left out otherwise.
        #[arg(long)]
        include_confirmed: bool,
        /// Print the API's JSON document instead of tables.
        #[arg(long)]
        json: bool,
        /// How many of the most recent jobs to list after the groups.
        #[arg(long, default_value_t = 10)]
        recent: u32,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Mark every later job of a duplicate group with duplicate_of = its first job. A dry run unless --apply.
    Dedupe {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Write the marks (otherwise only list what would be marked).
        #[arg(long)]
        apply: bool,
        /// Marks per transaction.
        #[arg(long, default_value_t = DEFAULT_BATCH)]
        batch: usize,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Re-compute the tamper-evident chain of sealed jobs; exit 0 intact, 1 broken (naming the first
    /// job where it breaks), 2 on error.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Which jobs the duplicate audit looks at.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// Longest gap between two jobs of a group: 2s, 500ms, 1m (gaps equal to it count).
    #[arg(long, default_value = "2s", value_parser = Window::parse)]
    pub window: Window,
    /// Only jobs created at or after this time (RFC 3339 or YYYY-MM-DD[ HH:MM:SS], UTC).
    #[arg(long, value_parser = parse_cli_time)]
    pub since: Option<DateTime<Utc>>,
    /// Only jobs created before this time.
    #[arg(long, value_parser = parse_cli_time)]
    pub until: Option<DateTime<Utc>>,
}

impl ScopeArgs {
    fn params(&self, include_marked: bool) -> DuplicateParams {
        DuplicateParams {
            window: self.window,
            since: self.since,
            until: self.until,
            include_marked,
        }
    }

    fn describe(&self) -> String {
        let mut text = format!("window {}", self.window);
        match (self.since, self.until) {
            (None, None) => text.push_str(", all history"),
            (since, until) => {
                if let Some(t) = since {
                    text.push_str(&format!(", since {}", format_time(&t)));
                }
                if let Some(t) = until {
                    text.push_str(&format!(", until {}", format_time(&t)));
                }
            }
        }
        text
    }
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import the jobs table of the old Flask dashboard's SQLite file; re-running skips what is already in.
    Legacy {
        /// The old dashboard's SQLite file (opened read-only).
        path: PathBuf,
        /// Read and check everything, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rows per transaction.
        #[arg(long, default_value_t = crate::service::audit::legacy::DEFAULT_BATCH)]
        batch: usize,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `jobs export`: the same filters as `jobs list`, every matching job.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    #[command(flatten)]
    pub filters: JobFilterParams,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A time on the command line: RFC 3339, the SQLite forms, or a date.
fn parse_cli_time(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    let t = if t.len() == 10 {
        format!("{t} 00:00:00")
    } else {
        t.to_owned()
    };
    parse_legacy_time(&t).ok_or_else(|| format!("{s:?} is not a time like 2025-03-01T08:00:00Z"))
}

/// A bar on a terminal; nothing when standard output is a pipe or a file.
fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {what} ({{eta}} left)");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

pub async fn run_audit(
    config: &Config,
    command: AuditCommand,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { store } => {
            let db = open_store(config, &store).await?;
            // Seal what is finalised but not yet sealed, so the check covers it.
            seal::seal_pending(&db).await?;
            let verification = seal::verify(&db).await?;
            db.close().await;
            if let Some((first, removed)) = verification.starts_at {
                writeln!(
                    out,
                    "the kept chain starts at sealed job number {first}: retention removed the {removed} job(s) before it, and the chain is anchored to the last of them"
                )?;
            }
            let code = match verification.broken {
                None => {
                    writeln!(
                        out,
                        "PASS: the chain of {} sealed job(s) is intact",
                        verification.checked
                    )?;
                    ExitCode::SUCCESS
                }
                Some(link) => {
                    writeln!(
                        out,
                        "FAIL: the chain breaks at job {} (sealed number {}): {}; the {} job(s) before it are intact",
                        link.job_id, link.seq, link.reason, verification.checked
                    )?;
                    ExitCode::from(1)
                }
            };
            out.flush()?;
            Ok(code)
        }
        AuditCommand::Duplicates {
            scope,
            include_marked,
            include_confirmed,
            json,
            recent,
            store,
        } => {
            let db = open_store(config, &store).await?;
            let params = scope.params(include_marked);
            let unresolved = if json {
                print_json_report(&db, &params, include_confirmed, out).await?
            } else {
                print_report(&db, &params, include_confirmed, &scope, recent, out).await?
            };
            db.close().await;
            Ok(ExitCode::from(if unresolved > 0 { 1 } else { 0 }))
        }
        AuditCommand::Dedupe {
            scope,
            apply,
            batch,
            store,
        } => {
            let db = open_store(config, &store).await?;
            let params = scope.params(false);
            let total = db
                .count_scanned_jobs(DuplicateScan::new(&db, &params).range())
                .await?;
            let bar = progress_bar(u64::try_from(total).unwrap_or(0), "jobs scanned");
            let summary = dedupe(&db, &params, apply, batch, |event| match event {
                DedupeEvent::Mark(m) if !apply => bar.suspend(|| {
                    let _ = writeln!(
                        out,
                        "would mark {} ({}, {} on {}, {}) as a duplicate of {}",
                        m.job_id,
                        m.user,
                        m.action,
                        m.cluster,
                        format_time(&m.created_at),
                        m.duplicate_of
                    );
                }),
                DedupeEvent::Mark(_) => {}
                DedupeEvent::Progress(n) => bar.set_position(n),
            })
            .await?;
            bar.finish_and_clear();
            db.close().await;
            if apply {
                writeln!(
                    out,
                    "marked {} job(s) in {} group(s) as duplicates ({}); {} already marked; {} jobs scanned; nothing deleted",
                    summary.marked,
                    summary.groups,
                    scope.describe(),
                    summary.already_marked,
                    summary.jobs_scanned
                )?;
            } else {
                writeln!(
                    out,
                    "dry run: {} job(s) in {} group(s) would be marked ({}); {} already marked; {} jobs scanned; run again with --apply to mark them",
                    summary.to_mark,
                    summary.groups,
                    scope.describe(),
                    summary.already_marked,
                    summary.jobs_scanned
                )?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Streams `{"groups": [...], "count": N}`; returns the unresolved groups.
async fn print_json_report(
    db: &Db,
    params: &DuplicateParams,
    include_confirmed: bool,
    out: &mut Output,
) -> anyhow::Result<u64> {
    let mut scan = DuplicateScan::new(db, params).including_confirmed(include_confirmed);
    let (mut count, mut unresolved) = (0u64, 0u64);
    out.write_all(b"{\"groups\":[")?;
    while let Some(group) = scan.next_group().await? {
        if count > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, &group)?;
        count += 1;
        unresolved += u64::from(!group.marked);
    }
    writeln!(out, "],\"count\":{count}}}")?;
    out.flush()?;
    Ok(unresolved)
}

const RULE: &str = "-------------------------------------------------------------------------------------------------";

/// The groups as a table, then the most recent jobs, then PASS or FAIL.
async fn print_report(
    db: &Db,
    params: &DuplicateParams,
    include_confirmed: bool,
    scope: &ScopeArgs,
    recent: u32,
    out: &mut Output,
) -> anyhow::Result<u64> {
    writeln!(out, "Duplicate groups ({})", scope.describe())?;
    writeln!(out, "{RULE}")?;
    writeln!(
        out,
        "{:<16} {:<22} {:<14} {:>5} {:>5}  {:<24}  {:>8}",
        "USER", "CLUSTER", "ACTION", "CIDS", "JOBS", "FIRST", "SPAN"
    )?;
    let mut scan = DuplicateScan::new(db, params).including_confirmed(include_confirmed);
    let (mut count, mut unresolved, mut jobs) = (0u64, 0u64, 0u64);
    while let Some(group) = scan.next_group().await? {
        write_group(out, &group)?;
        count += 1;
        jobs += group.job_ids.len() as u64;
        unresolved += u64::from(!group.marked);
        if out.reader_gone() && unresolved > 0 {
            // Nobody reads on, and the verdict (FAIL) is known.
            return Ok(unresolved);
        }
    }
    if count == 0 {
        writeln!(out, "(none)")?;
    }
    writeln!(out)?;
    if recent > 0 {
        write_recent(out, db, recent).await?;
    }
    if unresolved == 0 {
        let marked = if count > 0 {
            format!(" ({count} group(s) already marked)")
        } else {
            String::new()
        };
        writeln!(
            out,
            "PASS: no unmarked duplicate jobs among {} jobs scanned ({}){marked}",
            scan.rows_seen(),
            scope.describe()
        )?;
    } else {
        writeln!(
            out,
            "FAIL: {unresolved} duplicate group(s) not yet marked, {jobs} jobs in {count} group(s) listed, {} jobs scanned ({}); `audit dedupe --apply` marks them",
            scan.rows_seen(),
            scope.describe()
        )?;
    }
    out.flush()?;
    Ok(unresolved)
}

fn write_group(out: &mut impl Write, g: &DuplicateGroup) -> std::io::Result<()> {
    let span = (g.last_at - g.first_at).num_milliseconds() as f64 / 1000.0;
    writeln!(
        out,
        "{:<16} {:<22} {:<14} {:>5} {:>5}  {:<24}  {:>7.3}s{}",
        g.user,
        g.cluster,
        g.action,
        g.cid_count,
        g.job_ids.len(),
        format_time(&g.first_at),
        span,
        if g.marked { "  (marked)" } else { "" }
    )?;
    for (i, m) in g.members.iter().enumerate() {
        let note = match (i, m.duplicate_of) {
            (0, _) => "first".to_owned(),
            (_, Some(of)) => format!("marked duplicate_of {of}"),
            (_, None) => "duplicate, not marked".to_owned(),
        };
        writeln!(
            out,
            "    {}  {}  {note}",
            m.job_id,
            format_time(&m.created_at)
        )?;
    }
    Ok(())
}

async fn write_recent(out: &mut impl Write, db: &Db, recent: u32) -> anyhow::Result<()> {
    let jobs = db.list_jobs(&JobFilter::default(), None, recent).await?;
    writeln!(out, "Most recent jobs")?;
    writeln!(out, "{RULE}")?;
    writeln!(
        out,
        "{:<36}  {:<24}  {:<16} {:<14} {:<22} {:>5}  {:<9}  DUPLICATE OF",
        "JOB ID", "CREATED", "USER", "ACTION", "CLUSTER", "CIDS", "STATUS"
    )?;
    for j in &jobs {
        writeln!(
            out,
            "{:<36}  {:<24}  {:<16} {:<14} {:<22} {:>5}  {:<9}  {}",
            j.job_id.to_string(),
            format_time(&j.created_at),
            j.user,
            j.action,
            j.cluster,
            j.cid_count,
            j.status.as_str(),
            j.duplicate_of.map(|d| d.to_string()).unwrap_or_default()
        )?;
    }
    if jobs.is_empty() {
        writeln!(out, "(no jobs)")?;
    }
    writeln!(out)?;
    Ok(())
}

pub async fn run_import(
    config: &Config,
    command: ImportCommand,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let ImportCommand::Legacy {
        path,
        dry_run,
        batch,
        store,
    } = command;
    let db = open_store_as(config, &store, StoreUse::MayCreate).await?;
    let mut assume_users = Vec::new();
    if dry_run {
        if db.count_users().await? == 0 {
            writeln!(out, "the store has no user yet: the import will first create the admin account, as serve does")?;
            assume_users.push("admin".to_owned());
        }
    } else {
        // Imported users are disabled: a store that had no user gets its
        // first admin now, as `serve` would make it, so nobody is locked out.
        if let Some(password) = ensure_admin(&db, config.admin_password.as_deref()).await? {
            writeln!(
                out,
                "Created the first user 'admin'. admin password: {password}"
            )?;
        }
    }
    let options = ImportOptions {
        dry_run,
        batch,
        clusters: config
            .clusters
            .iter()
            .map(|c| (c.name.clone(), c.base_url.clone()))
            .collect(),
        catalog: config.catalog()?,
        assume_users,
    };
    let mut bar = ProgressBar::hidden();
    let verb = if dry_run { "would create" } else { "created" };
    let summary = import_legacy(&db, &path, &options, |event| match event {
        ImportEvent::Started { total } => bar = progress_bar(total, "rows read"),
        ImportEvent::Progress(n) => bar.set_position(n),
        ImportEvent::Skipped { row, reason } => {
            bar.suspend(|| {
                let _ = writeln!(out, "skipped {row}: {reason}");
            });
        }
        ImportEvent::UserCreated(name) => bar.suspend(|| {
            let _ = writeln!(out, "{verb} user {name} (operator, disabled, no password)");
        }),
    })
    .await
    .with_context(|| format!("Failed to import {}", path.display()))?;
    bar.finish_and_clear();
    db.close().await;
    let skipped = summary.already_present + summary.invalid;
    if dry_run {
        writeln!(
            out,
            "dry run: {} of {} rows would be imported, {skipped} skipped ({} already imported, {} unreadable), {} user(s) would be created; nothing was written",
            summary.imported, summary.rows, summary.already_present, summary.invalid, summary.users_created
        )?;
    } else {
        writeln!(
            out,
            "imported {} of {} rows, {skipped} skipped ({} already imported, {} unreadable), {} user(s) created",
            summary.imported, summary.rows, summary.already_present, summary.invalid, summary.users_created
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub async fn run_export(
    config: &Config,
    args: ExportArgs,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let service = console(config, &args.store).await?;
    let filter = service.visible_filter(&Actor::Console, &args.filters)?;
    let rows = export_to_writer(service.db(), filter, args.format, out).await?;
    service.db().close().await;
    eprintln!("exported {rows} job(s) as {}", args.format.file_extension());
    Ok(ExitCode::SUCCESS)
}
