//! The command line. Each subcommand parses its arguments, calls the
//! service (as `Actor::Console`, the store's host) and prints; flags win over
//! environment variables, which win over the file.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::app::App;
use crate::config::Config;
use crate::domain::cluster::SANDBOX_TOKEN;
use crate::domain::job::format_time;
use crate::domain::user::Role;
use crate::sandbox::SandboxOptions;
use crate::service::accounts::{generate_password, NewUser, UserChange};
use crate::service::customers::HistoryParams;
use crate::service::jobs::{JobFilterParams, PageParams};
use crate::service::{Actor, Service};
use crate::store::{Db, PoolSettings};
use crate::telemetry::{init_tracing, LogTarget};

mod approvals;
mod audit;
mod backup;
mod demo;
mod events;
mod output;
mod runs;
pub use approvals::ApprovalsCommand;
pub use audit::{AuditCommand, ExportArgs, ImportCommand};
pub use demo::{DemoArgs, DemoCommand};
pub use events::EventsCommand;
pub use output::Output;
pub use runs::RunsCommand;

/// TMS Dashboard: run actions on TMS clusters, one confirmed click, one job.
#[derive(Debug, Parser)]
#[command(name = "tms-dashboard", version)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "TMS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard (API, and the sandbox cluster when no clusters are configured).
    Serve(ServeArgs),
    /// Apply pending store migrations and exit.
    Migrate(StoreArgs),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Read the job audit.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// What was done to one customer.
    #[command(subcommand)]
    Customers(CustomersCommand),
    /// Runs over many customers: queue, list, show, cancel, watch.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Requests that wait for a second person: list, show.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Find and mark duplicate jobs; verify the tamper-evident chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The event feed: verify its hash chain, print it as NDJSON.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Bring in jobs recorded elsewhere.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Copy a SQLite store to a new file while it serves (PostgreSQL: pg_dump, see docs/operations.md).
    Backup(backup::BackupArgs),
    /// Make a new store from a backup and re-check both hash chains: exit 0 sound, 1 broken, 2 on error.
    Restore(backup::RestoreArgs),
    /// Fill a fresh store with three weeks of made-up jobs, users, a run and
    /// duplicates to try the console on; `demo legacy PATH` writes an old
    /// dashboard's file to try `import legacy` on.
    Demo(DemoArgs),
    /// Run the simulated TMS cluster on its own.
    SandboxCluster(SandboxArgs),
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Store URL: sqlite://path.db, sqlite:///abs/path.db or postgres://...
    #[arg(long)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub bind: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password comes from standard input or is generated and printed.
    Add {
        username: String,
        #[arg(long, value_enum)]
        role: Role,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Change a user's role.
    SetRole {
        username: String,
        #[arg(value_enum)]
        role: Role,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a user (their sessions end and their tokens stop working); --enable undoes it.
    Disable {
        username: String,
        #[arg(long)]
        enable: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a user's password: from standard input, or generated and printed.
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an API token and print it (only the token, on standard output).
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        #[command(flatten)]
        filters: JobFilterParams,
        /// How many jobs (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print the API's JSON document instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one job as JSON, then its customers as a table.
    Show {
        /// The job's id, or a unique prefix of it.
        job_id: String,
        /// Only customers with this outcome: ok, failed, unknown or pending.
        #[arg(long)]
        outcome: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write every job matching the filters to standard output as CSV or NDJSON, newest first.
    Export(ExportArgs),
}

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// The jobs that touched a customer, newest first, and what each did to it.
    History {
        /// The customer ID, exactly (case-sensitive).
        cid: String,
        #[command(flatten)]
        filters: HistoryParams,
        /// How many jobs (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print the API's JSON document instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub bind: String,
    /// Bearer token the sandbox accepts.
    #[arg(long, default_value = SANDBOX_TOKEN)]
    pub token: String,
    /// Latency added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of requests (0 to 1) answered with a simulated failure.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
}

fn load_config(cli_config: &Option<PathBuf>) -> anyhow::Result<Config> {
    let env = |name: &str| std::env::var(name).ok();
    Ok(Config::load(cli_config.as_deref(), &env)?)
}

/// Whether a command may bring a new store into being. Only those that set
/// one up may (`serve`, `migrate`, `import legacy`, `users add`, `demo`): a command
/// that reads, checks or reports, run from the wrong folder, must not
/// create an empty store there and report on it (an audit that passes on
/// nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreUse {
    MayCreate,
    ExistingOnly,
}

/// The store a command names (its flag, else the configuration's), opened
/// and migrated, with a small pool: commands run one query at a time. Names
/// the store on standard error, never on standard output (which carries
/// the command's answer).
pub(crate) async fn open_store_as(
    config: &Config,
    store: &StoreArgs,
    store_use: StoreUse,
) -> anyhow::Result<Db> {
    let url = store
        .database_url
        .clone()
        .unwrap_or_else(|| config.database_url.clone());
    let described = crate::store::describe_url(&url);
    if let (StoreUse::ExistingOnly, Some(path)) = (store_use, crate::store::sqlite_path(&url)) {
        if !std::path::Path::new(path).exists() {
            bail!(
                "no store at {described}: this command reads an existing store and does not create one. \
                 Run it where the store is, or name it with --database-url or TMS_DATABASE_URL \
                 (`tms-dashboard migrate` creates a new one)"
            );
        }
    }
    eprintln!("store: {described}");
    Db::open(
        &url,
        &PoolSettings {
            max_connections: 4,
            ..PoolSettings::default()
        },
    )
    .await
}

/// An existing store, as every command but those setting one up opens it.
async fn open_store(config: &Config, store: &StoreArgs) -> anyhow::Result<Db> {
    open_store_as(config, store, StoreUse::ExistingOnly).await
}

/// The service over the store a command names, as the command line uses it.
async fn console(config: &Config, store: &StoreArgs) -> anyhow::Result<Service> {
    console_as(config, store, StoreUse::ExistingOnly).await
}

/// The service over a store the command may create (`users add`).
async fn console_as(
    config: &Config,
    store: &StoreArgs,
    store_use: StoreUse,
) -> anyhow::Result<Service> {
    let db = open_store_as(config, store, store_use).await?;
    // The built-in sandbox is served by `serve` at its own address; the
    // command line only needs to know it is there (runs it queues name it,
    // and the serving instance sends them).
    let sandbox_url = config
        .sandbox
        .then(|| format!("http://{}/sandbox", config.bind));
    crate::app::service(config, db, sandbox_url)
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("Failed to read the password from standard input")?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// Runs the parsed command. Errors are reported by `main` with exit code 2.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(&cli.config)?;
    match cli.command {
        Command::Serve(args) => {
            let mut config = config;
            if let Some(bind) = args.bind {
                config.bind = bind;
            }
            if let Some(url) = args.store.database_url {
                config.database_url = url;
            }
            eprintln!(
                "store: {}",
                crate::store::describe_url(&config.database_url)
            );
            init_tracing(config.log_format, LogTarget::Stdout);
            let app = App::build(config).await?;
            app.run_until_stopped().await?;
        }
        Command::SandboxCluster(args) => {
            init_tracing(config.log_format, LogTarget::Stdout);
            if !(0.0..=1.0).contains(&args.fail_rate) {
                bail!("--fail-rate must be between 0 and 1");
            }
            let listener = crate::net::listen(&args.bind)
                .await
                .with_context(|| format!("Failed to listen on {}", args.bind))?;
            tracing::info!(address = %listener.local_addr()?, "sandbox cluster listening");
            let options = SandboxOptions {
                token: args.token,
                latency: std::time::Duration::from_millis(args.latency_ms),
                fail_rate: args.fail_rate,
            };
            crate::sandbox::serve_standalone(listener, options).await?;
        }
        other => {
            init_tracing(config.log_format, LogTarget::Stderr);
            return run_store_command(&config, other).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_store_command(config: &Config, command: Command) -> anyhow::Result<ExitCode> {
    let mut out = Output::stdout();
    match command {
        Command::Migrate(store) => {
            let db = open_store_as(config, &store, StoreUse::MayCreate).await?;
            db.close().await;
            eprintln!("store is up to date");
        }
        Command::Users(command) => return run_users(config, command, &mut out).await,
        Command::Tokens(TokensCommand::Create { user, name, store }) => {
            let service = console(config, &store).await?;
            let token = service
                .create_token_for(&Actor::Console, &user, &name)
                .await?;
            writeln!(out, "{token}")?;
        }
        Command::Jobs(JobsCommand::List {
            filters,
            limit,
            json,
            store,
        }) => {
            let service = console(config, &store).await?;
            let page = PageParams {
                limit: Some(limit.to_string()),
                cursor: None,
            };
            let jobs = service
                .list_jobs(&Actor::Console, &filters, &page)
                .await?
                .jobs;
            if json {
                writeln!(out, "{}", serde_json::json!({ "jobs": jobs }))?;
            } else {
                writeln!(
                    out,
                    "{:<36}  {:<24}  {:<16} {:<14} {:<12} {:>5}  {:<9} {:>8}",
                    "JOB ID", "CREATED", "USER", "ACTION", "CLUSTER", "CIDS", "STATUS", "MS"
                )?;
                for j in jobs {
                    writeln!(
                        out,
                        "{:<36}  {:<24}  {:<16} {:<14} {:<12} {:>5}  {:<9} {:>8}",
                        j.job_id.to_string(),
                        format_time(&j.created_at),
                        j.user,
                        j.action,
                        j.cluster,
                        j.cid_count,
                        j.status.as_str(),
                        j.duration_ms.map(|d| d.to_string()).unwrap_or_default()
                    )?;
                }
            }
        }
        Command::Jobs(JobsCommand::Show {
            job_id,
            outcome,
            store,
        }) => {
            let service = console(config, &store).await?;
            // A unique prefix of the id will do, as lists shorten ids.
            let found = service.find_job(&Actor::Console, &job_id).await;
            let job_id = match found {
                Ok(job) => job.job_id.to_string(),
                Err(crate::error::Error::NotFound) => job_id,
                Err(e) => return Err(e.into()),
            };
            match service
                .job_customers(&Actor::Console, &job_id, outcome.as_deref())
                .await
            {
                Ok((job, customers)) => {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({ "job": job }))?
                    )?;
                    writeln!(out)?;
                    writeln!(out, "{:<24} {:<8} ERROR", "CID", "OUTCOME")?;
                    for c in &customers {
                        writeln!(
                            out,
                            "{:<24} {:<8} {}",
                            c.cid,
                            c.outcome.as_str(),
                            c.error.as_deref().unwrap_or_default()
                        )?;
                    }
                    if customers.is_empty() {
                        writeln!(out, "(no customer with that outcome)")?;
                    }
                }
                Err(crate::error::Error::NotFound) => {
                    eprintln!("no job {job_id}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Customers(CustomersCommand::History {
            cid,
            filters,
            limit,
            json,
            store,
        }) => {
            let service = console(config, &store).await?;
            let page = PageParams {
                limit: Some(limit.to_string()),
                cursor: None,
            };
            let history = service
                .customer_history(&Actor::Console, &cid, &filters, &page)
                .await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"cid": history.cid, "entries": history.entries, "next_cursor": history.next_cursor})
                )?;
            } else {
                writeln!(
                    out,
                    "{:<24}  {:<8} {:<14} {:<12} {:<16} {:<36}  {:<9} ERROR",
                    "CREATED", "OUTCOME", "ACTION", "CLUSTER", "USER", "JOB ID", "JOB"
                )?;
                for e in &history.entries {
                    writeln!(
                        out,
                        "{:<24}  {:<8} {:<14} {:<12} {:<16} {:<36}  {:<9} {}",
                        format_time(&e.created_at),
                        e.outcome.as_str(),
                        e.action,
                        e.cluster,
                        e.user,
                        e.job_id.to_string(),
                        e.job_status.as_str(),
                        e.error.as_deref().unwrap_or_default()
                    )?;
                }
                if history.entries.is_empty() {
                    writeln!(out, "(no job touched {})", history.cid)?;
                }
            }
        }
        Command::Runs(command) => return runs::run_runs(config, command, &mut out).await,
        Command::Approvals(command) => {
            return approvals::run_approvals(config, command, &mut out).await
        }
        Command::Audit(command) => return audit::run_audit(config, command, &mut out).await,
        Command::Import(command) => return audit::run_import(config, command, &mut out).await,
        Command::Events(command) => return events::run_events(config, command, &mut out).await,
        Command::Backup(args) => return backup::run_backup(config, args, &mut out).await,
        Command::Restore(args) => return backup::run_restore(config, args, &mut out).await,
        Command::Demo(args) => return demo::run_demo(config, args, &mut out).await,
        Command::Jobs(JobsCommand::Export(args)) => {
            return audit::run_export(config, args, &mut out).await
        }
        Command::Serve(_) | Command::SandboxCluster(_) => {
            bail!("serve and sandbox-cluster do not open the store here")
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

async fn run_users(
    config: &Config,
    command: UsersCommand,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let console_actor = Actor::Console;
    match command {
        UsersCommand::Add {
            username,
            role,
            password_stdin,
            store,
        } => {
            let password = password_stdin.then(read_password_stdin).transpose()?;
            let service = console_as(config, &store, StoreUse::MayCreate).await?;
            let new = NewUser {
                username,
                password,
                role,
            };
            let (user, generated) = service.create_user(&console_actor, new).await?;
            match generated {
                Some(pw) => writeln!(
                    out,
                    "created {} ({}); password: {pw}",
                    user.username,
                    user.role.as_str()
                )?,
                None => writeln!(out, "created {} ({})", user.username, user.role.as_str())?,
            }
        }
        UsersCommand::List { store } => {
            let service = console(config, &store).await?;
            writeln!(
                out,
                "{:<32} {:<9} {:<8} CREATED",
                "USERNAME", "ROLE", "STATE"
            )?;
            for u in service.list_users(&console_actor).await? {
                let state = if u.disabled { "disabled" } else { "active" };
                writeln!(
                    out,
                    "{:<32} {:<9} {:<8} {}",
                    u.username,
                    u.role.as_str(),
                    state,
                    format_time(&u.created_at)
                )?;
            }
        }
        UsersCommand::SetRole {
            username,
            role,
            store,
        } => {
            let service = console(config, &store).await?;
            let change = UserChange {
                role: Some(role),
                ..UserChange::default()
            };
            let user = service
                .change_user(&console_actor, &username, change)
                .await
                .with_context(|| format!("Failed to change the role of {username:?}"))?;
            writeln!(out, "{} is now {}", user.username, user.role.as_str())?;
        }
        UsersCommand::Disable {
            username,
            enable,
            store,
        } => {
            let service = console(config, &store).await?;
            let change = UserChange {
                disabled: Some(!enable),
                ..UserChange::default()
            };
            let user = service
                .change_user(&console_actor, &username, change)
                .await
                .with_context(|| format!("Failed to change {username:?}"))?;
            let state = if user.disabled { "disabled" } else { "enabled" };
            writeln!(out, "{} is {state}", user.username)?;
        }
        UsersCommand::Passwd {
            username,
            password_stdin,
            store,
        } => {
            let password = if password_stdin {
                read_password_stdin()?
            } else {
                generate_password()
            };
            let service = console(config, &store).await?;
            let change = UserChange {
                password: Some(password.clone()),
                ..UserChange::default()
            };
            service
                .change_user(&console_actor, &username, change)
                .await
                .with_context(|| format!("Failed to change the password of {username:?}"))?;
            if password_stdin {
                writeln!(out, "password of {username} changed")?;
            } else {
                writeln!(
                    out,
                    "password of {username} changed; new password: {password}"
                )?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
