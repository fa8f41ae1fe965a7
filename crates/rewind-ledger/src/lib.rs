//! The ledger: one storage trait, sqlx SQLite and PostgreSQL backends.
//!
//! [`connect`] picks the backend from the URL (`sqlite://PATH`,
//! `postgres://...`), creates a SQLite file when missing, runs the
//! migrations of `migrations/sqlite` or `migrations/postgres`, and returns an
//! `Arc<dyn Ledger>`.
//!
//! # Layout
//!
//! - [`ledger`]: the [`Ledger`] trait.
//! - [`model`]: deliveries, stored alerts, audit entries, jobs.
//! - [`error`]: [`LedgerError`] and how database errors map onto it.
//! - `connect`: URL → pools → migrations.
//! - `db`: the small layer that runs one body of SQL code on either
//!   database (times, JSON and lists differ between the two).
//! - `store`: the statements, one module per table group.
//! - `testing` (feature `testing`): a fresh database per test, on SQLite
//!   and, when `REWIND_TEST_POSTGRES_URL` is set, PostgreSQL.
//!
//! Architecture invariants: no `query!` macros (building needs no database);
//! every write that belongs together is one transaction; uniqueness that
//! matters under concurrency (delivery keys, one open rollback per app,
//! job dedup keys) is enforced by unique indexes, not by checks in code.

#![forbid(unsafe_code)]

mod connect;
mod db;
pub mod error;
mod exclusive;
pub mod ledger;
pub mod model;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use connect::{Backend, connect, connect_sql};
pub use error::LedgerError;
pub use exclusive::{ExclusiveUse, exclusive_use, sqlite_file};
pub use ledger::Ledger;
pub use model::{
    AUDIT_VIA, AppSummary, AuditEntry, AuditFilter, AuditRecord, DEFAULT_MAX_ATTEMPTS, Delivery,
    DeliveryOutcome, ForgeEventRecord, Job, JobCount, JobPayload, JobState, Pruned, Resolution,
    StoredAlert, StoredApiToken, StoredClusterRollback, UiSession, backoff, job_kind,
};
pub use store::SqlLedger;
