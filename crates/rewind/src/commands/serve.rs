//! `rewind serve`: the service.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use rewind_config::Settings;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (default `config/default.toml` when it exists).
    #[arg(long, env = "REWIND_CONFIG")]
    config: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = super::load_settings(args.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(settings))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    if settings.api.tokens.is_empty() && !settings.server.listen.ip().is_loopback() {
        tracing::warn!(
            server.listen = %settings.server.listen,
            "no API tokens configured: until one is stored (rewind token create), the API and web UI are open to anyone who can reach this address"
        );
    }
    ensure_local_repository(&settings)?;
    // One replica per SQLite file; held until the process ends (the kernel
    // drops it on a crash).
    let _exclusive = rewind_ledger::exclusive_use(settings.database.url.expose())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("rewind serve cannot start")?;
    // Test builds only (feature `failpoints`): arms FAILPOINTS.
    let _failpoints = rewind_engine::faults::arm_from_env();
    let grace = settings.server.shutdown_grace.get();
    let listener = rewind_server::service::bind(settings.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
    let summary = format!(
        "database {} · git {} ({}) · forge {:?}",
        settings.database.url, settings.git.url, settings.git.branch, settings.forge.kind
    );
    let service = rewind_server::Service::start(settings, listener, Default::default()).await?;
    tracing::info!(server.url = %service.url(), "rewind is serving: {summary}");
    let cancel = service.cancel_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        cancel.cancel();
    });
    service.wait(grace).await;
    tracing::info!("rewind stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// With the embedded defaults `git.url` is a local path: create a bare
/// repository there (one commit on `git.branch`) so rewind runs with nothing
/// else. Remote URLs are never created.
pub fn ensure_local_repository(settings: &Settings) -> anyhow::Result<()> {
    let url = settings.git.url.expose();
    if url.contains("://") || url.contains('@') {
        return Ok(());
    }
    let path = Path::new(url);
    if path.exists() {
        return Ok(());
    }
    let repo = git2::Repository::init_bare(path)
        .with_context(|| format!("cannot create the local repository {}", path.display()))?;
    let signature = git2::Signature::now(&settings.git.author_name, &settings.git.author_email)?;
    let blob =
        repo.blob(b"# GitOps repository\n\nCreated by rewind. Argo CD or Flux sync from here.\n")?;
    let mut tree = repo.treebuilder(None)?;
    tree.insert("README.md", blob, 0o100644)?;
    let tree = repo.find_tree(tree.write()?)?;
    let reference = format!("refs/heads/{}", settings.git.branch);
    repo.commit(
        Some(&reference),
        &signature,
        &signature,
        "Initial commit",
        &tree,
        &[],
    )?;
    repo.set_head(&reference)?;
    tracing::info!(git.path = %path.display(), "created a local GitOps repository");
    Ok(())
}
