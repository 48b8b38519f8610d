//! `tms-dashboard`: parse the command line, run, report errors (exit 2).
#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use tms_dashboard::cli::{run, Cli};

fn main() -> ExitCode {
    tune_allocator();
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

/// Keeps the server's memory close to what it uses. glibc's malloc raises
/// its mmap threshold after the first large block is freed, so every later
/// Argon2 hash (19 MiB) lands on the heap and is never given back; and it
/// keeps an arena per thread (8 per core), each holding freed memory. A
/// fixed threshold returns large blocks to the system when freed; two
/// arenas are enough for two cores' worth of request handling.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mallopt only changes malloc's parameters; it is called before
    // any other thread exists, and a refused setting (return 0) leaves the
    // defaults, which are correct, only larger.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
