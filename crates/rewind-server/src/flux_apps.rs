//! Flux apps without hand-listing: the Kustomizations and HelmReleases
//! `rewind-manifest` discovers in the GitOps repository, merged with
//! `[[apps]]` (which overrides them), for the Flux webhook to map events to
//! app paths.
//!
//! The map is rebuilt when the fetched head of `git.branch` moves: each
//! signed Flux delivery reads the cache's head (a ref lookup) and re-discovers
//! only when it differs from the commit the map was built from. A failed
//! discovery keeps the last good map and is tried again on the next
//! delivery.

use std::sync::{Arc, RwLock};

use rewind_domain::CommitId;
use rewind_git::RepoCache;
use rewind_ingest::git_url::same_repository;
use rewind_ingest::{AppMapping, IngestSettings};
use rewind_manifest::FluxApp;

/// The ingest settings Flux deliveries are parsed with.
#[derive(Debug)]
pub struct FluxApps {
    /// `[[clusters]]` names: directories named like them mark a cluster.
    clusters: Vec<String>,
    current: RwLock<Snapshot>,
}

#[derive(Debug, Clone)]
struct Snapshot {
    /// The commit the map was discovered at; `None` before the first.
    head: Option<CommitId>,
    /// Configured settings with `apps` = `[[apps]]` + discovered apps.
    settings: Arc<IngestSettings>,
    /// `[[apps]]` as configured.
    configured: Arc<Vec<AppMapping>>,
}

impl FluxApps {
    /// Starts from the configured settings alone.
    pub fn new(configured: IngestSettings, clusters: Vec<String>) -> Self {
        let apps = Arc::new(configured.apps.clone());
        FluxApps {
            clusters,
            current: RwLock::new(Snapshot {
                head: None,
                settings: Arc::new(configured),
                configured: apps,
            }),
        }
    }

    fn snapshot(&self) -> Snapshot {
        // A poisoned lock still holds a consistent snapshot (it is
        // replaced whole), so keep using it.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The settings for a Flux delivery, re-discovered first when the
    /// cache's head of `branch` moved since the last discovery.
    pub async fn settings(&self, git: &RepoCache, branch: &str) -> Arc<IngestSettings> {
        let snapshot = self.snapshot();
        let head = match git.head(branch).await {
            Ok(Some(head)) => head,
            Ok(None) => return snapshot.settings,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the branch head; Flux apps not re-discovered");
                return snapshot.settings;
            }
        };
        if snapshot.head.as_ref() == Some(&head) {
            return snapshot.settings;
        }
        let clusters = self.clusters.clone();
        let at = head.clone();
        let discovered = git
            .with_repo(move |repo| {
                let tree = repo.tree(&at)?;
                Ok(rewind_manifest::discover_flux(&tree, &clusters).map_err(|e| e.to_string()))
            })
            .await;
        let discovery = match discovered {
            Ok(Ok(discovery)) => discovery,
            Ok(Err(e)) => {
                tracing::warn!(commit.sha = %head, error = %e, "Flux app discovery failed");
                return snapshot.settings;
            }
            Err(e) => {
                tracing::warn!(commit.sha = %head, error = %e, "Flux app discovery failed");
                return snapshot.settings;
            }
        };
        for finding in &discovery.findings {
            tracing::debug!(commit.sha = %head, finding = %finding, "Flux discovery");
        }
        let apps = merge(
            &snapshot.configured,
            &discovery.apps,
            &snapshot.settings.git_url,
        );
        tracing::info!(
            commit.sha = %head,
            flux.discovered = discovery.apps.len(),
            flux.apps = apps.len(),
            "Flux apps discovered"
        );
        let settings = Arc::new(IngestSettings {
            apps,
            ..(*snapshot.settings).clone()
        });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Snapshot {
            head: Some(head),
            settings: settings.clone(),
            configured: snapshot.configured,
        };
        settings
    }
}

/// `[[apps]]` first, then every discovered app it does not override: an
/// entry overrides the discovered app with the same name on the same
/// cluster (an entry or app without a cluster matches every cluster).
/// Discovered apps that read another repository (their GitRepository's
/// URL is not `git.url`) are left out: rewind cannot roll them back here.
pub fn merge(configured: &[AppMapping], discovered: &[FluxApp], git_url: &str) -> Vec<AppMapping> {
    let mut apps = configured.to_vec();
    for app in discovered {
        if app
            .source_url
            .as_deref()
            .is_some_and(|url| !same_repository(url, git_url))
        {
            continue;
        }
        let key = app.key();
        let overridden = configured.iter().any(|c| {
            c.name == key
                && (c.cluster == app.cluster || c.cluster.is_empty() || app.cluster.is_empty())
        });
        if !overridden {
            apps.push(AppMapping {
                name: key,
                path: app.path.clone(),
                cluster: app.cluster.clone(),
            });
        }
    }
    apps
}
