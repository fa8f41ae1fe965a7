//! Shared harness for the end-to-end tests.

#![forbid(unsafe_code)]
