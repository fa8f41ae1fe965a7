//! Ledger tests: every body runs on SQLite and, when
//! `REWIND_TEST_POSTGRES_URL` is set, on PostgreSQL, each on a fresh
//! database (`rewind_ledger::testing::for_each_backend`).

mod apps;
mod audit;
mod batches;
mod cluster_rollbacks;
mod connect;
mod deliveries;
mod deployments;
mod fixtures;
mod jobs;
mod migration;
mod module_docs;
mod properties;
mod retention;
mod rollbacks;
mod verification;
