//! What a commit means for an app: kustomize closure, config hash, semantic
//! diff, images, risk findings. No I/O: trees come in through
//! [`TreeSource`].
//!
//! # Layout
//!
//! - [`source`]: the read-only tree view callers implement.
//! - [`parse`] and [`node`]: YAML/JSON files to a small value tree, with
//!   limits (size, alias expansion, nesting); the canonical encoding.
//! - [`path`]: repository-relative path arithmetic.
//! - [`kustomization`] and [`inputs`]: which files an app reads.
//! - [`hash`]: the config hash (algorithm in `docs/config-hash.md`).
//! - [`patch`] and [`render`]: the built-in kustomize-lite renderer and
//!   the images an app runs; [`namehash`]: kustomize's content-hash name
//!   suffix; [`nameref`]: ConfigMap/Secret references that follow renames.
//! - [`hooks`]: migration tools and sync hooks a Job runs.
//! - [`diff`]: semantic and textual diff between two commits.
//! - [`risk`]: rollback risks with the contract's codes.
//! - [`doctor`]: app discovery and rollback-readiness findings.
//! - [`flux`]: Flux Kustomizations and HelmReleases found in the tree.
//! - [`finding`]: findings (code, severity, file, detail).
//!
//! Architecture invariant: nothing here reads the network, the clock or the
//! file system, and bad input yields a [`Finding`] or a [`ManifestError`]
//! naming the file, never a panic.

#![forbid(unsafe_code)]

pub mod diff;
pub mod doctor;
pub mod error;
pub mod finding;
pub mod flux;
pub mod hash;
pub mod hooks;
pub mod inputs;
pub mod inputs_cache;
pub mod kustomization;
pub mod namehash;
pub mod nameref;
pub mod node;
pub mod parse;
pub mod patch;
pub mod path;
pub mod read_memo;
pub mod render;
pub mod risk;
pub mod source;
#[cfg(test)]
mod test_tree;

pub use diff::{
    AppDiff, Comparison, FieldChange, FileChange, FileStatus, ObjectChange, compare, semantic_diff,
};
pub use doctor::{check_app, discover_apps, doctor};
pub use error::ManifestError;
pub use finding::{Finding, FindingCode, Severity};
pub use flux::{FluxApp, FluxDiscovery, FluxKind, SourceRef, discover_flux};
pub use hash::{config_hash, hash_inputs};
pub use inputs::{AppInputs, Escapes, app_inputs, app_inputs_with};
pub use inputs_cache::InputsCache;
pub use node::Node;
pub use read_memo::ReadMemo;
pub use render::{Object, ObjectId, Rendered, images, render, render_with};
pub use risk::{
    Assessment, assess_rollback, rollback_risks, rollback_risks_cached, unrenderable_findings,
};
pub use source::{CachedTree, DirEntry, EntryKind, MemoryTree, SourceError, TreeSource};
