//! Shared state of the HTTP server: one `App` behind an `Arc`, handed to
//! every handler by axum's `State` extractor.

use std::sync::Arc;
use std::time::Duration;

use rewind_config::Settings;
use rewind_engine::Engine;
use rewind_ingest::IngestSettings;
use rewind_ledger::Ledger;

use crate::batcher::DeliveryBatcher;
use crate::metrics::Metrics;

/// Something `/readyz` must see working before traffic is sent here.
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// A short name for the check (`database`, `repository`).
    fn name(&self) -> &'static str;
    /// `Err` says what is not ready.
    async fn check(&self) -> Result<(), String>;
}

/// The ledger answers a trivial query.
struct DatabaseReady(Arc<dyn Ledger>);

#[async_trait::async_trait]
impl ReadinessCheck for DatabaseReady {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(2), self.0.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 2s".into()),
        }
    }
}

/// The repository cache can read `git.branch`.
struct RepositoryReady(rewind_git::RepoCache, String);

#[async_trait::async_trait]
impl ReadinessCheck for RepositoryReady {
    fn name(&self) -> &'static str {
        "repository"
    }

    async fn check(&self) -> Result<(), String> {
        match self.0.head(&self.1).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!("branch {} is not in the cache yet", self.1)),
            Err(e) => Err(e.to_string()),
        }
    }
}

pub struct App {
    pub settings: Arc<Settings>,
    pub ledger: Arc<dyn Ledger>,
    pub engine: Arc<Engine>,
    pub ingest: IngestSettings,
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
    /// State for `engine`; `/readyz` checks the database and the repository.
    pub fn new(engine: Arc<Engine>, wake: Arc<tokio::sync::Notify>) -> Self {
        let settings = Arc::new(engine.settings().clone());
        let ledger = engine.ledger().clone();
        let readiness: Vec<Arc<dyn ReadinessCheck>> = vec![
            Arc::new(DatabaseReady(ledger.clone())),
            Arc::new(RepositoryReady(
                engine.git().clone(),
                settings.git.branch.clone(),
            )),
        ];
        AppState(Arc::new(App {
            ingest: rewind_engine::wiring::ingest_settings(&settings),
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
