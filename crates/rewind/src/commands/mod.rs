//! One module per command.

pub mod completions;
pub mod config;
pub mod demo;
pub mod diff;
pub mod doctor;
pub mod hash;
pub mod healthcheck;
pub mod output;
pub mod progress;
pub mod remote;
pub mod serve;

use std::path::{Path, PathBuf};

use anyhow::Context;
use rewind_config::Settings;

/// The file `--config` defaults to, when it exists.
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

/// Loads settings from `path`, or from `config/default.toml` when it exists
/// and no path was given, or from the built-in defaults.
pub fn load_settings(path: Option<&Path>) -> anyhow::Result<Settings> {
    let default = PathBuf::from(DEFAULT_CONFIG_PATH);
    let file = match path {
        Some(p) => Some(p),
        None if default.is_file() => Some(default.as_path()),
        None => None,
    };
    rewind_config::load(file).context("cannot load the configuration")
}
