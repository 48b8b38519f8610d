//! The command line. Each subcommand parses its arguments and calls library
//! functions; flags win over environment variables, which win over the file.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::accounts;
use crate::app::App;
use crate::config::Config;
use crate::domain::cluster::SANDBOX_TOKEN;
use crate::domain::job::{format_time, JobId};
use crate::domain::user::{check_password_policy, Role};
use crate::http::api::jobs::JobsQuery;
use crate::sandbox::SandboxOptions;
use crate::store::users::UserChanges;
use crate::store::{Db, PoolSettings};
use crate::telemetry::{init_tracing, LogTarget};

mod audit;
pub use audit::{AuditCommand, ExportArgs, ImportCommand};

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
    /// Find and mark duplicate jobs.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Bring in jobs recorded elsewhere.
    #[command(subcommand)]
    Import(ImportCommand),
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
        /// admin, operator or auditor.
        #[arg(long)]
        role: String,
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
        role: String,
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
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        status: Option<String>,
        /// Jobs touching this customer ID.
        #[arg(long)]
        cid: Option<String>,
        /// RFC 3339 time, inclusive.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time, exclusive.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print the API's JSON document instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one job as JSON.
    Show {
        job_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write every job matching the filters to standard output as CSV or NDJSON, newest first.
    Export(ExportArgs),
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

async fn open_store(config: &Config, store: &StoreArgs) -> anyhow::Result<Db> {
    let url = store
        .database_url
        .clone()
        .unwrap_or_else(|| config.database_url.clone());
    Db::open(
        &url,
        &PoolSettings {
            max_connections: 4,
            ..PoolSettings::default()
        },
    )
    .await
}

fn parse_role(s: &str) -> anyhow::Result<Role> {
    Role::parse(s).with_context(|| format!("role {s:?} is not admin, operator or auditor"))
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("Failed to read the password from standard input")?;
    let password = text.trim_end_matches(['\n', '\r']).to_owned();
    check_password_policy(&password).map_err(anyhow::Error::msg)?;
    Ok(password)
}

/// Runs the parsed command. Errors are reported by `main` with exit code 2.
pub async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
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
            init_tracing(config.log_format, LogTarget::Stdout);
            let app = App::build(config).await?;
            app.run_until_stopped().await?;
        }
        Command::SandboxCluster(args) => {
            init_tracing(config.log_format, LogTarget::Stdout);
            if !(0.0..=1.0).contains(&args.fail_rate) {
                bail!("--fail-rate must be between 0 and 1");
            }
            let listener = crate::app::listen(&args.bind)
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
    Ok(std::process::ExitCode::SUCCESS)
}

