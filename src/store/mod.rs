//! The store: one `Db` over SQLite or PostgreSQL, chosen once from the URL.
//! Every query is written once in the dialect both understand (`$N` binds,
//! `ON CONFLICT`, times bound from Rust): reads run on whichever pool is
//! live (`with_pool!`), writes through the write seam (`tx`), which on SQLite
//! sends every write of the process to one writer. The few statements whose
//! dialects differ are chosen by `Backend`, beside each other.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, SqliteConnection, SqlitePool};

pub mod approvals;
pub mod audit;
pub mod backup;
pub mod events;
pub mod jobs;
pub mod oidc;
pub mod runs;
pub mod sessions;
pub mod stats;
pub mod tokens;
pub mod tx;
pub mod users;
pub mod writer;

pub use tx::Backend;

/// Runs the same read on whichever pool is live; `$pool` names it. Writes
/// go through `tx::write_tx!` instead.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite(sqlite) => {
                let $pool = &sqlite.pool;
                $body
            }
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The live store.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(Sqlite),
    Postgres(PgPool),
}

/// A SQLite store: a read-only pool for reads, and the one writer every
/// write of the process goes through.
#[derive(Clone, Debug)]
pub struct Sqlite {
    pub pool: SqlitePool,
    pub writer: writer::Writer,
}

/// Pool settings.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The file path inside a `sqlite://` URL, for creating its folder.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// The store a URL names as a person should read it: a SQLite file by its
/// absolute path, a PostgreSQL URL with its password as `***`.
pub fn describe_url(url: &str) -> String {
    if let Some(path) = sqlite_path(url) {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.into());
        return format!("sqlite://{}", absolute.display());
    }
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl Db {
    /// Opens the store the URL names and applies the migrations embedded in
    /// the binary: what every command that opens the store does.
    pub async fn open(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Self::open_sqlite(url, settings).await
        } else {
            Self::open_postgres(url, settings).await
        }
    }

    async fn open_sqlite(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let path = sqlite_path(url)
            .context("The SQLite store must be a file (the writer opens it too)")?;
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("Failed to create the folder {}", parent.display()))?;
            }
        }
        // An answered job must survive a power cut: WAL with FULL sync.
        let options = SqliteConnectOptions::from_str(url)
            .context("Failed to parse the SQLite URL")?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // Migrations first, on a connection of their own, so the pool can be
        // read-only: every other write goes through the writer.
        let mut migrating =
            SqliteConnection::connect_with(&options.clone().create_if_missing(true))
                .await
                .context("Failed to open the SQLite store")?;
        sqlx::migrate!("migrations/sqlite")
            .run(&mut migrating)
            .await
            .context("Failed to migrate the store")?;
        migrating
            .close()
            .await
            .context("Failed to open the SQLite store")?;
        let writer = writer::Writer::start(std::path::Path::new(path))
            .context("Failed to start the SQLite writer")?;
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.read_only(true))
            .await
            .context("Failed to open the SQLite store")?;
        Ok(Db::Sqlite(Sqlite { pool, writer }))
    }

    async fn open_postgres(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let options =
            PgConnectOptions::from_str(url).context("Failed to parse the PostgreSQL URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await
            .context("Failed to connect to PostgreSQL")?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .context("Failed to migrate the store")?;
        Ok(Db::Postgres(pool))
    }

    /// True when the store answers a trivial query.
    pub async fn ping(&self) -> bool {
        let probe = async {
            with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), probe).await,
            Ok(Ok(()))
        )
    }

    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{describe_url, sqlite_path};

    #[test]
    fn a_store_is_described_by_its_absolute_path_or_without_its_password() {
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            describe_url("sqlite://data/x.db"),
            format!("sqlite://{}/data/x.db", here.display())
        );
        assert_eq!(describe_url("sqlite:///var/x.db"), "sqlite:///var/x.db");
        assert_eq!(
            describe_url("postgres://tms:s3cret@db:5432/tms"),
            "postgres://tms:***@db:5432/tms"
        );
        assert_eq!(describe_url("postgres://db/tms"), "postgres://db/tms");
    }

    #[test]
    fn sqlite_urls_name_relative_and_absolute_paths() {
        assert_eq!(sqlite_path("sqlite://data/x.db"), Some("data/x.db"));
        assert_eq!(
            sqlite_path("sqlite:///abs/x.db?mode=rwc"),
            Some("/abs/x.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
