//! Delivery of the event feed to other systems (SPEC §15): webhooks signed
//! as Standard Webhooks says, and syslog over TCP.
//!
//! Each instance runs one loop per configured sink; only the instance that
//! holds the sink's lease (a row with an expiry in `sink_positions`, renewed
//! while it delivers) sends, so two instances on one PostgreSQL store do not
//! both deliver. The loop reads events after the sink's stored position, in
//! `seq` order, sends each matching one until it is accepted (retrying with
//! exponential back-off up to `sink_max_backoff`), and stores the position
//! after each accepted event: at least once, in order, and an instance
//! killed mid-delivery repeats at most the event it was sending.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;

use crate::config::{ConfigError, SinkConfig};
use crate::domain::event::{wanted, Event, TypePattern};
use crate::domain::secret::Secret;
use crate::store::Db;

pub mod syslog;
pub mod webhook;

/// How long a sink's lease lasts without renewal: how long another
/// instance waits to take over from one that died.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often a leaseholder renews while idle or backing off, and how often
/// the others ask for the lease.
const LEASE_CHECK: Duration = Duration::from_secs(1);
/// How often an idle sink looks for new events.
const POLL: Duration = Duration::from_millis(100);
/// Events read at once.
const PAGE: u32 = 200;
/// The first wait after a failure; it doubles up to `sink_max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Reads an environment variable (the process's, or a test's map).
type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Where a sink sends.
#[derive(Clone, Debug)]
pub enum SinkKind {
    Webhook { url: reqwest::Url, secret: Secret },
    Syslog { address: String },
}

impl SinkKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SinkKind::Webhook { .. } => "webhook",
            SinkKind::Syslog { .. } => "syslog",
        }
    }
}

/// A checked sink: its name, where it sends, which types it takes.
#[derive(Clone, Debug)]
pub struct SinkSpec {
    pub name: String,
    pub kind: SinkKind,
    pub types: Vec<TypePattern>,
}

impl SinkSpec {
    /// Checks what can be checked without the environment (start-up and
    /// `Config::validate`): the name, the kind, the URL or address, the types.
    pub fn check(i: usize, c: &SinkConfig) -> Result<(), ConfigError> {
        Self::build(i, c, None).map(|_| ())
    }

    /// The sink `c` describes, its secret read through `env`.
    pub fn from_config(
        i: usize,
        c: &SinkConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::build(i, c, Some(env))
    }

    fn build(i: usize, c: &SinkConfig, env: Option<&Env<'_>>) -> Result<Self, ConfigError> {
        let key = format!("sinks[{i}]");
        let err = |field: &str, what: String| ConfigError(format!("{key}.{field}: {what}"));
        let name = c.name.trim();
        if name.is_empty()
            || name.len() > 100
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return Err(err(
                "name",
                format!(
                    "{:?} must be 1 to 100 letters, digits, '-', '_' or '.'",
                    c.name
                ),
            ));
        }
        let only = |field: &str, present: bool| {
            if present {
                Err(err(field, format!("is not a key of a {} sink", c.kind)))
            } else {
                Ok(())
            }
        };
        let kind = match c.kind.trim() {
            "webhook" => {
                only("address", c.address.is_some())?;
                let text = c.url.as_deref().unwrap_or_default();
                let url = match reqwest::Url::parse(text) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
                    _ => {
                        return Err(err(
                            "url",
                            format!("{text:?} is not an http(s) URL (a webhook sink needs one)"),
                        ))
                    }
                };
                let var = c.secret_env.as_deref().unwrap_or_default();
                if var.is_empty() {
                    return Err(err(
                        "secret_env",
                        "a webhook sink needs the name of the variable holding its secret".into(),
                    ));
                }
                let secret = match env {
                    None => Secret::new(""),
                    Some(env) => {
                        let value = env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                            err(
                                "secret_env",
                                format!("environment variable {var} is not set"),
                            )
                        })?;
                        webhook::decode_secret(&value).map_err(|why| {
                            err("secret_env", format!("the value of {var} {why}"))
                        })?;
                        Secret::new(value)
                    }
                };
                SinkKind::Webhook { url, secret }
            }
            "syslog" => {
                only("url", c.url.is_some())?;
                only("secret_env", c.secret_env.is_some())?;
                let address = c.address.as_deref().unwrap_or_default().trim();
                let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if !valid {
                    return Err(err(
                        "address",
                        format!("{address:?} is not host:port (a syslog sink needs one)"),
                    ));
                }
                SinkKind::Syslog {
                    address: address.to_owned(),
                }
            }
            other => {
                return Err(err(
                    "kind",
                    format!("{other:?} is not a kind of sink: \"webhook\" or \"syslog\""),
                ))
            }
        };
        let types = c
            .types
            .iter()
            .map(|t| TypePattern::parse(t).map_err(|why| err("types", why)))
            .collect::<Result<_, _>>()?;
        Ok(SinkSpec {
            name: name.to_owned(),
            kind,
            types,
        })
    }
}

