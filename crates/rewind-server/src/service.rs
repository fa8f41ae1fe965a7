//! The whole service wired together: ledger, repository cache, forge,
//! engine workers, the clock and the HTTP server. `rewind serve`, `rewind
//! demo` and the end-to-end tests all start rewind through [`Service`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rewind_config::Settings;
use rewind_engine::Engine;
use rewind_forge::{Forge, GitHubForge};
use rewind_git::RepoCache;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the ledger at {url}: {source}")]
    Ledger {
        url: String,
        source: rewind_ledger::LedgerError,
    },
    #[error("cannot open the repository cache: {0}")]
    Git(#[from] rewind_git::GitError),
    #[error("invalid forge settings: {0}")]
    Forge(String),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// Knobs tests turn; production uses the defaults.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Engine workers (each claims one job at a time).
    pub workers: usize,
    /// How often idle workers look for due jobs (new deliveries wake them).
    pub poll: Duration,
    /// How often the clock runs (known good, verification, recovery).
    pub tick: Duration,
    /// Run no workers and no clock: tests drive the engine by hand.
    pub manual: bool,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            workers: 2,
            poll: Duration::from_secs(2),
            tick: Duration::from_secs(5),
            manual: false,
        }
    }
}

/// A running rewind.
#[derive(Debug)]
pub struct Service {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    pub state: AppState,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Service {
    /// Opens everything and starts serving on `listener` (bound by the
    /// caller, so it is accepting before this returns).
    pub async fn start(
        settings: Settings,
        listener: TcpListener,
        options: ServiceOptions,
    ) -> Result<Service, StartError> {
        let settings = Arc::new(settings);
        let ledger = rewind_ledger::connect(settings.database.url.expose())
            .await
            .map_err(|source| StartError::Ledger {
                url: settings.database.url.redacted(),
                source,
            })?;
        // Before the first fetch: libgit2's default (256 MiB) would stay
        // allocated once a fleet's history was resolved.
        rewind_git::limits::set_object_cache_bytes(
            usize::try_from(settings.git.object_cache_mib).unwrap_or(usize::MAX) << 20,
        )?;
        rewind_git::limits::set_open_pack_limit(rewind_git::limits::OPEN_PACK_LIMIT)?;
        rewind_git::limits::skip_rehashing_reads();
        let git = RepoCache::open(rewind_engine::wiring::git_settings(&settings)).await?;
        // A first fetch now, so /readyz can say the repository is ready; a
        // remote that is down is not fatal: the next fetch retries.
        if let Err(e) = git.fetch().await {
            tracing::warn!(error = %e, "initial fetch failed; will retry on demand");
        }
        let forge: Option<Arc<dyn Forge>> =
            match rewind_engine::wiring::github_settings(&settings).map_err(StartError::Forge)? {
                Some(github) => Some(Arc::new(
                    GitHubForge::new(&github).map_err(|e| StartError::Forge(e.to_string()))?,
                )),
                None => None,
            };
        let engine = Arc::new(Engine::new(settings.clone(), ledger, git, forge));
        let wake = Arc::new(tokio::sync::Notify::new());
        let state = AppState::new(engine.clone(), wake.clone());
        let cancel = CancellationToken::new();
        let mut tasks = Vec::new();
        if !options.manual {
            for _ in 0..options.workers.max(1) {
                tasks.push(tokio::spawn(rewind_engine::worker::run_worker(
                    engine.clone(),
                    wake.clone(),
                    cancel.clone(),
                    options.poll,
                )));
            }
            tasks.push(tokio::spawn(rewind_engine::worker::run_ticker(
                engine.clone(),
                cancel.clone(),
                options.tick,
            )));
        }
        let addr = listener.local_addr()?;
        let shutdown = cancel.clone();
        let server = tokio::spawn(crate::serve(listener, state.clone(), async move {
            shutdown.cancelled().await;
        }));
        Ok(Service {
            addr,
            engine,
            state,
            cancel,
            tasks,
            server,
        })
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A token that stops the service when cancelled.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops accepting, lets in-flight requests finish, stops the workers
    /// (releasing their jobs), within `grace`.
    pub async fn shutdown(self, grace: Duration) {
        self.cancel.cancel();
        let all = async {
            let _ = self.server.await;
            for task in self.tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(?grace, "shutdown grace period over; stopping anyway");
        }
    }

    /// Waits until the service stops (the cancel token fired).
    pub async fn wait(self, grace: Duration) {
        self.cancel.cancelled().await;
        self.shutdown(grace).await;
    }
}

/// Binds `addr`: the first step of starting, so callers know the port.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    Ok(TcpListener::bind(addr).await?)
}
