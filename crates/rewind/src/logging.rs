//! Structured logs with `tracing`: human-readable by default, JSON with
//! `REWIND_LOG_FORMAT=json`; the level from `RUST_LOG` (default `info`).
//! On stderr, or in a file (`rewind demo`, whose story owns the terminal).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn,tower_http=warn"))
}

/// Logs to `path` (created or truncated), without colours.
pub fn init_to_file(path: &std::path::Path) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
    Ok(())
}

pub fn init() {
    let json = std::env::var("REWIND_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests) fails harmlessly.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
