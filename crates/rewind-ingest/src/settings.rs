//! What the parsers need to know about the installation: secrets, the GitOps
//! repository, how alerts name apps, and the `[[apps]]` table. Plain structs,
//! filled by the caller from `rewind-config`, so this crate stays free of
//! configuration loading.

/// Everything the verify and parse functions read from the configuration.
/// `Debug` shows whether each secret is set, never the secret.
#[derive(Clone, Default)]
pub struct IngestSettings {
    /// `[webhooks] argocd_token`: the bearer token Argo CD sends.
    pub argocd_token: Option<String>,
    /// `[webhooks] alertmanager_token`: the bearer token Alertmanager sends.
    pub alertmanager_token: Option<String>,
    /// `[webhooks] flux_hmac_key`: the `token` of the Flux provider's Secret.
    pub flux_hmac_key: Option<String>,
    /// `[webhooks] flagger_token`: the `?token=` of Flagger's event webhook URL.
    pub flagger_token: Option<String>,
    /// `[webhooks] rollouts_token`: the bearer token Argo Rollouts sends.
    pub rollouts_token: Option<String>,
    /// `[forge] webhook_secret`: the GitHub webhook secret.
    pub github_webhook_secret: Option<String>,
    /// `[git] url`: the GitOps repository rewind writes to. Argo CD apps whose
    /// sources all point elsewhere are recorded but not rollbackable.
    pub git_url: String,
    /// `[git] branch`: pushes to other branches are ignored.
    pub git_branch: String,
    pub alerts: AlertSettings,
    /// `[[apps]]`: Flux apps and alert label values map onto these.
    pub apps: Vec<AppMapping>,
    /// `[[clusters]]`: Argo CD destinations named by their server URL.
    pub clusters: Vec<ClusterMapping>,
}

/// `[alerts]`: how an Alertmanager alert names its app.
impl std::fmt::Debug for IngestSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &Option<String>| if s.is_some() { "[redacted]" } else { "unset" };
        f.debug_struct("IngestSettings")
            .field("argocd_token", &set(&self.argocd_token))
            .field("alertmanager_token", &set(&self.alertmanager_token))
            .field("flux_hmac_key", &set(&self.flux_hmac_key))
            .field("flagger_token", &set(&self.flagger_token))
            .field("rollouts_token", &set(&self.rollouts_token))
            .field("github_webhook_secret", &set(&self.github_webhook_secret))
            .field("git_url", &self.git_url)
            .field("git_branch", &self.git_branch)
            .field("alerts", &self.alerts)
            .field("apps", &self.apps)
            .field("clusters", &self.clusters)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Label whose value names the app.
    pub app_label: String,
    /// Label whose value names the cluster; optional.
    pub cluster_label: Option<String>,
    /// Severities (label `severity`) whose firing alerts open rollback
    /// proposals. Empty means every firing alert does.
    pub severities: Vec<String>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            app_label: "app".to_owned(),
            cluster_label: Some("cluster".to_owned()),
            severities: vec!["critical".to_owned()],
        }
    }
}

/// One `[[apps]]` entry: an app rewind knows without Argo CD telling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppMapping {
    /// The app key (`namespace/name` for Flux).
    pub name: String,
    /// The app's path in the GitOps repository.
    pub path: String,
    /// The cluster it runs on; empty when not configured.
    pub cluster: String,
}

/// One `[[clusters]]` entry: the name rewind gives the Argo CD destination
/// whose `spec.destination.server` is `server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMapping {
    pub name: String,
    pub server: String,
}

/// A configured secret, treating an empty string as unset: an empty token
/// would otherwise authorize every request that sends an empty header.
pub(crate) fn configured(secret: &Option<String>) -> Option<&str> {
    secret.as_deref().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::IngestSettings;

    #[test]
    fn debug_never_shows_secrets() {
        let settings = IngestSettings {
            argocd_token: Some("argo-secret".into()),
            github_webhook_secret: Some("gh-secret".into()),
            ..IngestSettings::default()
        };
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("argo-secret") && !shown.contains("gh-secret"),
            "{shown}"
        );
        assert!(
            shown.contains("[redacted]") && shown.contains("unset"),
            "{shown}"
        );
    }
}
