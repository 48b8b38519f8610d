//! Settings: built-in defaults, then the TOML file, then `TMS_*` environment
//! variables, then command-line flags (applied by `cli`). Every error names the
//! key at fault, and secrets never print.
//!
//! The layering is figment's: `Config` itself is the file's shape (its
//! `Default` gives the keys left out), and every top-level scalar key `k` can
//! also be set by the variable `TMS_K`, so a new key gets its variable without
//! a line of code here. `[[clusters]]`, `[[actions]]` and `[oidc]` are
//! file-only.

use std::path::Path;
use std::time::Duration;

use figment::error::Kind;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::domain::action::{
    Action, ActionCatalog, UpstreamMethod, DEFAULT_ACTION_PATH, DEFAULT_MAX_CIDS,
};
use crate::domain::cid::{CidPolicy, DEFAULT_CID_PATTERN};
use crate::domain::cluster::{Cluster, ClusterRegistry, DEFAULT_MAX_IN_FLIGHT, SANDBOX_TOKEN};
use crate::domain::secret::Secret;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

// By hand rather than derived: surrounding blanks are forgiven, as they always were.
impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(D::Error::custom(format!(
                "{text:?} is not \"text\" or \"json\""
            ))),
        }
    }
}

/// A cluster as configured.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
    pub label: Option<String>,
    pub base_url: String,
    /// Name of the environment variable holding the server-side token.
    pub token_env: Option<String>,
    /// Batches of runs in flight at once toward this cluster, across every
    /// instance (default 4).
    pub max_in_flight: Option<u32>,
    /// Batches of runs started per second toward this cluster, across every
    /// instance (default: no limit).
    pub max_per_second: Option<u32>,
    /// Every action on this cluster waits for a second person's approval.
    pub approval_required: Option<bool>,
}

/// An action as configured.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    pub name: String,
    pub code: i64,
    pub description: Option<String>,
    pub max_cids: Option<usize>,
    pub reason_required: Option<bool>,
    /// A request waits for a second person's approval.
    pub approval_required: Option<bool>,
    pub method: Option<String>,
    pub path: Option<String>,
}

/// A destination of the event feed (`[[sinks]]`, SPEC §15), as configured.
/// `crate::sinks::SinkSpec::from_config` checks it and reads its secret.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique; names the sink's stored position.
    pub name: String,
    /// `webhook` or `syslog`.
    pub kind: String,
    /// `webhook`: the http(s) URL each event is POSTed to.
    pub url: Option<String>,
    /// `webhook`: the environment variable holding the signing secret,
    /// `whsec_<base64>`.
    pub secret_env: Option<String>,
    /// `syslog`: `host:port` of a TCP syslog receiver.
    pub address: Option<String>,
    /// Only these types (`job.finalized`) or patterns (`job.*`); all when absent.
    #[serde(default)]
    pub types: Vec<String>,
}

/// Single sign-on through an OpenID Connect provider, as configured in `[oidc]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL; discovery reads `.well-known/openid-configuration` under it.
    pub issuer: String,
    pub client_id: String,
    /// Name of the environment variable holding the client secret; absent
    /// for a public client (PKCE alone).
    pub client_secret_env: Option<String>,
    /// The secret itself, read from `client_secret_env` when the settings load.
    #[serde(skip)]
    pub client_secret: Option<Secret>,
    /// Text of the login page's button.
    #[serde(default = "default_oidc_label")]
    pub label: String,
    /// The claim (ID token or userinfo) holding the user's groups.
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// Group (a value of `role_claim`) → role.
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, String>,
    /// `false`: only single sign-on, except for `admin` (break-glass).
    #[serde(default = "default_true")]
    pub local_login: bool,
    /// Scopes asked for; `openid` is always asked for.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The callback URL registered at the provider; by default this site's
    /// `/auth/oidc/callback` at the host the browser used.
    pub redirect_url: Option<String>,
}

fn default_oidc_label() -> String {
    "Single sign-on".into()
}

