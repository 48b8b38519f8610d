//! The write seam: every write of the store is one async function over a
//! `Tx`, written once for both stores. What differs between the drivers
//! lives here and nowhere else: how a value is bound, how a column is read
//! back, and how a write gets its transaction.
//!
//! On PostgreSQL a write runs in a transaction of its own on the pool
//! (`PgTx`, through sqlx). On SQLite it runs on the writer's thread and
//! connection (`SqliteTx`, through rusqlite), inside a savepoint of the
//! writer's current batch (see `store::writer`): one writer for every write
//! of the process, so writes never wait on each other's locks. Either way a
//! write that returns `Err` changes nothing.
//!
//! `SqliteTx` binds values the way sqlx's SQLite driver stores them (UUIDs
//! as 16-byte blobs, times as RFC 3339 text with `+00:00`), so what one
//! writes the other reads and orders alike; `tests::the_writer_stores_values_as_sqlx_reads_them`
//! pins that.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::domain::job::JobId;
use crate::error::{Error, Result};

/// Which store a transaction is on, for the few statements whose dialects
/// differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A value bound to a statement. Nulls are typed: PostgreSQL checks a
/// parameter's type against its column even when the value is null.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(Option<i64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Uuid(Option<Uuid>),
    Time(Option<DateTime<Utc>>),
}

macro_rules! value_from {
    ($($t:ty => $variant:ident($conv:expr)),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant($conv(v))
            }
        })*
    };
}

value_from! {
    i64 => Int(Some),
    Option<i64> => Int(std::convert::identity),
    bool => Bool(Some),
    Option<bool> => Bool(std::convert::identity),
    String => Text(Some),
    Option<String> => Text(std::convert::identity),
    &str => Text(|v: &str| Some(v.to_owned())),
    &String => Text(|v: &String| Some(v.clone())),
    Option<&str> => Text(|v: Option<&str>| v.map(str::to_owned)),
    Uuid => Uuid(Some),
    Option<Uuid> => Uuid(std::convert::identity),
    JobId => Uuid(|v: JobId| Some(v.as_uuid())),
    Option<JobId> => Uuid(|v: Option<JobId>| v.map(|j| j.as_uuid())),
    DateTime<Utc> => Time(Some),
    Option<DateTime<Utc>> => Time(std::convert::identity),
}

/// The arguments of a statement, `$1` first.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        [$($crate::store::tx::Value::from($arg)),*]
    };
}
pub(crate) use args;

/// One column of a row read back inside a write.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Uuid(Uuid),
    Time(DateTime<Utc>),
    Bool(bool),
}

/// A row read back inside a write.
#[derive(Clone, Debug, PartialEq)]
pub struct Row(Vec<Cell>);

/// A Rust value a cell can be read as.
pub trait FromCell: Sized {
    fn from_cell(cell: &Cell) -> Option<Self>;
}

impl FromCell for i64 {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Int(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromCell for bool {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Bool(v) => Some(*v),
            Cell::Int(v) => Some(*v != 0),
            _ => None,
        }
    }
}

impl FromCell for String {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl FromCell for Uuid {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Uuid(v) => Some(*v),
            Cell::Blob(bytes) => Uuid::from_slice(bytes).ok(),
            _ => None,
        }
    }
}

impl FromCell for JobId {
    fn from_cell(cell: &Cell) -> Option<Self> {
        Uuid::from_cell(cell).map(JobId::from_uuid)
    }
}

