//! `rewind config show|default|check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::output::Output;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment) with
    /// secrets redacted.
    Show {
        #[arg(long, env = "REWIND_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the commented default configuration.
    Default,
    /// Load the configuration and report the first problem, if any.
    Check {
        #[arg(long, env = "REWIND_CONFIG")]
        config: Option<PathBuf>,
    },
}

pub fn run(command: ConfigCommand, output: Output) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Default => {
            print!("{}", rewind_config::DEFAULT_TOML);
        }
        ConfigCommand::Show { config } => {
            let settings = super::load_settings(config.as_deref())?;
            // Secrets redact themselves when serialized, in every format.
            output.print(&settings, || print!("{}", settings.to_redacted_toml()));
        }
        ConfigCommand::Check { config } => {
            super::load_settings(config.as_deref())?;
            output.print(&serde_json::json!({"valid": true}), || {
                println!("configuration is valid")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
