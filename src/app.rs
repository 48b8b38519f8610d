//! Start-up: open and migrate the store, bind the listener, create the first
//! admin, assemble the router, and run until a signal with the sweep in the
//! background. Shared by `main` and the tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::{AppState, HttpSettings};
use crate::net::{listen, shutdown_signal};
use crate::oidc::Sso;
use crate::sandbox::{self, SandboxOptions};
use crate::service::accounts::ensure_admin;
use crate::service::approvals::Approvals;
use crate::service::audit::{retention, seal};
use crate::service::dispatcher::dispatch_forever;
use crate::service::execution::{ExecutionService, STALE_GRACE};
use crate::service::runs::Runs;
use crate::service::{AccountSettings, Service};
use crate::store::{Db, PoolSettings};
use crate::upstream::UpstreamClient;

/// A built application: bound, migrated, ready to run.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    execution: Arc<ExecutionService>,
    runs: Arc<Runs>,
    approvals: Arc<Approvals>,
    db: Db,
    port: u16,
    sweep_interval: Duration,
    seal_interval: Duration,
    upstream_timeout: Duration,
    retention_days: Option<u32>,
    sinks: Vec<Arc<crate::sinks::SinkSpec>>,
    sink_max_backoff: Duration,
}

/// The address the server reaches itself on, for the built-in sandbox.
fn self_address(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// The application service for `config` over `db`: the catalog, the
/// clusters (with the sandbox at `sandbox_url` when it runs), the upstream
/// client and single sign-on. Shared by `serve` and the command line.
pub fn service(config: &Config, db: Db, sandbox_url: Option<String>) -> anyhow::Result<Service> {
    let env = |name: &str| std::env::var(name).ok();
    let clusters = config.cluster_registry(sandbox_url, &env)?;
    let sso = config.oidc.as_ref().map(Sso::new).transpose()?;
    let upstream = UpstreamClient::new(config.upstream_timeout)?;
    let execution = Arc::new(ExecutionService::new(
        db.clone(),
        config.catalog()?,
        clusters,
        config.cid_policy()?,
        upstream,
        config.duplicate_guard_window,
        config.approval_ttl,
    ));
    let runs = Arc::new(Runs::new(
        db.clone(),
        Arc::clone(&execution),
        config.max_run_cids,
    ));
    let accounts = AccountSettings {
        session_ttl: config.session_ttl,
    };
    Ok(Service::new(
        db,
        execution,
        runs,
        accounts,
        sso.map(Arc::new),
    ))
}

/// The store the configuration names, opened and migrated.
pub async fn open_store(config: &Config) -> anyhow::Result<Db> {
    let pool = PoolSettings {
        max_connections: config.max_connections,
        acquire_timeout: config.pool_acquire_timeout,
    };
    Db::open(&config.database_url, &pool).await
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        config.validate()?;
        // A sink's secret is read now: a missing one stops the start-up.
        let sinks = crate::sinks::from_config(&config.sinks, &|name| std::env::var(name).ok())?;
        crate::store::events::set_outbox(config.outbox);
        let db = open_store(&config).await?;
        let listener = listen(&config.bind)
            .await
            .with_context(|| format!("Failed to listen on {}", config.bind))?;
        let address = listener.local_addr()?;
        let sandbox_url = format!("http://{}/sandbox", self_address(address));
        let service = service(&config, db.clone(), Some(sandbox_url))?.with_sinks(sinks.clone());

        if let Some(password) = ensure_admin(&db, config.admin_password.as_deref()).await? {
            // Printed once, on standard output only; never logged.
            println!("Created the first user 'admin'. admin password: {password}");
            tracing::warn!("created the first user 'admin' with a generated password (printed once on standard output)");
        }

        let execution = Arc::clone(service.execution());
        let runs = Arc::clone(service.runs());
        let approvals = Arc::clone(service.approvals());
        let resolved = execution.sweep().await?;
        if resolved > 0 {
            tracing::warn!(
                resolved,
                "start-up sweep marked interrupted jobs as unknown"
            );
        }
        if let Some(days) = config.retention_days {
            retention::apply_retention(&db, days, Utc::now()).await?;
        }
        let state = AppState {
            service,
            settings: Arc::new(HttpSettings {
                secure_cookies: config.secure_cookies,
            }),
            metrics: crate::telemetry::metrics_handle(),
            shown_once: Default::default(),
        };
        let sandbox = config
            .sandbox
            .then(|| sandbox::router(SandboxOptions::default()));
        let router = crate::http::router(state, sandbox);
        tracing::info!(%address, store = db.backend_name(), "listening");
        Ok(App {
            listener,
            router,
            execution,
            runs,
            approvals,
            db,
            port: address.port(),
            sweep_interval: config.sweep_interval,
            seal_interval: config.seal_interval,
            upstream_timeout: config.upstream_timeout,
            retention_days: config.retention_days,
            sinks,
            sink_max_backoff: config.sink_max_backoff,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until Ctrl-C or SIGTERM, then lets in-flight Set Actions
    /// finish (up to the upstream timeout) before returning.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let sealer = tokio::spawn(seal_forever(self.db.clone(), self.seal_interval));
        let sweeper = tokio::spawn(sweep_forever(
            Arc::clone(&self.execution),
            self.db.clone(),
            self.sweep_interval,
            self.retention_days,
        ));
        let expirer = tokio::spawn(expire_forever(Arc::clone(&self.approvals)));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let dispatcher = tokio::spawn(dispatch_forever(Arc::clone(&self.runs), stop_rx.clone()));
        let deliverers: Vec<_> = self
            .sinks
            .iter()
            .map(|sink| {
                tokio::spawn(crate::sinks::deliver_forever(
                    self.db.clone(),
                    Arc::clone(sink),
                    self.sink_max_backoff,
                    stop_rx.clone(),
                ))
            })
            .collect();
        // Routes are materialised once, not per connection.
        let server = axum::serve(self.listener, self.router.into_make_service())
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                tracing::info!("shutting down: finishing in-flight requests");
                let _ = stop_tx.send(true);
            });
        // Requests still open this long after the signal are cut off; the
        // executions they started are still awaited below.
        let grace = self.upstream_timeout + STALE_GRACE;
        let mut stop = stop_rx;
        let deadline = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = server => result.context("server error")?,
            () = deadline => tracing::warn!("shutdown: requests still open after the grace period were cut off"),
        }
        // No new batch after the signal; the ones sent are drained with
        // the Set Actions.
        let _ = dispatcher.await;
        self.execution.drain(grace).await;
        // The sinks stop after the in-flight event and give their leases up.
        for deliverer in deliverers {
            let _ = tokio::time::timeout(Duration::from_secs(15), deliverer).await;
        }
        sweeper.abort();
        sealer.abort();
        expirer.abort();
        // Seal what finished during the drain, so a clean stop leaves no gap.
        if let Err(e) = seal::seal_pending(&self.db).await {
            tracing::error!(error = %e, "sealing at shutdown failed");
        }
        self.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The background sweep: interrupted jobs to `unknown`, expired sessions and
/// old failed logins out, and, when configured, hourly retention.
async fn sweep_forever(
    execution: Arc<ExecutionService>,
    db: Db,
    every: Duration,
    retention_days: Option<u32>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_retention = std::time::Instant::now();
    loop {
        ticker.tick().await;
        if let Some(days) = retention_days {
            if last_retention.elapsed() >= retention::INTERVAL {
                last_retention = std::time::Instant::now();
                if let Err(e) = retention::apply_retention(&db, days, Utc::now()).await {
                    tracing::error!(error = %e, "retention failed");
                }
            }
        }
        if let Err(e) = execution.sweep().await {
            tracing::error!(error = %e, "sweep failed");
        }
        let now = crate::time::now_millis();
        let window = chrono::Duration::minutes(crate::service::accounts::LOGIN_WINDOW_MINUTES);
        if let Err(e) = db.delete_expired_sessions(now, now - window).await {
            tracing::error!(error = %e, "expired-session clean-up failed");
        }
    }
}

/// How often approvals whose time ran out are marked expired (the contract
/// gives 10 s).
const EXPIRY_INTERVAL: Duration = Duration::from_secs(2);

/// Marks approvals whose time ran out as expired, on every instance (each
/// approval once, whichever gets there first).
async fn expire_forever(approvals: Arc<Approvals>) {
    let mut ticker = tokio::time::interval(EXPIRY_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = approvals.expire_due().await {
            tracing::error!(error = %e, "approval expiry failed");
        }
    }
}

/// Seals finalised jobs into the audit chain, once per `interval`.
async fn seal_forever(db: Db, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = seal::seal_pending(&db).await {
            tracing::error!(error = %e, "sealing failed");
        }
    }
}