/// Every configured sink, secrets read from the environment.
pub fn from_config(
    sinks: &[SinkConfig],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Arc<SinkSpec>>, ConfigError> {
    sinks
        .iter()
        .enumerate()
        .map(|(i, c)| SinkSpec::from_config(i, c, env).map(Arc::new))
        .collect()
}

/// What a sink's state is, for `GET /api/v1/sinks` and the metrics.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SinkStatus {
    pub name: String,
    /// `webhook` or `syslog`.
    pub kind: String,
    /// Every event up to this `seq` was delivered (or is not of its types).
    pub delivered_seq: i64,
    /// Events of its types not delivered yet.
    pub pending: i64,
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_success_at: Option<chrono::DateTime<Utc>>,
}

/// Each sink's state, as stored (a sink not yet started is at 0).
pub async fn statuses(db: &Db, sinks: &[Arc<SinkSpec>]) -> crate::error::Result<Vec<SinkStatus>> {
    let stored = db.sink_positions().await?;
    let mut out = Vec::with_capacity(sinks.len());
    for sink in sinks {
        let position = stored.iter().find(|p| p.name == sink.name);
        let delivered_seq = position.map_or(0, |p| p.delivered_seq);
        out.push(SinkStatus {
            name: sink.name.clone(),
            kind: sink.kind.as_str().to_owned(),
            delivered_seq,
            pending: pending(db, sink, delivered_seq).await?,
            last_error: position.and_then(|p| p.last_error.clone()),
            last_success_at: position.and_then(|p| p.last_success_at),
        });
    }
    Ok(out)
}

/// Events after `delivered_seq` that `sink` takes.
async fn pending(db: &Db, sink: &SinkSpec, delivered_seq: i64) -> crate::error::Result<i64> {
    if sink.types.is_empty() {
        return Ok((db.last_event_seq().await? - delivered_seq).max(0));
    }
    Ok(db
        .event_counts_after(delivered_seq)
        .await?
        .into_iter()
        .filter(|(t, _)| wanted(&sink.types, t))
        .map(|(_, n)| n)
        .sum())
}

/// Sends events to one destination.
enum Transport {
    Webhook(webhook::WebhookClient),
    Syslog(syslog::SyslogClient),
}

impl Transport {
    fn new(kind: &SinkKind) -> anyhow::Result<Self> {
        Ok(match kind {
            SinkKind::Webhook { url, secret } => {
                Transport::Webhook(webhook::WebhookClient::new(url.clone(), secret)?)
            }
            SinkKind::Syslog { address } => {
                Transport::Syslog(syslog::SyslogClient::new(address.clone()))
            }
        })
    }

    async fn send(&mut self, event: &Event) -> Result<(), String> {
        match self {
            Transport::Webhook(w) => w.send(event).await,
            Transport::Syslog(s) => s.send(event).await,
        }
    }
}

/// Why a delivery loop stopped working its sink for now.
enum Interrupt {
    Stopped,
    LeaseLost,
}

