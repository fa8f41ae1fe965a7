//! The ledger: one storage trait, sqlx SQLite and PostgreSQL backends.

#![forbid(unsafe_code)]
