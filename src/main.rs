//! `tms-dashboard`: parse the command line, run, report errors (exit 2).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use tms_dashboard::cli::{run, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
