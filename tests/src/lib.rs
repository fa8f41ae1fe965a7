//! The end-to-end harness: a [`World`] is a bare GitOps repository, a fresh
//! database (SQLite, or PostgreSQL when `REWIND_TEST_POSTGRES_URL` is set),
//! and rewind serving on a loopback port bound before it starts. Tests talk
//! to it over HTTP exactly as Argo CD, Alertmanager, GitHub and people do,
//! then look at the Git repository and the API afterwards.
//!
//! The engine runs in manual mode: tests call [`World::settle`] to run every
//! due job, and [`World::tick`] with an explicit time to move the clock.
//! Nothing sleeps.

#![forbid(unsafe_code)]

pub mod browser;
pub mod chromium;
pub mod faults;
pub mod fleet_repo;
pub mod git_daemon;
pub mod github;
pub mod proc_stats;
pub mod prometheus;
pub mod receiver;
pub mod registry;
pub mod replica;
pub mod repo;
pub mod token_issuer;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use rewind_config::{Secret, SecretUrl, Settings};
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use rewind_ledger::testing::TestDatabase;
use rewind_server::{Service, ServiceOptions};
use serde_json::Value;

pub use repo::{APP, APP_PATH, Repo};

pub const ARGOCD_TOKEN: &str = "argocd-test-token";
pub const ALERTMANAGER_TOKEN: &str = "alertmanager-test-token";
pub const GITHUB_SECRET: &str = "github-webhook-secret";

/// Every backend the suite runs on: SQLite always, PostgreSQL when
/// configured (and required in CI).
pub async fn databases() -> Vec<TestDatabase> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    TestDatabase::all().await
}

/// One rewind and everything around it.
pub struct World {
    pub dir: tempfile::TempDir,
    pub repo: Repo,
    pub db: TestDatabase,
    pub settings: Settings,
    pub service: Option<Service>,
    pub client: reqwest::Client,
    /// The Git commits of the app's deployments so far, by cluster revision.
    pub history: Vec<HistoryEntry>,
    /// When each alert fingerprint started firing: Alertmanager resolves an
    /// episode with the same `startsAt`.
    pub alert_starts: std::sync::Mutex<std::collections::HashMap<String, DateTime<Utc>>>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("db", &self.db.url())
            .finish_non_exhaustive()
    }
}

impl World {
    /// A repository with the app at v1.4.1 (commit 1) and v1.4.2 (commit 2),
    /// and a started rewind whose settings `configure` may change.
    pub async fn start(db: TestDatabase, configure: impl FnOnce(&mut Settings)) -> World {
        let mut world = World::new(db);
        configure(&mut world.settings);
        world.boot().await;
        world
    }

