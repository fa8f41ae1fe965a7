//! What a commit means for an app: kustomize closure, config hash, semantic
//! diff, images, risk findings. No I/O: trees come in through
//! [`TreeSource`].

#![forbid(unsafe_code)]

pub mod source;

pub use source::{DirEntry, EntryKind, MemoryTree, SourceError, TreeSource};
