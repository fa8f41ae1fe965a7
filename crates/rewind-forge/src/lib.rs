//! Forges: local (the ledger is the review) and GitHub (octocrab).

#![forbid(unsafe_code)]
