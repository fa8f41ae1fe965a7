//! The thin layer that lets one body of ledger code talk to SQLite or
//! PostgreSQL: queries are built as SQL text plus dialect-neutral [`Arg`]s,
//! run on a [`Conn`] (either database), and read back through [`Row`]s.
//!
//! Why not generic code over `sqlx::Database`: the trait bounds that needs
//! (higher-ranked `Executor` bounds through `async_trait`) are brittle, and
//! the two dialects differ in a few places anyway. Here the differences are
//! in one spot:
//!
//! - times are `TIMESTAMPTZ` in PostgreSQL and integer microseconds since the
//!   epoch in SQLite (numeric, so `<`, `ORDER BY` and indexes work exactly);
//! - JSON is `JSONB` in PostgreSQL and `TEXT` in SQLite (both through
//!   `sqlx::types::Json`);
//! - lists of strings bind as a PostgreSQL array, or as a JSON array that
//!   SQLite unpacks with `json_each`.
//!
//! Placeholders are `$1`, `$2`, ... in both dialects.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Postgres, Row as _, Sqlite, Transaction};

use crate::LedgerError;
use crate::error::{classify, connection_error};

/// Which SQL dialect a query runs in, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// One bound parameter.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I64(Option<i64>),
    Text(Option<String>),
    Bool(bool),
    Time(Option<DateTime<Utc>>),
    /// `None` is SQL `NULL`, not JSON `null`.
    Json(Option<serde_json::Value>),
    TextList(Vec<String>),
}

impl Arg {
    /// A JSON document. Serializing the ledger's own types cannot fail in
    /// practice, but a failure is still an error, not a panic.
    pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Result<Arg, LedgerError> {
        serde_json::to_value(value)
            .map(|v| Arg::Json(Some(v)))
            .map_err(|e| LedgerError::Invalid(format!("cannot encode JSON document: {e}")))
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::I64(v)
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<DateTime<Utc>> for Arg {
    fn from(v: DateTime<Utc>) -> Self {
        Arg::Time(Some(v))
    }
}
impl From<Option<DateTime<Utc>>> for Arg {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Arg::Time(v)
    }
}

/// SQL text and its parameters.
#[derive(Debug)]
pub(crate) struct Sql {
    text: Cow<'static, str>,
    /// The same statement with plain `?` parameters, for SQLite: sqlx
    /// asks SQLite the name of every parameter of a statement, a linear
    /// search per named (`$n`) parameter, so quadratic in a multi-row
    /// statement's; unnamed ones answer at once.
    sqlite_text: Option<String>,
    args: Vec<Arg>,
}

/// Most parameters one statement binds: SQLite allows 32,766, PostgreSQL
/// 65,535.
const MAX_PARAMS: usize = 30_000;

/// Most rows (groups) one multi-row statement holds: keeps the text far
/// under SQLite's 1 MB statement limit whatever the group.
const MAX_ROWS: usize = 500;

/// How many rows of `params` parameters each a multi-row statement takes
/// at most: callers chunk by this.
pub(crate) fn rows_per_statement(params: usize) -> usize {
    (MAX_PARAMS / params.max(1)).min(MAX_ROWS)
}

/// Starts a query. The text is `'static` on purpose: parameters are always
/// bound, never formatted into SQL.
pub(crate) fn sql(text: &'static str) -> Sql {
    Sql {
        text: Cow::Borrowed(text),
        sqlite_text: None,
        args: Vec::new(),
    }
}

/// Starts a multi-row query: `head`, then `group` `count` times joined by
/// `sep`, then `tail`. Each `?` in `group` becomes the next `$n` (SQLite
/// takes the plain `?`, see [`Sql`]); that is
/// the only text generated, so values are still always bound, and every
/// piece of SQL is a `'static` string of ours. `group` must hold no other
/// `?`. Callers chunk by [`rows_per_statement`].
pub(crate) fn sql_repeated(
    head: &'static str,
    group: &'static str,
    sep: &'static str,
    count: usize,
    tail: &'static str,
) -> Sql {
    let mut text = String::with_capacity(head.len() + count * (group.len() + 8) + tail.len());
    let mut sqlite_text =
        String::with_capacity(head.len() + count * (group.len() + sep.len()) + tail.len());
    text.push_str(head);
    sqlite_text.push_str(head);
    let mut n = 0usize;
    for i in 0..count {
        if i > 0 {
            text.push_str(sep);
            sqlite_text.push_str(sep);
        }
        sqlite_text.push_str(group);
        for (j, part) in group.split('?').enumerate() {
            if j > 0 {
                n += 1;
                text.push('$');
                text.push_str(&n.to_string());
            }
            text.push_str(part);
        }
    }
    text.push_str(tail);
    sqlite_text.push_str(tail);
    Sql {
        text: Cow::Owned(text),
        sqlite_text: Some(sqlite_text),
        args: Vec::new(),
    }
}

impl Sql {
    pub(crate) fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }

