//! `tms-dashboard`: parse the command line, run, report errors (exit 2).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use tms_dashboard::cli::{run, Cli};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: Failed to start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse();
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