fn default_role_claim() -> String {
    "groups".into()
}

fn default_true() -> bool {
    true
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

impl OidcConfig {
    /// A configuration with the defaults of the optional keys.
    pub fn new(issuer: &str, client_id: &str) -> Self {
        OidcConfig {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret_env: None,
            client_secret: None,
            label: default_oidc_label(),
            role_claim: default_role_claim(),
            roles: Default::default(),
            local_login: true,
            scopes: default_scopes(),
            redirect_url: None,
        }
    }

    /// The group → role map, checked.
    pub fn role_map(&self) -> Result<crate::domain::sso::RoleMap, ConfigError> {
        let mut map = Vec::with_capacity(self.roles.len());
        for (group, role) in &self.roles {
            let role = crate::domain::user::Role::parse(role).ok_or_else(|| {
                ConfigError(format!(
                    "oidc.roles.{group}: {role:?} is not admin, operator or auditor"
                ))
            })?;
            map.push((group.clone(), role));
        }
        Ok(crate::domain::sso::RoleMap::new(map))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match reqwest::Url::parse(&self.issuer) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(ConfigError(format!(
                    "oidc.issuer: {:?} is not an http(s) URL",
                    self.issuer
                )))
            }
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigError("oidc.client_id: must not be empty".into()));
        }
        if self.role_claim.trim().is_empty() {
            return Err(ConfigError("oidc.role_claim: must not be empty".into()));
        }
        if let Some(url) = &self.redirect_url {
            if !matches!(reqwest::Url::parse(url), Ok(u) if matches!(u.scheme(), "http" | "https"))
            {
                return Err(ConfigError(format!(
                    "oidc.redirect_url: {url:?} is not an http(s) URL"
                )));
            }
        }
        if let (Some(var), None) = (&self.client_secret_env, &self.client_secret) {
            return Err(ConfigError(format!(
                "oidc.client_secret_env: environment variable {var} is not set"
            )));
        }
        self.role_map().map(|_| ())
    }
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret_env", &self.client_secret_env)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("label", &self.label)
            .field("role_claim", &self.role_claim)
            .field("roles", &self.roles)
            .field("local_login", &self.local_login)
            .field("scopes", &self.scopes)
            .field("redirect_url", &self.redirect_url)
            .finish()
    }
}

/// Everything the dashboard needs to start. Deserialised, it is the file's
/// shape: every key optional, `Config::default()` filling the rest.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub bind: String,
    pub database_url: String,
    #[serde(deserialize_with = "duration")]
    pub upstream_timeout: Duration,
    /// Window of the recent-duplicate guard; zero turns it off.
    #[serde(deserialize_with = "duration")]
    pub duplicate_guard_window: Duration,
    pub secure_cookies: bool,
    pub log_format: LogFormat,
    /// Serve the simulated cluster at `/sandbox` and offer it as `sandbox`;
    /// when not given, on exactly when no `[[clusters]]` are configured.
    pub sandbox: bool,
    pub clusters: Vec<ClusterConfig>,
    /// `None` keeps the default catalog.
    pub actions: Option<Vec<ActionConfig>>,
    /// Password of the first `admin`; generated and printed once when absent.
    /// Not a file key (it never was): only `TMS_ADMIN_PASSWORD` sets it.
    #[serde(skip)]
    pub admin_password: Option<String>,
    /// How often stale `pending` jobs are resolved (at most 10 s).
    #[serde(deserialize_with = "duration")]
    pub sweep_interval: Duration,
    /// How often finalised jobs are chained into the audit (`audit_hash`).
    #[serde(deserialize_with = "duration")]
    pub seal_interval: Duration,
    pub cid_pattern: String,
    pub max_connections: u32,
    /// How long a request waits for a store connection before `503`.
    #[serde(deserialize_with = "duration")]
    pub pool_acquire_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub session_ttl: Duration,
    /// Jobs older than this many days are deleted (the only deletion of
    /// jobs); `None` keeps them forever, as `0` does.
    #[serde(deserialize_with = "zero_is_off")]
    pub retention_days: Option<u32>,
    /// The most CIDs one run may hold.
    pub max_run_cids: usize,
    /// How long a request for approval waits before it expires.
    #[serde(deserialize_with = "duration")]
    pub approval_ttl: Duration,
    /// Single sign-on; `None`: only local accounts.
    pub oidc: Option<OidcConfig>,
    /// Where the event feed is delivered.
    pub sinks: Vec<SinkConfig>,
    /// The longest wait between two tries of a failing sink.
    #[serde(deserialize_with = "duration")]
    pub sink_max_backoff: Duration,
    /// Not for users: `false` writes no events (the benchmark's baseline
    /// for the outbox's cost). Every change is an event otherwise.
    pub outbox: bool,
}