    fn sqlite(self) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
        let mut query = match (self.sqlite_text, self.text) {
            (Some(text), _) => sqlx::query(AssertSqlSafe(text)),
            (None, Cow::Borrowed(text)) => sqlx::query(text),
            (None, Cow::Owned(text)) => sqlx::query(AssertSqlSafe(text)),
        };
        for arg in self.args {
            query = match arg {
                Arg::I64(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Bool(v) => query.bind(v),
                Arg::Time(v) => query.bind(v.map(|t| t.timestamp_micros())),
                Arg::Json(v) => query.bind(v.map(Json)),
                Arg::TextList(v) => query.bind(Json(v)),
            };
        }
        query
    }

    fn postgres(self) -> sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments> {
        let mut query = match self.text {
            Cow::Borrowed(text) => sqlx::query(text),
            Cow::Owned(text) => sqlx::query(AssertSqlSafe(text)),
        };
        for arg in self.args {
            query = match arg {
                Arg::I64(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Bool(v) => query.bind(v),
                Arg::Time(v) => query.bind(v),
                Arg::Json(v) => query.bind(v.map(Json)),
                Arg::TextList(v) => query.bind(v),
            };
        }
        query
    }
}

/// A connection of either database: a pooled one or one inside a
/// transaction.
#[derive(Debug)]
pub(crate) enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl Conn<'_> {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns the number of rows it changed.
    pub(crate) async fn execute(&mut self, q: Sql) -> Result<u64, LedgerError> {
        match self {
            Conn::Sqlite(c) => q
                .sqlite()
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()),
            Conn::Postgres(c) => q
                .postgres()
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()),
        }
        .map_err(classify)
    }

    pub(crate) async fn fetch_all(&mut self, q: Sql) -> Result<Vec<Row>, LedgerError> {
        match self {
            Conn::Sqlite(c) => q
                .sqlite()
                .fetch_all(&mut **c)
                .await
                .map(|rows| rows.into_iter().map(Row::Sqlite).collect()),
            Conn::Postgres(c) => q
                .postgres()
                .fetch_all(&mut **c)
                .await
                .map(|rows| rows.into_iter().map(Row::Postgres).collect()),
        }
        .map_err(classify)
    }

    pub(crate) async fn fetch_optional(&mut self, q: Sql) -> Result<Option<Row>, LedgerError> {
        match self {
            Conn::Sqlite(c) => q
                .sqlite()
                .fetch_optional(&mut **c)
                .await
                .map(|row| row.map(Row::Sqlite)),
            Conn::Postgres(c) => q
                .postgres()
                .fetch_optional(&mut **c)
                .await
                .map(|row| row.map(Row::Postgres)),
        }
        .map_err(classify)
    }

    pub(crate) async fn fetch_one(&mut self, q: Sql) -> Result<Row, LedgerError> {
        match self {
            Conn::Sqlite(c) => q.sqlite().fetch_one(&mut **c).await.map(Row::Sqlite),
            Conn::Postgres(c) => q.postgres().fetch_one(&mut **c).await.map(Row::Postgres),
        }
        .map_err(classify)
    }
}

/// A row of either database, read by column name.
#[derive(Debug)]
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

/// Reads one column of a row as type `$ty` in both dialects.
macro_rules! get {
    ($row:expr, $col:expr, $ty:ty) => {
        match $row {
            Row::Sqlite(r) => r.try_get::<$ty, _>($col),
            Row::Postgres(r) => r.try_get::<$ty, _>($col),
        }
        .map_err(LedgerError::corrupt)
    };
}

impl Row {
    pub(crate) fn i64(&self, col: &str) -> Result<i64, LedgerError> {
        get!(self, col, i64)
    }

    pub(crate) fn opt_i64(&self, col: &str) -> Result<Option<i64>, LedgerError> {
        get!(self, col, Option<i64>)
    }

    pub(crate) fn text(&self, col: &str) -> Result<String, LedgerError> {
        get!(self, col, String)
    }

    pub(crate) fn opt_text(&self, col: &str) -> Result<Option<String>, LedgerError> {
        get!(self, col, Option<String>)
    }