/// One sink's delivery loop, until `stop` turns true.
pub async fn deliver_forever(
    db: Db,
    sink: Arc<SinkSpec>,
    max_backoff: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let owner = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7());
    let mut transport = match Transport::new(&sink.kind) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(sink = %sink.name, error = %e, "[EVENTS] the sink cannot start");
            return;
        }
    };
    let mut worker = Worker {
        db,
        sink,
        owner,
        max_backoff,
        last_renewal: Instant::now(),
        failing: 0,
        last_gauge: None,
    };
    loop {
        if *stop.borrow() {
            break;
        }
        match worker.run_leased(&mut transport, &mut stop).await {
            Interrupt::Stopped => break,
            Interrupt::LeaseLost => {
                tracing::info!(sink = %worker.sink.name, "[EVENTS] another instance delivers this sink now");
            }
        }
    }
    if let Err(e) = worker
        .db
        .release_sink_lease(&worker.sink.name, &worker.owner)
        .await
    {
        tracing::warn!(sink = %worker.sink.name, error = %e, "releasing the sink's lease failed");
    }
}

struct Worker {
    db: Db,
    sink: Arc<SinkSpec>,
    owner: String,
    max_backoff: Duration,
    last_renewal: Instant,
    /// Failed tries of the current event.
    failing: u32,
    last_gauge: Option<Instant>,
}

