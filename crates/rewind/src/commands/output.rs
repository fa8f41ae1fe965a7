//! How every command prints: `--output table|json|yaml` (a global flag, so
//! each command takes the same values; `text` is accepted for `table`), the
//! tables (comfy-table, borderless and aligned like `argocd app history`),
//! and failures: a one-line reason on stderr always, plus `{error, detail,
//! exit_code}` on stdout under `--output json` or `yaml`, so a script reads
//! one format whatever happened. Exit codes follow the contract: 0 done,
//! 1 error, 2 usage, 3 refused.

use std::fmt;
use std::process::ExitCode;

use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    #[value(alias = "text")]
    Table,
    /// Pretty-printed JSON, for scripts.
    Json,
    /// YAML, for scripts and reading.
    Yaml,
}

impl Output {
    /// Whether the output is for machines (JSON or YAML).
    pub fn is_structured(self) -> bool {
        matches!(self, Output::Json | Output::Yaml)
    }

    /// Prints `value` as JSON or YAML, or as people read it (`table`).
    pub fn print<T: Serialize + ?Sized>(self, value: &T, table: impl FnOnce()) {
        match self {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
            ),
            Output::Yaml => print!(
                "{}",
                serde_yaml::to_string(value).unwrap_or_else(|_| "null\n".into())
            ),
            Output::Table => table(),
        }
    }
}

/// Why a command did not do what it was asked, with the exit code the
/// contract gives it. Commands return it inside `anyhow::Error`; `main`
/// finds it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub exit: u8,
    /// A short machine-readable kind: `usage`, `refused`, the server's
    /// `error` field (`not_found`, `conflict`, ...), or `error`.
    pub error: String,
    pub detail: String,
}

impl Failure {
    pub fn usage(detail: impl fmt::Display) -> Failure {
        Failure {
            exit: 2,
            error: "usage".into(),
            detail: detail.to_string(),
        }
    }

    pub fn refused(error: impl Into<String>, detail: impl Into<String>) -> Failure {
        Failure {
            exit: 3,
            error: error.into(),
            detail: detail.into(),
        }
    }

    pub fn error(error: impl Into<String>, detail: impl Into<String>) -> Failure {
        Failure {
            exit: 1,
            error: error.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for Failure {}

/// Prints a failed command's reason and returns its exit code.
pub fn report_failure(error: &anyhow::Error, output: Output) -> ExitCode {
    let failure = error
        .downcast_ref::<Failure>()
        .cloned()
        .unwrap_or_else(|| Failure::error("error", format!("{error:#}")));
    let prefix = if failure.exit == 3 {
        "refused"
    } else {
        "rewind"
    };
    // One line, whatever the reason contains.
    eprintln!("{prefix}: {}", failure.detail.replace('\n', " "));
    if output.is_structured() {
        output.print(
            &json!({"error": failure.error, "detail": failure.detail, "exit_code": failure.exit}),
            || {},
        );
    }
    ExitCode::from(failure.exit)
}

/// A borderless table with a header row, wrapped to the terminal's width
/// when there is one.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    table
}

/// A borderless table without a header (`field  value` lines).
pub fn plain_table() -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table
}

/// The text at a JSON pointer, or `-`.
pub fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("-")
}

/// The first seven characters of a commit.
pub fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// `sha256:0123456789ab…` → `0123456789ab`: enough to tell hashes apart.
pub fn short_hash(hash: &str) -> &str {
    let hex = hash.split_once(':').map_or(hash, |(_, hex)| hex);
    hex.get(..12).unwrap_or(hex)
}

/// `2026-11-20T09:40:00.123Z` → `2026-11-20 09:40:00`.
pub fn date(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_dates_shorten() {
        assert_eq!(short_hash("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_hash("-"), "-");
        assert_eq!(date("2026-11-20T09:40:00.5Z"), "2026-11-20 09:40:00");
        assert_eq!(date("nonsense"), "nonsense");
    }

    #[test]
    fn text_is_an_alias_of_table() {
        assert_eq!(Output::from_str("text", true), Ok(Output::Table));
    }
}
