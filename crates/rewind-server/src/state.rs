//! Shared state of the HTTP server: one `App` behind an `Arc`, handed to
//! every handler by axum's `State` extractor.

use std::sync::Arc;
use std::time::Duration;

use rewind_config::Settings;
use rewind_engine::Engine;
use rewind_ingest::IngestSettings;
use rewind_ledger::Ledger;

use crate::batcher::DeliveryBatcher;
use crate::flux_apps::FluxApps;
use crate::metrics::Metrics;

/// One line of `/readyz`. Only checks that are [`required`] fail
/// readiness: rewind is ready when it can durably record webhooks, which
/// needs the database and nothing else. Git is reported (in the body and as
/// `rewind_readiness_check` in `/metrics`) but does not take a replica out
/// of its Service: during a Git outage webhooks must still be recorded, and
/// a Service with no ready replica would refuse them all. (The body also
/// names the forge; its failures show as retried jobs.)
///
/// [`required`]: ReadinessCheck::required
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// A short name for the check (`database`, `repository`).
    fn name(&self) -> &'static str;
    /// Whether a failure makes `/readyz` answer 503.
    fn required(&self) -> bool {
        true
    }
    /// `Err` says what is not working.
    async fn check(&self) -> Result<(), String>;
}

/// The database takes a write now (opened and rolled back).
struct DatabaseReady(Arc<dyn Ledger>);

#[async_trait::async_trait]
impl ReadinessCheck for DatabaseReady {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(2), self.0.ping_write()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 2s".into()),
        }
    }
}

/// The last fetch from `git.url` worked. Read from the fetch's recorded
/// outcome, never by fetching or by waiting for the repository: a probe must
/// answer at once even while a fetch hangs on an unreachable remote.
struct RepositoryReady(rewind_git::RemoteStatus);

#[async_trait::async_trait]
impl ReadinessCheck for RepositoryReady {
    fn name(&self) -> &'static str {
        "repository"
    }

    fn required(&self) -> bool {
        false
    }

    async fn check(&self) -> Result<(), String> {
        match self.0.last_fetch() {
            None => Err("no fetch has finished yet".into()),
            Some(outcome) => match outcome.error {
                None => Ok(()),
                Some(error) => Err(format!("last fetch failed: {error}")),
            },
        }
    }
}

pub struct App {
    pub settings: Arc<Settings>,
    pub ledger: Arc<dyn Ledger>,
    pub engine: Arc<Engine>,
    pub ingest: IngestSettings,
    /// `ingest` with the Flux apps discovered in the repository.
    pub flux_apps: FluxApps,
    pub deliveries: DeliveryBatcher,
    /// Wakes the engine's workers when a delivery queued jobs.
    pub wake: Arc<tokio::sync::Notify>,
    pub metrics: Metrics,
    pub readiness: Vec<Arc<dyn ReadinessCheck>>,
    /// Failed web UI sign-ins per client address.
    pub login_limiter: crate::session::LoginLimiter,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

impl AppState {
    /// State for `engine`; `/readyz` requires the database and reports the
    /// repository.
    pub fn new(engine: Arc<Engine>, wake: Arc<tokio::sync::Notify>) -> Self {
        let settings = Arc::new(engine.settings().clone());
        let ledger = engine.ledger().clone();
        let readiness: Vec<Arc<dyn ReadinessCheck>> = vec![
            Arc::new(DatabaseReady(ledger.clone())),
            Arc::new(RepositoryReady(engine.git().remote_status().clone())),
        ];
        let ingest = rewind_engine::wiring::ingest_settings(&settings);
        AppState(Arc::new(App {
            // A directory named like a `[[clusters]]` entry marks that
            // cluster (`fleet/eu-west/…`), besides the `clusters/<name>/`
            // layout, which needs no configuration.
            flux_apps: FluxApps::new(
                ingest.clone(),
                settings.clusters.iter().map(|c| c.name.clone()).collect(),
            ),
            ingest,
            deliveries: DeliveryBatcher::start(ledger.clone()),
            settings,
            ledger,
            engine,
            wake,
            metrics: Metrics::global(),
            readiness,
            login_limiter: Default::default(),
        }))
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.0.ledger
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.0.engine
    }
}
