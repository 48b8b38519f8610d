//! Start-up: open and migrate the store, bind the listener, create the first
//! admin, assemble the router, and run until a signal with the sweep in the
//! background. Shared by `main` and the tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio::net::TcpListener;

use crate::accounts;
use crate::config::Config;
use crate::execution::{ExecutionService, STALE_GRACE};
use crate::http::{AppState, HttpSettings};
use crate::oidc::Sso;
use crate::sandbox::{self, SandboxOptions};
use crate::store::{Db, PoolSettings};
use crate::upstream::UpstreamClient;

/// A built application: bound, migrated, ready to run.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    execution: Arc<ExecutionService>,
    db: Db,
    port: u16,
    sweep_interval: Duration,
    seal_interval: Duration,
    upstream_timeout: Duration,
    retention_days: Option<u32>,
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

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        config.validate()?;
        let catalog = config.catalog()?;
        let cid_policy = config.cid_policy()?;
        let pool = PoolSettings {
            max_connections: config.max_connections,
            acquire_timeout: config.pool_acquire_timeout,
        };
        let db = Db::open(&config.database_url, &pool).await?;
        let listener = listen(&config.bind)
            .await
            .with_context(|| format!("Failed to listen on {}", config.bind))?;
        let address = listener.local_addr()?;
        let sandbox_url = format!("http://{}/sandbox", self_address(address));
        let env = |name: &str| std::env::var(name).ok();
        let clusters = config.cluster_registry(Some(sandbox_url), &env)?;

        if let Some(password) =
            accounts::ensure_admin(&db, config.admin_password.as_deref()).await?
        {
            // Printed once, on standard output only; never logged.
            println!("Created the first user 'admin'. admin password: {password}");
            tracing::warn!("created the first user 'admin' with a generated password (printed once on standard output)");
        }

        let sso = config.oidc.as_ref().map(Sso::new).transpose()?;
        let upstream = UpstreamClient::new(config.upstream_timeout)?;
        let execution = Arc::new(ExecutionService::new(
            db.clone(),
            catalog,
            clusters,
            cid_policy,
            upstream,
            config.duplicate_guard_window,
        ));
        let resolved = execution.sweep().await?;
        if resolved > 0 {
            tracing::warn!(
                resolved,
                "start-up sweep marked interrupted jobs as unknown"
            );
        }
        if let Some(days) = config.retention_days {
            crate::audit::retention::apply_retention(&db, days, Utc::now()).await?;
        }
        let state = AppState {
            db: db.clone(),
            execution: Arc::clone(&execution),
            settings: Arc::new(HttpSettings {
                secure_cookies: config.secure_cookies,
                session_ttl: config.session_ttl,
            }),
            metrics: crate::telemetry::metrics_handle(),
            sso: sso.map(Arc::new),
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
            db,
            port: address.port(),
            sweep_interval: config.sweep_interval,
            seal_interval: config.seal_interval,
            upstream_timeout: config.upstream_timeout,
            retention_days: config.retention_days,
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
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
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
        self.execution.drain(grace).await;
        sweeper.abort();
        sealer.abort();
        // Seal what finished during the drain, so a clean stop leaves no gap.
        if let Err(e) = crate::seal::seal_pending(&self.db).await {
            tracing::error!(error = %e, "sealing at shutdown failed");
        }
        self.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The background sweep: interrupted jobs to `unknown`, expired sessions out,
/// and, when configured, hourly retention.
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
            if last_retention.elapsed() >= crate::audit::retention::INTERVAL {
                last_retention = std::time::Instant::now();
                if let Err(e) =
                    crate::audit::retention::apply_retention(&db, days, Utc::now()).await
                {
                    tracing::error!(error = %e, "retention failed");
                }
            }
        }
        if let Err(e) = execution.sweep().await {
            tracing::error!(error = %e, "sweep failed");
        }
        if let Err(e) = db
            .delete_expired_sessions(crate::domain::job::now_millis())
            .await
        {
            tracing::error!(error = %e, "expired-session clean-up failed");
        }
    }
}

/// Seals finalised jobs into the audit chain, once per `interval`.
async fn seal_forever(db: Db, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = crate::seal::seal_pending(&db).await {
            tracing::error!(error = %e, "sealing failed");
        }
    }
}

/// Connections the system may hold for us before we accept them. The
/// default (1,024, and on some systems 128) overflows when a thousand
/// clients connect at once, and each overflow costs its client a second
/// (the SYN is retransmitted); the system caps it at `somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `address` with `LISTEN_BACKLOG`.
pub async fn listen(address: &str) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(address).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address names no host",
        )
    }))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
