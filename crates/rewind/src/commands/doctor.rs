//! `rewind doctor --repo DIR [--path P]`: rollback-readiness findings
//! across a repository (every app, or the given paths). Exit 0 when there
//! is no warning, 1 when there is one (`--strict`: any finding), 2 on
//! usage errors.

use std::path::PathBuf;
use std::process::ExitCode;

use rewind_manifest::Severity;

use super::hash::{manifest_failure, open_repo, tree_at};
use super::output::Output;
use super::progress::Spinner;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The GitOps repository: a checkout or a bare repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// App paths to check (repeatable); default: every app found.
    #[arg(long)]
    pub path: Vec<String>,
    /// The revision to check.
    #[arg(long, default_value = "HEAD")]
    pub rev: String,
    /// Fail on notices too, not only on warnings.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: &DoctorArgs, output: Output) -> anyhow::Result<ExitCode> {
    let repo = open_repo(&args.repo)?;
    let tree = tree_at(&repo, &args.rev)?;
    let paths = (!args.path.is_empty()).then_some(args.path.as_slice());
    // Rendering every app of a large repository takes seconds.
    let spinner = Spinner::start(format!("checking {} at {}", args.repo.display(), args.rev));
    let findings = rewind_manifest::doctor(&tree, paths).map_err(manifest_failure)?;
    drop(spinner);
    match output {
        Output::Json | Output::Yaml => output.print(&findings, || {}),
        Output::Table => {
            let mut app = None;
            for finding in &findings {
                if finding.app != app {
                    app.clone_from(&finding.app);
                    println!("{}", app.as_deref().unwrap_or("(repository)"));
                }
                println!("  {finding}");
            }
            let warnings = findings
                .iter()
                .filter(|f| f.severity == Severity::Warning)
                .count();
            println!(
                "{} findings ({warnings} warnings, {} notices)",
                findings.len(),
                findings.len() - warnings
            );
        }
    }
    let failing = findings
        .iter()
        .any(|f| args.strict || f.severity == Severity::Warning);
    Ok(if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
