//! `events verify` and `events tail`: the event feed from the command line.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::{open_store, Output, StoreArgs};
use crate::config::Config;
use crate::service::events::{verify_chain, ChainCheck, MAX_LIMIT};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Re-compute the event chain: exit 0 intact, 1 naming the first broken seq, 2 on error.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print events as NDJSON, one a line, in seq order.
    Tail {
        /// Only events with a greater seq.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
        after: i64,
        /// Keep printing new events until interrupted.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// How often `tail --follow` looks for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

pub async fn run_events(
    config: &Config,
    command: EventsCommand,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    match command {
        EventsCommand::Verify { store } => {
            let db = open_store(config, &store).await?;
            let check = verify_chain(&db).await?;
            db.close().await;
            let code = match check {
                ChainCheck::Intact { events } => {
                    writeln!(out, "PASS: the chain of {events} event(s) is intact")?;
                    ExitCode::SUCCESS
                }
                ChainCheck::Broken { seq, why } => {
                    writeln!(
                        out,
                        "FAIL: the chain breaks at seq {seq}: {why}; the {} event(s) before it are intact",
                        seq - 1
                    )?;
                    ExitCode::from(1)
                }
            };
            out.flush()?;
            Ok(code)
        }
        EventsCommand::Tail {
            after,
            follow,
            store,
        } => {
            let db = open_store(config, &store).await?;
            let mut after = after;
            loop {
                let page = db.events_after(after, MAX_LIMIT).await?;
                for event in &page {
                    writeln!(out, "{}", serde_json::to_string(event)?)?;
                    after = event.seq;
                }
                out.flush()?;
                if page.len() as u32 == MAX_LIMIT {
                    continue;
                }
                if !follow {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(FOLLOW_POLL) => {}
                    () = crate::net::shutdown_signal() => break,
                }
            }
            db.close().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}