impl Worker {
    fn lease_until(&self) -> chrono::DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::seconds(5))
    }

    /// Takes the lease (waiting for it), then delivers until stopped or
    /// until the lease is lost.
    async fn run_leased(
        &mut self,
        transport: &mut Transport,
        stop: &mut watch::Receiver<bool>,
    ) -> Interrupt {
        loop {
            let now = Utc::now();
            match self
                .db
                .take_sink_lease(&self.sink.name, &self.owner, now, self.lease_until())
                .await
            {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(sink = %self.sink.name, error = %e, "taking the sink's lease failed")
                }
            }
            self.gauge(None).await;
            if sleep_or_stop(LEASE_CHECK, stop).await {
                return Interrupt::Stopped;
            }
        }
        self.last_renewal = Instant::now();
        let mut position = match self.db.sink_position(&self.sink.name).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(sink = %self.sink.name, error = %e, "reading the sink's position failed");
                return Interrupt::LeaseLost;
            }
        };
        loop {
            if *stop.borrow() {
                return Interrupt::Stopped;
            }
            let events = match self.db.events_after(position, PAGE).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(sink = %self.sink.name, error = %e, "reading events failed");
                    if sleep_or_stop(LEASE_CHECK, stop).await {
                        return Interrupt::Stopped;
                    }
                    continue;
                }
            };
            self.gauge(Some(position)).await;
            if events.is_empty() {
                if let Err(interrupt) = self.renew_if_due(false).await {
                    return interrupt;
                }
                if sleep_or_stop(POLL, stop).await {
                    return Interrupt::Stopped;
                }
                continue;
            }
            let mut skipped = None;
            for event in &events {
                if !wanted(&self.sink.types, &event.event_type) {
                    skipped = Some(event.seq);
                    continue;
                }
                if let Err(interrupt) = self.deliver(transport, event, stop).await {
                    return interrupt;
                }
                skipped = None;
                position = event.seq;
            }
            if let Some(seq) = skipped {
                // Events of other types only: move past them.
                match self
                    .db
                    .record_sink_progress(
                        &self.sink.name,
                        &self.owner,
                        seq,
                        false,
                        Utc::now(),
                        self.lease_until(),
                    )
                    .await
                {
                    Ok(true) => {
                        position = seq;
                        self.last_renewal = Instant::now();
                    }
                    Ok(false) => return Interrupt::LeaseLost,
                    Err(e) => {
                        tracing::warn!(sink = %self.sink.name, error = %e, "storing the sink's position failed")
                    }
                }
            }
        }
    }

    /// Sends one event until it is accepted, then stores the position.
    async fn deliver(
        &mut self,
        transport: &mut Transport,
        event: &Event,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), Interrupt> {
        let mut backoff = FIRST_BACKOFF.min(self.max_backoff);
        loop {
            self.renew_if_due(true).await?;
            match transport.send(event).await {
                Ok(()) => break,
                Err(error) => {
                    metrics::counter!("tms_sink_failures_total", "sink" => self.sink.name.clone())
                        .increment(1);
                    self.failing += 1;
                    if self.failing == 1 {
                        tracing::warn!(
                            sink = %self.sink.name, seq = event.seq, %error,
                            "[EVENTS] FAILED: sink={}, seq={}, error={}; retrying with back-off",
                            self.sink.name, event.seq, error
                        );
                    }
                    match self
                        .db
                        .record_sink_failure(
                            &self.sink.name,
                            &self.owner,
                            &error,
                            self.lease_until(),
                        )
                        .await
                    {
                        Ok(true) => self.last_renewal = Instant::now(),
                        Ok(false) => return Err(Interrupt::LeaseLost),
                        Err(e) => {
                            tracing::warn!(sink = %self.sink.name, error = %e, "storing the sink's error failed")
                        }
                    }
                    // Wait, renewing the lease, which lasts less than a long back-off.
                    let until = Instant::now() + backoff;
                    while Instant::now() < until {
                        let slice = until
                            .saturating_duration_since(Instant::now())
                            .min(LEASE_CHECK);
                        if sleep_or_stop(slice, stop).await {
                            return Err(Interrupt::Stopped);
                        }
                        self.renew_if_due(false).await?;
                    }
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
        if self.failing > 0 {
            tracing::info!(
                sink = %self.sink.name, seq = event.seq, failures = self.failing,
                "[EVENTS] RECOVERED: sink={}, seq={}, after {} failed tries",
                self.sink.name, event.seq, self.failing
            );
            self.failing = 0;
        }
        // Stored before the next event is sent: a crash repeats this one at most.
        loop {
            match self
                .db
                .record_sink_progress(
                    &self.sink.name,
                    &self.owner,
                    event.seq,
                    true,
                    Utc::now(),
                    self.lease_until(),
                )
                .await
            {
                Ok(true) => {
                    self.last_renewal = Instant::now();
                    return Ok(());
                }
                Ok(false) => return Err(Interrupt::LeaseLost),
                Err(e) => {
                    tracing::warn!(sink = %self.sink.name, error = %e, "storing the sink's position failed; retrying");
                    if sleep_or_stop(LEASE_CHECK, stop).await {
                        return Err(Interrupt::Stopped);
                    }
                }
            }
        }
    }

    /// Renews the lease once a renewal period has passed since the last
    /// renewal. `before_sending` is the fence: an instance frozen past its
    /// lease (its host paused it) may find another instance delivering the
    /// sink when it wakes, so before a send the lease must be confirmed by
    /// the store, and a store that does not answer counts as a lost lease;
    /// while idle or backing off, such a failure is only logged.
    async fn renew_if_due(&mut self, before_sending: bool) -> Result<(), Interrupt> {
        if self.last_renewal.elapsed() < LEASE_CHECK {
            return Ok(());
        }
        match self
            .db
            .take_sink_lease(&self.sink.name, &self.owner, Utc::now(), self.lease_until())
            .await
        {
            Ok(true) => {
                self.last_renewal = Instant::now();
                Ok(())
            }
            Ok(false) => Err(Interrupt::LeaseLost),
            Err(e) => {
                tracing::warn!(sink = %self.sink.name, error = %e, "renewing the sink's lease failed");
                if before_sending {
                    Err(Interrupt::LeaseLost)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Sets `tms_sink_pending{sink}` (at most once a second).
    async fn gauge(&mut self, position: Option<i64>) {
        if self.last_gauge.is_some_and(|t| t.elapsed() < LEASE_CHECK) {
            return;
        }
        self.last_gauge = Some(Instant::now());
        let delivered = match position {
            Some(p) => p,
            None => match self.db.sink_position(&self.sink.name).await {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        if let Ok(n) = pending(&self.db, &self.sink, delivered).await {
            metrics::gauge!("tms_sink_pending", "sink" => self.sink.name.clone()).set(n as f64);
        }
    }
}

/// Sleeps for `d`; true when `stop` turned true meanwhile.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(d) => None,
        _ = stop.wait_for(|s| *s) => Some(true),
    };
    stopped.unwrap_or_else(|| *stop.borrow())
}
