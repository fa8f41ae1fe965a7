//! git2: repository cache, rollback commits (restore, revert) built in
//! memory, push and merge.

#![forbid(unsafe_code)]

pub mod tree_source;

pub use tree_source::GitTree;
