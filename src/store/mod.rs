//! The store: one `Db` over SQLite or PostgreSQL, chosen once from the URL.
//! Every query is written once in the dialect both understand (`$N` binds,
//! `ON CONFLICT`, times bound from Rust) and run on whichever pool is live.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

pub mod audit;
pub mod jobs;
pub mod oidc;
pub mod sessions;
pub mod stats;
pub mod tokens;
pub mod users;
pub mod writer;

/// Runs the same expression on whichever pool is live; `$pool` names it.
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

/// Opens a write transaction: `BEGIN IMMEDIATE` on SQLite, so the write lock is
/// taken up front and a read-then-write transaction can never fail to upgrade.
macro_rules! write_tx {
    ($pool:ident) => {
        $crate::store::WriteTx::begin($pool).await
    };
}
pub(crate) use write_tx;

/// How each backend opens a write transaction.
pub(crate) trait WriteTx: Sized {
    type Db: sqlx::Database;
    async fn begin(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl WriteTx for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl WriteTx for PgPool {
    type Db = sqlx::Postgres;
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        sqlx::Pool::begin(self).await
    }
}

/// Serialises the transactions that change many finalised jobs at once (the
/// sealer, duplicate marking, retention) so they never deadlock each other on
/// PostgreSQL; SQLite's single writer already does.
macro_rules! lock_job_batches {
    ($db:expr, $tx:expr) => {
        if let $crate::store::Db::Postgres(_) = $db {
            sqlx::query("SELECT pg_advisory_xact_lock(7277001)")
                .execute(&mut *$tx)
                .await?;
        }
    };
}
pub(crate) use lock_job_batches;

/// A value bound to a query assembled at run time (the job filters).
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Text(String),
    Time(DateTime<Utc>),
    Uuid(Uuid),
    Int(i64),
}

/// Binds `Arg`s in order onto a query of either backend.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                $crate::store::Arg::Text(v) => q.bind(v.clone()),
                $crate::store::Arg::Time(v) => q.bind(*v),
                $crate::store::Arg::Uuid(v) => q.bind(*v),
                $crate::store::Arg::Int(v) => q.bind(*v),
            };
        }
        q
    }};
}
pub(crate) use bind_args;

/// The live store.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(Sqlite),
    Postgres(PgPool),
}

/// A SQLite store: the pool for reads and rare writes, and the group-commit
/// writer for the Set Action's hot path.
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
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

impl Db {
    /// Connects to the store the URL names (without migrating).
    pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            if let Some(parent) = sqlite_path(url).and_then(|p| std::path::Path::new(p).parent()) {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).with_context(|| {
                        format!("Failed to create the folder {}", parent.display())
                    })?;
                }
            }
            // An answered job must survive a power cut: WAL with FULL sync.
            let options = SqliteConnectOptions::from_str(url)
                .context("Failed to parse the SQLite URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options)
                .await
                .context("Failed to open the SQLite store")?;
            let path = sqlite_path(url)
                .context("The SQLite store must be a file (the writer opens it too)")?;
            let writer = writer::Writer::start(std::path::Path::new(path))
                .context("Failed to start the SQLite writer")?;
            Ok(Db::Sqlite(Sqlite { pool, writer }))
        } else {
            let options =
                PgConnectOptions::from_str(url).context("Failed to parse the PostgreSQL URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options)
                .await
                .context("Failed to connect to PostgreSQL")?;
            Ok(Db::Postgres(pool))
        }
    }

    /// Applies the migrations embedded in the binary.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(sqlite) => sqlx::migrate!("migrations/sqlite").run(&sqlite.pool).await,
            Db::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await,
        }
        .context("Failed to migrate the store")
    }

    /// Connects and migrates: what every command that opens the store does.
    pub async fn open(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let db = Self::connect(url, settings).await?;
        db.migrate().await?;
        Ok(db)
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

    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}

/// True when the error is a violation of a unique constraint.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

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