    /// The world, not started yet: change `settings` (or start a fake
    /// GitHub on `repo`), then [`World::boot`].
    pub fn new(db: TestDatabase) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repo::create(&dir.path().join("gitops.git"));
        let mut settings = Settings::defaults().expect("defaults");
        settings.server.listen = "127.0.0.1:0".parse().expect("addr");
        settings.database.url = SecretUrl::new(db.url());
        settings.git.url = SecretUrl::new(repo.path.display().to_string());
        settings.git.cache_dir = dir.path().join("cache");
        settings.webhooks.argocd_token = Some(Secret::new(ARGOCD_TOKEN));
        settings.webhooks.alertmanager_token = Some(Secret::new(ALERTMANAGER_TOKEN));
        settings.forge.webhook_secret = Some(Secret::new(GITHUB_SECRET));
        settings.policy.healthy_for = rewind_config::HumanDuration::from_secs(300);
        settings.policy.verify_for = rewind_config::HumanDuration::from_secs(180);
        World {
            dir,
            repo,
            db,
            settings,
            service: None,
            client: reqwest::Client::new(),
            history: Vec::new(),
            alert_starts: Default::default(),
        }
    }

    /// Starts rewind with `settings`.
    pub async fn boot(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let service = Service::start(
            self.settings.clone(),
            listener,
            ServiceOptions {
                manual: true,
                ..ServiceOptions::default()
            },
        )
        .await
        .expect("rewind starts");
        self.service = Some(service);
    }

    /// Stops rewind as a crash would leave it (nothing finishes), and
    /// starts a new one on the same database and repository.
    pub async fn restart(&mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown(Duration::from_millis(100)).await;
        }
        self.boot().await;
    }

    pub fn service(&self) -> &Service {
        self.service.as_ref().expect("service running")
    }

    pub fn url(&self) -> String {
        self.service().url()
    }

    /// Runs every due job until none is left.
    pub async fn settle(&self) -> usize {
        let mut total = 0;
        loop {
            let ran = self.service().engine.drain().await.expect("jobs run");
            if ran == 0 {
                return total;
            }
            total += ran;
        }
    }

    /// Runs the clock at `now`, then every job it queued.
    pub async fn tick(&self, now: DateTime<Utc>) {
        self.service().engine.tick(now).await.expect("tick");
        self.settle().await;
    }

    /// Argo CD reports that cluster revision `id` runs `commit`, with
    /// `health`; the whole history so far is in the payload, as Argo CD
    /// sends it.
    pub async fn deploy(&mut self, id: i64, commit: &str, health: &str) -> StatusCode {
        self.deploy_at(id, commit, health, Utc::now()).await
    }

    pub async fn deploy_at(
        &mut self,
        id: i64,
        commit: &str,
        health: &str,
        at: DateTime<Utc>,
    ) -> StatusCode {
        let status = self.report_deploy(id, commit, health, at).await;
        self.settle().await;
        status
    }

    /// [`World::deploy_at`] without running the jobs it queues: what the
    /// clock sees between a report and its resolve job.
    pub async fn report_deploy(
        &mut self,
        id: i64,
        commit: &str,
        health: &str,
        at: DateTime<Utc>,
    ) -> StatusCode {
        if !self.history.iter().any(|h| h.id == id) {
            self.history.push(HistoryEntry {
                id,
                revision: commit.to_string(),
                deployed_at: at,
            });
        }
        let body = argocd_notification(
            "on-deployed",
            APP,
            &self.repo.path.display().to_string(),
            APP_PATH,
            &self.history,
            health,
        );
        self.post_json("/webhooks/argocd", ARGOCD_TOKEN, &body)
            .await
            .0
    }

    /// Alertmanager reports an alert for the app.
    pub async fn alert(
        &self,
        status: &str,
        fingerprint: &str,
        starts_at: DateTime<Utc>,
    ) -> StatusCode {
        if status == "firing" {
            self.alert_starts
                .lock()
                .expect("lock")
                .insert(fingerprint.to_string(), starts_at);
        }
        let body = alertmanager_notification(
            status,
            "CheckoutHighErrorRate",
            APP,
            "critical",
            "checkout 5xx ratio above 5%",
            starts_at,
            fingerprint,
        );
        let status = self
            .post_json("/webhooks/alertmanager", ALERTMANAGER_TOKEN, &body)
            .await
            .0;
        self.settle().await;
        status
    }

    /// Alertmanager resolves the episode of `fingerprint` that fired.
    pub async fn resolve(&self, fingerprint: &str) -> StatusCode {
        let starts_at = self
            .alert_starts
            .lock()
            .expect("lock")
            .get(fingerprint)
            .copied()
            .expect("the alert fired before");
        self.alert("resolved", fingerprint, starts_at).await
    }

    /// A GitHub webhook, signed as GitHub signs it.
    pub async fn github_event(&self, event: &str, delivery: &str, body: &Value) -> StatusCode {
        let bytes = serde_json::to_vec(body).expect("json");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(GITHUB_SECRET.as_bytes()).expect("hmac");
        mac.update(&bytes);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let response = self
            .client
            .post(format!("{}/webhooks/github", self.url()))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", signature)
            .body(bytes)
            .send()
            .await
            .expect("github webhook");
        let status = response.status();
        self.settle().await;
        status
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url()))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let value = response.json().await.unwrap_or(Value::Null);
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.url()))
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST` to the API (no tokens are configured: the API is open).
    pub async fn api(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, value) = self.post_json(path, "unused", &body).await;
        self.settle().await;
        (status, value)
    }

    /// The app's rollbacks, newest first.
    pub async fn rollbacks(&self) -> Vec<Value> {
        let (_, value) = self.get(&format!("/api/v1/rollbacks?app={APP}")).await;
        value.as_array().cloned().unwrap_or_default()
    }

    pub async fn rollback(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/rollbacks/{id}")).await.1
    }

    /// The standard opening: revision 1 healthy long enough to be known
    /// good, then revision 2 degraded, then a critical alert.
    pub async fn bad_deploy_and_alert(&mut self) -> Value {
        let (good, bad) = (self.repo.good.clone(), self.repo.bad.clone());
        let t0 = Utc::now() - chrono::Duration::hours(1);
        assert_eq!(
            self.deploy_at(1, &good, "Healthy", t0).await,
            StatusCode::ACCEPTED
        );
        self.tick(Utc::now()).await;
        assert_eq!(self.deploy(2, &bad, "Degraded").await, StatusCode::ACCEPTED);
        assert_eq!(
            self.alert("firing", "fp-1", Utc::now()).await,
            StatusCode::ACCEPTED
        );
        let rollbacks = self.rollbacks().await;
        assert_eq!(rollbacks.len(), 1, "one rollback proposed: {rollbacks:#?}");
        rollbacks[0].clone()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub async fn finish(mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown(Duration::from_secs(2)).await;
        }
        self.db.cleanup().await;
    }
}