    pub(crate) fn bool(&self, col: &str) -> Result<bool, LedgerError> {
        get!(self, col, bool)
    }

    pub(crate) fn time(&self, col: &str) -> Result<DateTime<Utc>, LedgerError> {
        self.opt_time(col)?
            .ok_or_else(|| corrupt(col, "unexpected NULL timestamp"))
    }

    pub(crate) fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, LedgerError> {
        match self {
            Row::Sqlite(r) => {
                let micros = r
                    .try_get::<Option<i64>, _>(col)
                    .map_err(LedgerError::corrupt)?;
                micros
                    .map(|m| {
                        DateTime::from_timestamp_micros(m)
                            .ok_or_else(|| corrupt(col, "timestamp out of range"))
                    })
                    .transpose()
            }
            Row::Postgres(r) => r
                .try_get::<Option<DateTime<Utc>>, _>(col)
                .map_err(LedgerError::corrupt),
        }
    }

    pub(crate) fn json<T: DeserializeOwned>(&self, col: &str) -> Result<T, LedgerError> {
        get!(self, col, Json<T>).map(|Json(v)| v)
    }

    pub(crate) fn opt_json<T: DeserializeOwned>(
        &self,
        col: &str,
    ) -> Result<Option<T>, LedgerError> {
        get!(self, col, Option<Json<T>>).map(|v| v.map(|Json(v)| v))
    }

    /// A text column parsed into a domain type (`AppName`, `CommitId`, ...).
    pub(crate) fn parsed<T>(&self, col: &str) -> Result<T, LedgerError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.text(col)?;
        text.parse()
            .map_err(|e: T::Err| corrupt(col, &e.to_string()))
    }

    pub(crate) fn opt_parsed<T>(&self, col: &str) -> Result<Option<T>, LedgerError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.opt_text(col)?
            .map(|text| {
                text.parse()
                    .map_err(|e: T::Err| corrupt(col, &e.to_string()))
            })
            .transpose()
    }
}

/// A stored value that does not decode: someone wrote the table by hand, or
/// a migration is missing.
fn corrupt(col: &str, problem: &str) -> LedgerError {
    LedgerError::corrupt(sqlx::Error::ColumnDecode {
        index: col.to_owned(),
        source: problem.to_owned().into(),
    })
}

/// The connection pools of a ledger.
#[derive(Debug, Clone)]
pub(crate) enum Pools {
    /// SQLite allows one writer at a time. Writes go through a one-connection
    /// pool, so they queue in the process instead of spinning on
    /// `SQLITE_BUSY`; reads use their own pool and run alongside (WAL).
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
    },
    Postgres(PgPool),
}

/// A write transaction of either database.
#[derive(Debug)]
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(tx) => Conn::Sqlite(&mut *tx),
            Tx::Postgres(tx) => Conn::Postgres(&mut *tx),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), LedgerError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
        .map_err(classify)
    }

    pub(crate) async fn rollback(self) -> Result<(), LedgerError> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await,
            Tx::Postgres(tx) => tx.rollback().await,
        }
        .map_err(classify)
    }
}

/// A pooled connection for reads.
#[derive(Debug)]
pub(crate) enum Pooled {
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
    Postgres(sqlx::pool::PoolConnection<Postgres>),
}

impl Pooled {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(c) => Conn::Sqlite(&mut *c),
            Pooled::Postgres(c) => Conn::Postgres(&mut *c),
        }
    }
}

impl Pools {
    /// Begins a write transaction. SQLite's starts `IMMEDIATE`: it takes the
    /// write lock up front, so a transaction that reads then writes cannot
    /// fail half-way with `SQLITE_BUSY` when another process writes.
    pub(crate) async fn begin(&self) -> Result<Tx, LedgerError> {
        match self {
            Pools::Sqlite { write, .. } => {
                write.begin_with("BEGIN IMMEDIATE").await.map(Tx::Sqlite)
            }
            Pools::Postgres(pool) => pool.begin().await.map(Tx::Postgres),
        }
        .map_err(connection_error)
    }

    pub(crate) async fn read(&self) -> Result<Pooled, LedgerError> {
        match self {
            Pools::Sqlite { read, .. } => read.acquire().await.map(Pooled::Sqlite),
            Pools::Postgres(pool) => pool.acquire().await.map(Pooled::Postgres),
        }
        .map_err(connection_error)
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Pools::Sqlite { .. } => Dialect::Sqlite,
            Pools::Postgres(_) => Dialect::Postgres,
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Pools::Sqlite { write, read } => {
                write.close().await;
                read.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }
}
