//! Maps the configuration onto the plain settings structs of the lower
//! crates, which do not depend on `rewind-config`.

use rewind_config::{ForgeKind, Settings};
use rewind_domain::Alert;

/// `[webhooks]`, `[forge] webhook_secret`, `[alerts]`, `[[apps]]` for the
/// webhook parsers.
pub fn ingest_settings(settings: &Settings) -> rewind_ingest::IngestSettings {
    let secret = |s: &Option<rewind_config::Secret>| s.as_ref().map(|s| s.expose().to_string());
    rewind_ingest::IngestSettings {
        argocd_token: secret(&settings.webhooks.argocd_token),
        alertmanager_token: secret(&settings.webhooks.alertmanager_token),
        flux_hmac_key: secret(&settings.webhooks.flux_hmac_key),
        flagger_token: secret(&settings.webhooks.flagger_token),
        rollouts_token: secret(&settings.webhooks.rollouts_token),
        github_webhook_secret: secret(&settings.forge.webhook_secret),
        git_url: absolute_local_path(settings.git.url.expose()),
        git_branch: settings.git.branch.clone(),
        alerts: alert_settings(settings),
        apps: settings
            .apps
            .iter()
            .map(|a| rewind_ingest::AppMapping {
                name: a.name.clone(),
                path: a.path.clone(),
                cluster: a.cluster.clone(),
            })
            .collect(),
    }
}

fn alert_settings(settings: &Settings) -> rewind_ingest::AlertSettings {
    rewind_ingest::AlertSettings {
        app_label: settings.alerts.app_label.clone(),
        cluster_label: Some(settings.alerts.cluster_label.clone()).filter(|l| !l.is_empty()),
        severities: settings.alerts.severities.clone(),
    }
}

/// Whether a firing alert opens a proposal (`alerts.severities`).
pub fn triggers_rollback(settings: &Settings, alert: &Alert) -> bool {
    rewind_ingest::triggers_rollback(alert, &alert_settings(settings))
}

/// `[git]` for the repository cache.
pub fn git_settings(settings: &Settings) -> rewind_git::GitSettings {
    let mut git = rewind_git::GitSettings::new(
        absolute_local_path(settings.git.url.expose()),
        settings.git.branch.clone(),
        settings.git.cache_dir.clone(),
    );
    git.author_name = settings.git.author_name.clone();
    git.author_email = settings.git.author_email.clone();
    git.token = settings.git.token.as_ref().map(|t| t.expose().to_string());
    git.ssh_key = settings.git.ssh_key.clone();
    git
}

/// A relative local path (the embedded default `var/gitops.git`) is taken
/// from the working directory; URLs and `user@host:path` pass through.
fn absolute_local_path(url: &str) -> String {
    let looks_remote =
        url.contains("://") || url.split_once(':').is_some_and(|(h, _)| !h.contains('/'));
    let path = std::path::Path::new(url);
    if looks_remote || path.is_absolute() {
        return url.to_string();
    }
    std::env::current_dir()
        .map(|dir| dir.join(path).display().to_string())
        .unwrap_or_else(|_| url.to_string())
}

/// `[forge]` for GitHub; `None` for the local forge.
pub fn github_settings(
    settings: &Settings,
) -> Result<Option<rewind_forge::GitHubSettings>, String> {
    let forge = &settings.forge;
    if forge.kind == ForgeKind::Local {
        return Ok(None);
    }
    let auth = match (
        &forge.token,
        forge.app_id,
        &forge.private_key_path,
        forge.installation_id,
    ) {
        (Some(token), _, _, _) => rewind_forge::GitHubAuth::Token(token.expose().to_string()),
        (None, Some(app_id), Some(key_path), Some(installation_id)) => {
            let private_key_pem = std::fs::read_to_string(key_path)
                .map_err(|e| format!("forge.private_key_path {}: {e}", key_path.display()))?;
            rewind_forge::GitHubAuth::App {
                app_id,
                private_key_pem,
                installation_id,
            }
        }
        _ => return Err("forge.token or app_id + private_key_path + installation_id".into()),
    };
    let mut github = rewind_forge::GitHubSettings::new(
        forge.owner.clone().unwrap_or_default(),
        forge.repo.clone().unwrap_or_default(),
        auth,
    );
    if let Some(api) = &forge.api_url {
        github.api_url = api.clone();
    }
    github.base_branch = settings.git.branch.clone();
    github.merge_method = match forge.merge_method {
        rewind_config::MergeMethod::Merge => rewind_forge::MergeMethod::Merge,
        rewind_config::MergeMethod::Squash => rewind_forge::MergeMethod::Squash,
        rewind_config::MergeMethod::Rebase => rewind_forge::MergeMethod::Rebase,
    };
    github.max_wait = forge.max_wait.get();
    // One slow answer must not outlast the whole budget.
    github.request_timeout = github.request_timeout.min(github.max_wait);
    Ok(Some(github))
}
