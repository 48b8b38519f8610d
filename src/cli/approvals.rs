//! `tms-dashboard approvals`: what waits for a second person, and one
//! request in full. Deciding stays with people signed in to the console or
//! the API: the command line is not a second person.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;

use super::{console, Output, StoreArgs};
use crate::config::Config;
use crate::domain::job::format_time;
use crate::service::approvals::ApprovalFilterParams;
use crate::service::jobs::PageParams;

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List requests for approval, newest first.
    List {
        #[command(flatten)]
        filters: ApprovalFilterParams,
        /// How many (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print the API's JSON document instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one request as JSON, every CID included.
    Show {
        approval_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run_approvals(
    config: &Config,
    command: ApprovalsCommand,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    match command {
        ApprovalsCommand::List {
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
            let page = service.approvals().list(&filters, &page).await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"approvals": page.approvals, "next_cursor": page.next_cursor})
                )?;
            } else {
                writeln!(
                    out,
                    "{:<36}  {:<24}  {:<9} {:<4} {:>7} {:<14} {:<12} ASKED BY",
                    "APPROVAL ID", "ASKED", "STATUS", "KIND", "CIDS", "ACTION", "CLUSTER"
                )?;
                for a in &page.approvals {
                    writeln!(
                        out,
                        "{:<36}  {:<24}  {:<9} {:<4} {:>7} {:<14} {:<12} {}",
                        a.approval_id.to_string(),
                        format_time(&a.created_at),
                        a.status.as_str(),
                        a.kind.as_str(),
                        a.cid_count,
                        a.action,
                        a.cluster,
                        a.requested_by
                    )?;
                }
                if page.approvals.is_empty() {
                    writeln!(out, "(no requests for approval)")?;
                }
            }
        }
        ApprovalsCommand::Show { approval_id, store } => {
            let service = console(config, &store).await?;
            let approval = service.approvals().get(&approval_id).await?;
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "approval": approval }))?
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