impl FromCell for DateTime<Utc> {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Time(v) => Some(*v),
            Cell::Text(v) => DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            _ => None,
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Null => Some(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

impl Row {
    /// Column `index` as a `T`.
    pub fn get<T: FromCell>(&self, index: usize) -> Result<T> {
        let cell = self
            .0
            .get(index)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("the row has no column {index}")))?;
        T::from_cell(cell).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "column {index} holds {cell:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// A transaction a write runs in.
pub(crate) trait Tx {
    fn backend(&self) -> Backend;

    /// Runs a statement; returns the rows it changed.
    async fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64>;

    /// Runs a query; returns its rows.
    async fn fetch(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>>;

    /// The first row of a query, if any.
    async fn fetch_optional(&mut self, sql: &str, args: &[Value]) -> Result<Option<Row>> {
        Ok(self.fetch(sql, args).await?.into_iter().next())
    }
}

/// A PostgreSQL transaction, through sqlx.
pub(crate) struct PgTx<'c> {
    conn: &'c mut sqlx::PgConnection,
}

impl<'c> PgTx<'c> {
    pub fn new(conn: &'c mut sqlx::PgConnection) -> Self {
        Self { conn }
    }
}

fn bind_pg<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    args: &[Value],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for arg in args {
        query = match arg.clone() {
            Value::Int(v) => query.bind(v),
            Value::Bool(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
            Value::Uuid(v) => query.bind(v),
            Value::Time(v) => query.bind(v),
        };
    }
    query
}

fn pg_cell(row: &sqlx::postgres::PgRow, index: usize) -> std::result::Result<Cell, sqlx::Error> {
    use sqlx::{Column, Row as _, TypeInfo, ValueRef};
    if row.try_get_raw(index)?.is_null() {
        return Ok(Cell::Null);
    }
    let type_name = row.columns()[index].type_info().name().to_owned();
    Ok(match type_name.as_str() {
        "INT8" => Cell::Int(row.try_get::<i64, _>(index)?),
        "INT4" => Cell::Int(i64::from(row.try_get::<i32, _>(index)?)),
        "INT2" => Cell::Int(i64::from(row.try_get::<i16, _>(index)?)),
        "FLOAT8" => Cell::Real(row.try_get::<f64, _>(index)?),
        "BOOL" => Cell::Bool(row.try_get::<bool, _>(index)?),
        "UUID" => Cell::Uuid(row.try_get::<Uuid, _>(index)?),
        "TIMESTAMPTZ" => Cell::Time(row.try_get::<DateTime<Utc>, _>(index)?),
        _ => Cell::Text(row.try_get::<String, _>(index)?),
    })
}

impl Tx for PgTx<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64> {
        let done = bind_pg(sqlx::query(sql), args)
            .execute(&mut *self.conn)
            .await?;
        Ok(done.rows_affected())
    }

    async fn fetch(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>> {
        use sqlx::Row as _;
        let rows = bind_pg(sqlx::query(sql), args)
            .fetch_all(&mut *self.conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let cells = (0..row.len())
                .map(|i| pg_cell(row, i))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.push(Row(cells));
        }
        Ok(out)
    }
}

/// An SQLite transaction (a savepoint of the writer's batch), through
/// rusqlite on the writer's own connection.
pub(crate) struct SqliteTx<'c> {
    conn: &'c rusqlite::Connection,
}

impl<'c> SqliteTx<'c> {
    pub fn new(conn: &'c rusqlite::Connection) -> Self {
        Self { conn }
    }
}

/// A time as sqlx's SQLite driver stores `DateTime<Utc>`.
pub(crate) fn sqlite_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn sqlite_value(value: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match value {
        Value::Int(v) => v.map_or(V::Null, V::Integer),
        Value::Bool(v) => v.map_or(V::Null, |b| V::Integer(i64::from(b))),
        Value::Text(v) => v.clone().map_or(V::Null, V::Text),
        Value::Uuid(v) => v.map_or(V::Null, |u| V::Blob(u.as_bytes().to_vec())),
        Value::Time(v) => v.as_ref().map_or(V::Null, |t| V::Text(sqlite_time(t))),
    }
}

/// Binds `args` to a statement written with `$N` placeholders: parameter
/// `$N` takes `args[N - 1]`, wherever it appears (as sqlx binds them).
fn bind_sqlite(
    statement: &mut rusqlite::CachedStatement<'_>,
    args: &[Value],
) -> rusqlite::Result<()> {
    for index in 1..=statement.parameter_count() {
        let n = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(index);
        let value = args
            .get(n - 1)
            .ok_or(rusqlite::Error::InvalidParameterCount(n, args.len()))?;
        statement.raw_bind_parameter(index, sqlite_value(value))?;
    }
    Ok(())
}

fn sqlite_cell(value: rusqlite::types::ValueRef<'_>) -> Cell {
    use rusqlite::types::ValueRef as V;
    match value {
        V::Null => Cell::Null,
        V::Integer(v) => Cell::Int(v),
        V::Real(v) => Cell::Real(v),
        V::Text(bytes) => Cell::Text(String::from_utf8_lossy(bytes).into_owned()),
        V::Blob(bytes) => Cell::Blob(bytes.to_vec()),
    }
}

impl Tx for SqliteTx<'_> {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64> {
        let mut statement = self.conn.prepare_cached(sql).map_err(sqlite_error)?;
        bind_sqlite(&mut statement, args).map_err(sqlite_error)?;
        let changed = statement.raw_execute().map_err(sqlite_error)?;
        Ok(changed as u64)
    }

    async fn fetch(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>> {
        let mut statement = self.conn.prepare_cached(sql).map_err(sqlite_error)?;
        bind_sqlite(&mut statement, args).map_err(sqlite_error)?;
        let columns = statement.column_count();
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite_error)? {
            let mut cells = Vec::with_capacity(columns);
            for i in 0..columns {
                cells.push(sqlite_cell(row.get_ref(i).map_err(sqlite_error)?));
            }
            out.push(Row(cells));
        }
        Ok(out)
    }
}

/// True when SQLite answered that another process holds the store's lock.
pub(crate) fn is_sqlite_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// An SQLite failure: the store is busy (another process holds its lock for
/// longer than the writer waits: retry later) or something went wrong.
pub(crate) fn sqlite_error(e: rusqlite::Error) -> Error {
    if is_sqlite_busy(&e) {
        tracing::error!(error = %e, "store busy");
        Error::Unavailable
    } else {
        Error::Internal(anyhow::Error::new(e).context("store statement failed"))
    }
}

/// Runs a write: on SQLite in the writer's next batch, on PostgreSQL in a
/// transaction of its own, committed when the body returns `Ok` and rolled
/// back when it returns `Err`. `$body` is an `async move` block using `$tx`
/// (`&mut impl Tx`); it runs on the writer's thread on SQLite, so it must
/// own what it uses and await nothing but `$tx`.
macro_rules! write_tx {
    ($db:expr, |$tx:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite(sqlite) => {
                sqlite
                    .writer
                    .run(move |$tx: &mut $crate::store::tx::SqliteTx<'_>| {
                        ::futures::executor::block_on($body)
                    })
                    .await
            }
            $crate::store::Db::Postgres(pool) => {
                let mut conn = pool.begin().await?;
                let result = {
                    let mut pg = $crate::store::tx::PgTx::new(&mut conn);
                    let $tx = &mut pg;
                    $body.await
                };
                match result {
                    Ok(value) => {
                        conn.commit().await?;
                        Ok(value)
                    }
                    Err(e) => {
                        let _ = conn.rollback().await;
                        Err(e)
                    }
                }
            }
        }
    };
}
pub(crate) use write_tx;
