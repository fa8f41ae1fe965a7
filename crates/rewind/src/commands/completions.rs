//! `rewind completions bash|zsh|fish|elvish|powershell`: the shell's
//! completion script on stdout, generated from the same clap definition the
//! binary parses with (clap_complete), so it never falls behind a flag.
//!
//! Install: `rewind completions bash > /etc/bash_completion.d/rewind`,
//! `rewind completions zsh > "${fpath[1]}/_rewind"`,
//! `rewind completions fish > ~/.config/fish/completions/rewind.fish`.

use std::process::ExitCode;

use clap::{Args, Command};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs, mut command: Command) -> ExitCode {
    let name = command.get_name().to_owned();
    clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
    ExitCode::SUCCESS
}