async fn run_store_command(
    config: &Config,
    command: Command,
) -> anyhow::Result<std::process::ExitCode> {
    match command {
        Command::Migrate(store) => {
            let db = open_store(config, &store).await?;
            db.close().await;
            eprintln!("store is up to date");
        }
        Command::Users(UsersCommand::Add {
            username,
            role,
            password_stdin,
            store,
        }) => {
            let role = parse_role(&role)?;
            let password = password_stdin.then(read_password_stdin).transpose()?;
            let db = open_store(config, &store).await?;
            let (user, generated) =
                accounts::create_user(&db, &username, password.as_deref(), role).await?;
            match generated {
                Some(pw) => println!(
                    "created {} ({}); password: {pw}",
                    user.username,
                    user.role.as_str()
                ),
                None => println!("created {} ({})", user.username, user.role.as_str()),
            }
        }
        Command::Users(UsersCommand::List { store }) => {
            let db = open_store(config, &store).await?;
            println!("{:<32} {:<9} {:<8} CREATED", "USERNAME", "ROLE", "STATE");
            for u in db.list_users().await? {
                let state = if u.disabled { "disabled" } else { "active" };
                println!(
                    "{:<32} {:<9} {:<8} {}",
                    u.username,
                    u.role.as_str(),
                    state,
                    format_time(&u.created_at)
                );
            }
        }
        Command::Users(UsersCommand::SetRole {
            username,
            role,
            store,
        }) => {
            let role = parse_role(&role)?;
            let db = open_store(config, &store).await?;
            let changes = UserChanges {
                role: Some(role),
                ..UserChanges::default()
            };
            let user = db
                .update_user(&username, &changes)
                .await?
                .with_context(|| format!("no user {username:?}"))?;
            println!("{} is now {}", user.username, user.role.as_str());
        }
        Command::Users(UsersCommand::Disable {
            username,
            enable,
            store,
        }) => {
            let db = open_store(config, &store).await?;
            let changes = UserChanges {
                disabled: Some(!enable),
                ..UserChanges::default()
            };
            let user = db
                .update_user(&username, &changes)
                .await?
                .with_context(|| format!("no user {username:?}"))?;
            println!(
                "{} is {}",
                user.username,
                if user.disabled { "disabled" } else { "enabled" }
            );
        }
        Command::Users(UsersCommand::Passwd {
            username,
            password_stdin,
            store,
        }) => {
            let password = if password_stdin {
                read_password_stdin()?
            } else {
                accounts::generate_password()
            };
            let db = open_store(config, &store).await?;
            let changes = UserChanges {
                password_hash: Some(accounts::hash_password(&password).await?),
                ..UserChanges::default()
            };
            db.update_user(&username, &changes)
                .await?
                .with_context(|| format!("no user {username:?}"))?;
            if password_stdin {
                println!("password of {username} changed");
            } else {
                println!("password of {username} changed; new password: {password}");
            }
        }
        Command::Tokens(TokensCommand::Create { user, name, store }) => {
            let db = open_store(config, &store).await?;
            db.get_user(&user)
                .await?
                .with_context(|| format!("no user {user:?}"))?;
            let (_, token) = accounts::create_api_token(&db, &user, &name).await?;
            println!("{token}");
        }
        Command::Jobs(JobsCommand::List {
            user,
            action,
            cluster,
            status,
            cid,
            since,
            until,
            limit,
            json,
            store,
        }) => {
            let db = open_store(config, &store).await?;
            let query = JobsQuery {
                user,
                action,
                cluster,
                status,
                cid,
                since,
                until,
                limit: Some(limit.to_string()),
                ..JobsQuery::default()
            };
            // The command line reads the whole audit, as an auditor would.
            let viewer = crate::domain::user::User {
                username: String::new(),
                role: Role::Auditor,
                disabled: false,
                created_at: chrono::Utc::now(),
            };
            let page = query.parse_for(&viewer)?;
            let jobs = db.list_jobs(&page.filter, None, page.limit).await?;
            if json {
                println!("{}", serde_json::json!({ "jobs": jobs }));
            } else {
                println!(
                    "{:<36}  {:<24}  {:<16} {:<14} {:<12} {:>5}  {:<9} {:>8}",
                    "JOB ID", "CREATED", "USER", "ACTION", "CLUSTER", "CIDS", "STATUS", "MS"
                );
                for j in jobs {
                    println!(
                        "{:<36}  {:<24}  {:<16} {:<14} {:<12} {:>5}  {:<9} {:>8}",
                        j.job_id.to_string(),
                        format_time(&j.created_at),
                        j.user,
                        j.action,
                        j.cluster,
                        j.cid_count,
                        j.status.as_str(),
                        j.duration_ms.map(|d| d.to_string()).unwrap_or_default()
                    );
                }
            }
        }
        Command::Jobs(JobsCommand::Show { job_id, store }) => {
            let db = open_store(config, &store).await?;
            let id =
                JobId::parse(&job_id).with_context(|| format!("{job_id:?} is not a job id"))?;
            match db.get_job(id).await? {
                Some(stored) => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "job": stored.job }))?
                ),
                None => {
                    eprintln!("no job {job_id}");
                    return Ok(std::process::ExitCode::from(1));
                }
            }
        }
        Command::Audit(command) => return audit::run_audit(config, command).await,
        Command::Import(command) => return audit::run_import(config, command).await,
        Command::Jobs(JobsCommand::Export(args)) => return audit::run_export(config, args).await,
        Command::Serve(_) | Command::SandboxCluster(_) => unreachable!("handled by run"),
    }
    Ok(std::process::ExitCode::SUCCESS)
}