/// The one reading of a duration, for every key: `"30s"`, `"1500ms"`, `"10m"`.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(text.trim()).map_err(|e| {
        D::Error::custom(format!(
            "{text:?} is not a duration like \"30s\" or \"1500ms\" ({e})"
        ))
    })
}

/// `retention_days`: `0` means what leaving it out means, keep jobs forever.
fn zero_is_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let days = u32::deserialize(d)?;
    Ok((days > 0).then_some(days))
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            database_url: "sqlite://data/tms-dashboard.db".into(),
            upstream_timeout: Duration::from_secs(30),
            duplicate_guard_window: Duration::from_secs(600),
            secure_cookies: false,
            log_format: LogFormat::Text,
            sandbox: true,
            clusters: Vec::new(),
            actions: None,
            admin_password: None,
            sweep_interval: Duration::from_secs(10),
            seal_interval: Duration::from_secs(1),
            cid_pattern: DEFAULT_CID_PATTERN.into(),
            max_connections: 16,
            pool_acquire_timeout: Duration::from_secs(5),
            session_ttl: Duration::from_secs(12 * 3600),
            retention_days: None,
            max_run_cids: 100_000,
            approval_ttl: Duration::from_secs(24 * 3600),
            oidc: None,
            sinks: Vec::new(),
            sink_max_backoff: Duration::from_secs(300),
            outbox: true,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("upstream_timeout", &self.upstream_timeout)
            .field("duplicate_guard_window", &self.duplicate_guard_window)
            .field("secure_cookies", &self.secure_cookies)
            .field("log_format", &self.log_format)
            .field("sandbox", &self.sandbox)
            .field("clusters", &self.clusters)
            .field("actions", &self.actions)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "[redacted]"),
            )
            .field("sweep_interval", &self.sweep_interval)
            .field("seal_interval", &self.seal_interval)
            .field("cid_pattern", &self.cid_pattern)
            .field("max_connections", &self.max_connections)
            .field("pool_acquire_timeout", &self.pool_acquire_timeout)
            .field("session_ttl", &self.session_ttl)
            .field("retention_days", &self.retention_days)
            .field("max_run_cids", &self.max_run_cids)
            .field("approval_ttl", &self.approval_ttl)
            .field("oidc", &self.oidc)
            .field("sinks", &self.sinks)
            .field("sink_max_backoff", &self.sink_max_backoff)
            .field("outbox", &self.outbox)
            .finish()
    }
}

/// Hides the password of a `postgres://user:password@host/db` URL.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("[redacted]"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A configuration error; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// The tables, which stay file-only: a list or a table has no sensible
/// spelling as one variable.
const FILE_ONLY_KEYS: [&str; 4] = ["clusters", "actions", "oidc", "sinks"];

/// The variable that sets the top-level key `key`: `session_ttl` → `TMS_SESSION_TTL`.
fn env_var(key: &str) -> String {
    format!("TMS_{}", key.to_ascii_uppercase())
}

