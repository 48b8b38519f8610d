//! `backup` and `restore`: a consistent copy of a SQLite store taken while
//! it serves, and a new store made from one with both chains re-checked.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{Output, StoreArgs};
use crate::config::Config;
use crate::service::backup::{backup, restore};
use crate::service::events::ChainCheck;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write; it must not exist.
    pub path: PathBuf,
    /// The store to copy (a running `serve` may keep using it).
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file written by `backup`.
    pub backup: PathBuf,
    /// The new store to make; it must not exist.
    #[command(flatten)]
    pub store: StoreArgs,
}

fn url_of(config: &Config, store: &StoreArgs) -> String {
    store
        .database_url
        .clone()
        .unwrap_or_else(|| config.database_url.clone())
}

pub async fn run_backup(
    config: &Config,
    args: BackupArgs,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let url = url_of(config, &args.store);
    eprintln!("store: {}", crate::store::describe_url(&url));
    let report = backup(&url, &args.path).await?;
    let c = report.contents;
    writeln!(
        out,
        "backup written to {} ({:.1} MiB): {} job(s), {} of them still running when copied, events 1 to {}; integrity ok",
        report.path.display(),
        report.bytes as f64 / (1024.0 * 1024.0),
        c.jobs,
        c.pending_jobs,
        c.last_event_seq,
    )?;
    Ok(ExitCode::SUCCESS)
}

pub async fn run_restore(
    config: &Config,
    args: RestoreArgs,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let url = url_of(config, &args.store);
    eprintln!("store: {}", crate::store::describe_url(&url));
    let report = restore(&args.backup, &url).await?;
    let c = report.contents;
    writeln!(
        out,
        "restored {} job(s) and events 1 to {} from {}",
        c.jobs,
        c.last_event_seq,
        args.backup.display()
    )?;
    if c.pending_jobs > 0 {
        writeln!(
            out,
            "{} job(s) were still running when the backup was taken: the first instance serving this store marks them unknown (check the cluster)",
            c.pending_jobs
        )?;
    }
    match &report.jobs_chain.broken {
        None => writeln!(
            out,
            "PASS: the chain of {} sealed job(s) is intact",
            report.jobs_chain.checked
        )?,
        Some(link) => writeln!(
            out,
            "FAIL: the chain of sealed jobs breaks at job {} (sealed number {}): {}",
            link.job_id, link.seq, link.reason
        )?,
    }
    match &report.events_chain {
        ChainCheck::Intact { events } => {
            writeln!(out, "PASS: the chain of {events} event(s) is intact")?
        }
        ChainCheck::Broken { seq, why } => {
            writeln!(out, "FAIL: the event chain breaks at seq {seq}: {why}")?
        }
    }
    writeln!(
        out,
        "the event feed continues from seq {}: a receiver that got later events sees those numbers again, with other event ids",
        c.last_event_seq + 1
    )?;
    Ok(if report.is_sound() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