/// The top-level keys that a `TMS_*` variable can set, as `Config`'s derived
/// `Deserialize` lists them (its answer to an unknown key names them all), so
/// this list cannot drift from the struct.
fn env_keys() -> Vec<&'static str> {
    let all = match Figment::from(Serialized::default("?", 0)).extract::<Config>() {
        Err(e) => match e.kind {
            Kind::UnknownField(_, keys) => keys,
            _ => &[],
        },
        Ok(_) => &[],
    };
    all.iter()
        .copied()
        .filter(|key| !FILE_ONLY_KEYS.contains(key))
        .collect()
}

impl Config {
    /// Reads the optional file, then the environment (through `env`, so tests
    /// need not touch the process environment), and checks the result.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
                // The file alone first, strictly: `max_connections = "16"`
                // stays an error there (the lenient reading below is meant
                // for environment text), and TOML's messages show the line.
                toml::from_str::<Config>(&text).map_err(|e| {
                    ConfigError(format!("{}: {}", path.display(), e.to_string().trim_end()))
                })?;
                text
            }
            None => String::new(),
        };
        // Each variable's text goes in as a string, and the lossy extraction
        // reads it as its key's type asks: `1` is true for a flag, `90` a
        // number of days, while `TMS_ADMIN_PASSWORD=12345678` or a numeric
        // `TMS_CID_PATTERN` stay text (figment's own `Env` would have made
        // them numbers, and reads the process environment besides).
        let vars: Dict = env_keys()
            .into_iter()
            .filter_map(|key| Some((key.to_owned(), Value::from(env(&env_var(key))?))))
            .collect();
        let figment = Figment::from(Toml::string(&text)).merge(Serialized::defaults(&vars));
        let mut c: Config = figment.extract_lossy().map_err(|e| {
            // The file passed above, so a key at fault here came from its variable.
            match e.path.first().filter(|key| vars.contains_key(*key)) {
                Some(key) => ConfigError(format!("{}: {}", env_var(key), e.kind)),
                None => ConfigError(e.to_string()),
            }
        })?;
        if !figment.contains("sandbox") {
            c.sandbox = c.clusters.is_empty();
        }
        // An empty value counts as unset, as `export TMS_ADMIN_PASSWORD=` means.
        c.admin_password = env("TMS_ADMIN_PASSWORD").filter(|v| !v.is_empty());
        if let Some(oidc) = &mut c.oidc {
            if let Some(var) = &oidc.client_secret_env {
                oidc.client_secret = env(var).filter(|v| !v.is_empty()).map(Secret::new);
            }
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks the values that have rules beyond their type.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bind.trim().is_empty() {
            return Err(ConfigError(
                "bind: must be an address like 127.0.0.1:8080".into(),
            ));
        }
        let db = self.database_url.as_str();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(ConfigError(format!(
                "database_url: {:?} must start with sqlite:// or postgres://",
                redact_url(db)
            )));
        }
        if self.upstream_timeout.is_zero() || self.upstream_timeout > Duration::from_secs(600) {
            return Err(ConfigError(
                "upstream_timeout: must be more than 0 s and at most 10 min".into(),
            ));
        }
        if self.sweep_interval.is_zero() || self.sweep_interval > Duration::from_secs(10) {
            return Err(ConfigError(
                "sweep_interval: must be more than 0 s and at most 10 s".into(),
            ));
        }
        if self.seal_interval.is_zero() || self.seal_interval > Duration::from_secs(3600) {
            return Err(ConfigError(
                "seal_interval: must be more than 0 s and at most 1 h".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError("max_connections: must be at least 1".into()));
        }
        if self.approval_ttl < Duration::from_secs(1) {
            return Err(ConfigError("approval_ttl: must be at least 1s".into()));
        }
        if !(1..=10_000_000).contains(&self.max_run_cids) {
            return Err(ConfigError(
                "max_run_cids: must be from 1 to 10000000".into(),
            ));
        }
        if self.pool_acquire_timeout.is_zero() {
            return Err(ConfigError(
                "pool_acquire_timeout: must be more than 0 s".into(),
            ));
        }
        if self.retention_days.is_some_and(|d| d > 36_500) {
            return Err(ConfigError(
                "retention_days: must be at most 36500 (0 keeps jobs forever)".into(),
            ));
        }
        if self.session_ttl < Duration::from_secs(60) {
            return Err(ConfigError("session_ttl: must be at least 1 min".into()));
        }
        self.cid_policy()?;
        self.catalog()?;
        if let Some(oidc) = &self.oidc {
            oidc.validate()?;
        }
        for (i, cluster) in self.clusters.iter().enumerate() {
            let key = format!("clusters[{i}]");
            if cluster.name.trim().is_empty() || cluster.name == "sandbox" && self.sandbox {
                return Err(ConfigError(format!(
                    "{key}.name: must be non-empty and not \"sandbox\" while the sandbox runs"
                )));
            }
            match reqwest::Url::parse(&cluster.base_url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => {
                    return Err(ConfigError(format!(
                        "{key}.base_url: {:?} is not an http(s) URL",
                        cluster.base_url
                    )))
                }
            }
        }
        if self.sink_max_backoff < Duration::from_millis(10)
            || self.sink_max_backoff > Duration::from_secs(86_400)
        {
            return Err(ConfigError(
                "sink_max_backoff: must be from 10 ms to 24 h".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, sink) in self.sinks.iter().enumerate() {
            crate::sinks::SinkSpec::check(i, sink)?;
            if !names.insert(sink.name.as_str()) {
                return Err(ConfigError(format!(
                    "sinks[{i}].name: {:?} is used by another sink",
                    sink.name
                )));
            }
        }
        if !self.sandbox && self.clusters.is_empty() {
            return Err(ConfigError(
                "clusters: none configured and the sandbox is off".into(),
            ));
        }
        Ok(())
    }

    pub fn cid_policy(&self) -> Result<CidPolicy, ConfigError> {
        CidPolicy::new(&self.cid_pattern).map_err(|e| ConfigError(format!("cid_pattern: {e}")))
    }

    /// The action catalog: the configured one, or the default.
    pub fn catalog(&self) -> Result<ActionCatalog, ConfigError> {
        let Some(configured) = &self.actions else {
            return Ok(ActionCatalog::default());
        };
        let mut actions = Vec::with_capacity(configured.len());
        for (i, a) in configured.iter().enumerate() {
            let key = format!("actions[{i}]");
            if a.name.trim().is_empty() {
                return Err(ConfigError(format!("{key}.name: must not be empty")));
            }
            let method = match &a.method {
                None => UpstreamMethod::Post,
                Some(m) => UpstreamMethod::parse(m).ok_or_else(|| {
                    ConfigError(format!("{key}.method: {m:?} is not POST, PUT or PATCH"))
                })?,
            };
            let path = a.path.clone().unwrap_or_else(|| DEFAULT_ACTION_PATH.into());
            if !path.starts_with('/') {
                return Err(ConfigError(format!(
                    "{key}.path: {path:?} must start with /"
                )));
            }
            let max_cids = a.max_cids.unwrap_or(DEFAULT_MAX_CIDS);
            if max_cids == 0 {
                return Err(ConfigError(format!("{key}.max_cids: must be at least 1")));
            }
            actions.push(Action {
                name: a.name.clone(),
                code: a.code,
                description: a.description.clone().unwrap_or_default(),
                max_cids,
                reason_required: a.reason_required.unwrap_or(false),
                approval_required: a.approval_required.unwrap_or(false),
                method,
                path,
            });
        }
        ActionCatalog::new(actions).map_err(|e| ConfigError(format!("actions: {e}")))
    }

    /// The configured clusters with their server-side tokens read from the
    /// environment, plus the sandbox at `sandbox_url` when it runs.
    pub fn cluster_registry(
        &self,
        sandbox_url: Option<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ClusterRegistry, ConfigError> {
        let mut clusters = Vec::new();
        if let (true, Some(url)) = (self.sandbox, sandbox_url) {
            clusters.push(Cluster {
                name: "sandbox".into(),
                label: "Sandbox (simulated)".into(),
                base_url: url,
                token: Some(Secret::new(SANDBOX_TOKEN)),
                max_in_flight: DEFAULT_MAX_IN_FLIGHT,
                max_per_second: None,
                approval_required: false,
            });
        }
        for (i, c) in self.clusters.iter().enumerate() {
            let token = match &c.token_env {
                None => None,
                Some(var) => Some(Secret::new(env(var).filter(|v| !v.is_empty()).ok_or_else(
                    || {
                        ConfigError(format!(
                            "clusters[{i}].token_env: environment variable {var} is not set"
                        ))
                    },
                )?)),
            };
            clusters.push(Cluster {
                name: c.name.clone(),
                label: c.label.clone().unwrap_or_else(|| c.name.clone()),
                base_url: c.base_url.trim_end_matches('/').to_owned(),
                token,
                max_in_flight: c.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT),
                max_per_second: c.max_per_second,
                approval_required: c.approval_required.unwrap_or(false),
            });
        }
        ClusterRegistry::new(clusters).map_err(|e| ConfigError(format!("clusters: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_match_the_specification() {
        let c = Config::load(None, &env_of(&[])).unwrap();
        assert_eq!(c.bind, "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://data/tms-dashboard.db");
        assert_eq!(c.upstream_timeout, Duration::from_secs(30));
        assert!(c.sandbox && !c.secure_cookies);
    }

    #[test]
    fn environment_overrides_the_file() {
        let f = file("bind = \"127.0.0.1:9000\"\nupstream_timeout = \"5s\"\n");
        let c = Config::load(
            Some(f.path()),
            &env_of(&[
                ("TMS_UPSTREAM_TIMEOUT", "1500ms"),
                ("TMS_SECURE_COOKIES", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.bind, "127.0.0.1:9000");
        assert_eq!(c.upstream_timeout, Duration::from_millis(1500));
        assert!(c.secure_cookies);
    }

    #[test]
    fn errors_name_the_key_at_fault() {
        let err = Config::load(None, &env_of(&[("TMS_UPSTREAM_TIMEOUT", "soon")])).unwrap_err();
        assert!(err.0.contains("TMS_UPSTREAM_TIMEOUT"), "{err}");
        let f = file("upstream_timeot = \"5s\"\n");
        let err = Config::load(Some(f.path()), &env_of(&[])).unwrap_err();
        assert!(err.0.contains("upstream_timeot"), "{err}");
        let f = file("[[clusters]]\nname = \"eu\"\nbase_url = \"ftp://x\"\n");
        let err = Config::load(Some(f.path()), &env_of(&[])).unwrap_err();
        assert!(err.0.contains("clusters[0].base_url"), "{err}");
    }

    #[test]
    fn every_top_level_scalar_key_has_its_variable() {
        assert_eq!(
            env_keys(),
            [
                "bind",
                "database_url",
                "upstream_timeout",
                "duplicate_guard_window",
                "secure_cookies",
                "log_format",
                "sandbox",
                "sweep_interval",
                "seal_interval",
                "cid_pattern",
                "max_connections",
                "pool_acquire_timeout",
                "session_ttl",
                "retention_days",
                "max_run_cids",
                "approval_ttl",
                "sink_max_backoff",
                "outbox",
            ]
        );
        let c = Config::load(
            None,
            &env_of(&[
                ("TMS_SESSION_TTL", "2h"),
                ("TMS_MAX_CONNECTIONS", "4"),
                ("TMS_POOL_ACQUIRE_TIMEOUT", "250ms"),
                ("TMS_CID_PATTERN", "^[0-9]{3}$"),
                ("TMS_DUPLICATE_GUARD_WINDOW", "0s"),
                ("TMS_LOG_FORMAT", "json"),
                ("TMS_SWEEP_INTERVAL", " 2s "),
                ("TMS_SEAL_INTERVAL", "1500ms"),
                ("TMS_DATABASE_URL", "postgres://u:pw@db/tms"),
            ]),
        )
        .unwrap();
        assert_eq!(c.session_ttl, Duration::from_secs(7200));
        assert_eq!(c.max_connections, 4);
        assert_eq!(c.pool_acquire_timeout, Duration::from_millis(250));
        assert_eq!(c.cid_pattern, "^[0-9]{3}$");
        assert!(c.duplicate_guard_window.is_zero());
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.sweep_interval, Duration::from_secs(2));
        assert_eq!(c.seal_interval, Duration::from_millis(1500));
        assert_eq!(c.database_url, "postgres://u:pw@db/tms");
        let err = Config::load(None, &env_of(&[("TMS_MAX_CONNECTIONS", "many")])).unwrap_err();
        assert!(err.0.starts_with("TMS_MAX_CONNECTIONS: "), "{err}");
        let err = Config::load(None, &env_of(&[("TMS_LOG_FORMAT", "xml")])).unwrap_err();
        assert!(err.0.starts_with("TMS_LOG_FORMAT: \"xml\""), "{err}");
    }

    #[test]
    fn variables_that_look_like_numbers_stay_text_for_text_keys() {
        let c = Config::load(
            None,
            &env_of(&[
                ("TMS_ADMIN_PASSWORD", "12345678"),
                ("TMS_CID_PATTERN", "1234"),
                ("TMS_BIND", "127.0.0.1:8080"),
            ]),
        )
        .unwrap();
        assert_eq!(c.admin_password.as_deref(), Some("12345678"));
        assert_eq!(c.cid_pattern, "1234");
        assert_eq!(c.bind, "127.0.0.1:8080");
        let c = Config::load(None, &env_of(&[("TMS_CID_PATTERN", "true")])).unwrap();
        assert_eq!(c.cid_pattern, "true");
        let c = Config::load(None, &env_of(&[("TMS_ADMIN_PASSWORD", "007")])).unwrap();
        assert_eq!(c.admin_password.as_deref(), Some("007"));
        let c = Config::load(None, &env_of(&[("TMS_ADMIN_PASSWORD", "")])).unwrap();
        assert_eq!(c.admin_password, None);
    }

    #[test]
    fn flags_take_true_false_1_0_from_the_environment_but_only_booleans_in_the_file() {
        for (text, want) in [
            ("true", true),
            ("1", true),
            ("TRUE", true),
            ("false", false),
            ("0", false),
        ] {
            let c = Config::load(None, &env_of(&[("TMS_SECURE_COOKIES", text)])).unwrap();
            assert_eq!(c.secure_cookies, want, "{text}");
        }
        let err = Config::load(None, &env_of(&[("TMS_SECURE_COOKIES", "maybe")])).unwrap_err();
        assert!(err.0.contains("TMS_SECURE_COOKIES"), "{err}");
        for text in [
            "secure_cookies = \"true\"\n",
            "max_connections = \"16\"\n",
            "upstream_timeout = 5\n",
            "admin_password = \"hunter2\"\n",
        ] {
            let f = file(text);
            let key = text.split(' ').next().unwrap();
            let err = Config::load(Some(f.path()), &env_of(&[])).unwrap_err();
            assert!(err.0.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn the_sandbox_variable_wins_over_the_clusters_rule() {
        let f = file("[[clusters]]\nname = \"eu\"\nbase_url = \"https://tms-eu.internal/\"\n");
        let c = Config::load(Some(f.path()), &env_of(&[("TMS_SANDBOX", "true")])).unwrap();
        assert!(c.sandbox);
        let f = file("sandbox = true\n");
        let err = Config::load(Some(f.path()), &env_of(&[("TMS_SANDBOX", "0")])).unwrap_err();
        assert!(err.0.contains("clusters: none configured"), "{err}");
    }

    #[test]
    fn other_tms_variables_are_left_alone() {
        let c = Config::load(
            None,
            &env_of(&[
                ("TMS_CONFIG", "/etc/tms.toml"),
                ("TMS_EU_PROD_TOKEN", "s3cret"),
                ("TMS_CLUSTERS", "eu"),
                ("TMS_OIDC", "on"),
            ]),
        )
        .unwrap();
        assert!(c.clusters.is_empty() && c.oidc.is_none());
    }

    #[test]
    fn configured_clusters_turn_the_sandbox_off_unless_asked() {
        let f = file("[[clusters]]\nname = \"eu\"\nbase_url = \"https://tms-eu.internal/\"\ntoken_env = \"EU_TOKEN\"\n");
        let c = Config::load(Some(f.path()), &env_of(&[])).unwrap();
        assert!(!c.sandbox);
        let env = env_of(&[("EU_TOKEN", "s3cret")]);
        let registry = c
            .cluster_registry(Some("http://x/sandbox".into()), &env)
            .unwrap();
        let eu = registry.get("eu").unwrap();
        assert_eq!(eu.base_url, "https://tms-eu.internal");
        assert_eq!(eu.token.as_ref().unwrap().expose(), "s3cret");
        assert!(registry.get("sandbox").is_none());
        assert!(c
            .cluster_registry(None, &env_of(&[]))
            .unwrap_err()
            .0
            .contains("EU_TOKEN"));
    }

    #[test]
    fn a_configured_catalog_replaces_the_default() {
        let f = file("[[actions]]\nname = \"Ping\"\ncode = 9\nreason_required = true\n");
        let c = Config::load(Some(f.path()), &env_of(&[])).unwrap();
        let catalog = c.catalog().unwrap();
        assert!(catalog.get("Trans-Begin").is_none());
        let ping = catalog.get("Ping").unwrap();
        assert!(ping.reason_required && ping.max_cids == 500 && ping.path == DEFAULT_ACTION_PATH);
    }

    #[test]
    fn retention_is_off_unless_configured_and_zero_turns_it_off() {
        assert_eq!(
            Config::load(None, &env_of(&[])).unwrap().retention_days,
            None
        );
        let f = file("retention_days = 90\n");
        let c = Config::load(Some(f.path()), &env_of(&[])).unwrap();
        assert_eq!(c.retention_days, Some(90));
        let c = Config::load(Some(f.path()), &env_of(&[("TMS_RETENTION_DAYS", "0")])).unwrap();
        assert_eq!(c.retention_days, None);
        assert!(Config::load(None, &env_of(&[("TMS_RETENTION_DAYS", "soon")])).is_err());
        assert!(Config::load(None, &env_of(&[("TMS_RETENTION_DAYS", "99999")])).is_err());
    }

    #[test]
    fn the_oidc_table_reads_its_secret_from_the_environment() {
        let f = file(
            "[oidc]\nissuer = \"https://id.example.internal/\"\nclient_id = \"tms\"\n\
             client_secret_env = \"OIDC_SECRET\"\nlabel = \"Company SSO\"\n\
             roles = { \"tms-ops\" = \"operator\" }\nlocal_login = false\n",
        );
        let c = Config::load(Some(f.path()), &env_of(&[("OIDC_SECRET", "s3cret")])).unwrap();
        let oidc = c.oidc.as_ref().unwrap();
        assert_eq!(oidc.client_secret.as_ref().unwrap().expose(), "s3cret");
        assert!(!oidc.local_login && oidc.role_claim == "groups" && oidc.label == "Company SSO");
        assert!(!format!("{c:?}").contains("s3cret"));
        let err = Config::load(Some(f.path()), &env_of(&[])).unwrap_err();
        assert!(err.0.contains("OIDC_SECRET"), "{err}");
        let f = file(
            "[oidc]\nissuer = \"https://id/\"\nclient_id = \"tms\"\nroles = { g = \"root\" }\n",
        );
        let err = Config::load(Some(f.path()), &env_of(&[])).unwrap_err();
        assert!(err.0.contains("oidc.roles.g"), "{err}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = Config {
            admin_password: Some("hunter2".into()),
            database_url: "postgres://u:pw@h/db".into(),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains(":pw@"),
            "{shown}"
        );
    }
}
