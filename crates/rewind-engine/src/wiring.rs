//! Maps the configuration onto the plain settings structs of the lower
//! crates, which do not depend on `rewind-config`.

use rewind_config::{ForgeKind, Settings};
use rewind_domain::Alert;

/// `[webhooks]`, `[forge] webhook_secret`, `[alerts]`, `[[apps]]`, `[[clusters]]` for the
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
        clusters: settings
            .clusters
            .iter()
            .map(|c| rewind_ingest::ClusterMapping {
                name: c.name.clone(),
                server: c.server.clone(),
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
    github.request_timeout = forge.request_timeout.get().min(github.max_wait);
    Ok(Some(github))
}

/// `[verify]` for the probe.
pub fn probe_settings(settings: &Settings) -> rewind_probe::ProbeSettings {
    rewind_probe::ProbeSettings {
        prometheus_url: settings
            .verify
            .prometheus_url
            .as_ref()
            .map(|u| u.expose().to_string()),
        timeout: settings.verify.timeout.get(),
    }
}

/// The registry client of the image pre-flight, with the credentials of
/// `verify.registry_auth_file`.
pub fn registry(settings: &Settings) -> Result<rewind_probe::Registry, String> {
    let auth = match &settings.verify.registry_auth_file {
        Some(path) => rewind_probe::RegistryAuth::from_docker_config(path)?,
        None => rewind_probe::RegistryAuth::default(),
    };
    rewind_probe::Registry::new(settings.verify.timeout.get(), auth).map_err(|e| e.to_string())
}

/// `[[verify.checks]]` as the probe's checks.
pub fn verify_checks(settings: &Settings) -> Vec<rewind_probe::Check> {
    use rewind_probe::{CheckKind, HeaderValueSource, HttpCheck, QueryCheck};
    settings
        .verify
        .checks
        .iter()
        .map(|c| {
            let kind = match (&c.query, &c.http) {
                (_, Some(http)) => CheckKind::Http(HttpCheck {
                    method: http.method.clone(),
                    url: http.url.clone(),
                    headers: http
                        .headers
                        .iter()
                        .map(|h| {
                            let source = match (&h.value, &h.value_env, &h.value_file) {
                                (_, Some(var), _) => HeaderValueSource::Env(var.clone()),
                                (_, _, Some(path)) => HeaderValueSource::File(path.clone()),
                                (value, _, _) => {
                                    HeaderValueSource::Plain(value.clone().unwrap_or_default())
                                }
                            };
                            (h.name.clone(), source)
                        })
                        .collect(),
                    body: http.body.clone(),
                    expect_status: http.expect_status,
                    expect_body: http.expect_body.clone(),
                    expect_json_pointer: http.expect_json_pointer.clone(),
                }),
                (query, None) => CheckKind::Query(QueryCheck {
                    query: query.clone().unwrap_or_default(),
                    min: c.min,
                    max: c.max,
                    max_delta_from_known_good: c.no_worse_than.map(|_| c.max_delta.unwrap_or(0.0)),
                    min_evidence: c.min_evidence.clone(),
                }),
            };
            rewind_probe::Check {
                name: c.name.clone(),
                kind,
                apps: c.apps.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use rewind_probe::{CheckKind, HeaderValueSource};

    #[test]
    fn verify_checks_map_every_key() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(
            br#"
[verify]
prometheus_url = "http://127.0.0.1:9090"
[[verify.checks]]
name = "latency"
query = 'q{app="{{app}}"}'
no_worse_than = "known-good"
min_evidence = "e"
apps = ["checkout@prod-eu"]
[[verify.checks]]
name = "smoke"
http = { method = "POST", url = "http://127.0.0.1/x", body = "b", expect_status = 201, expect_json_pointer = "/id", headers = [{ name = "Authorization", value_env = "T" }, { name = "X-Key", value_file = "/k" }, { name = "Accept", value = "application/json" }] }
"#,
        )
        .unwrap();
        let settings = rewind_config::load_from(Some(f.path()), std::iter::empty()).unwrap();
        let checks = super::verify_checks(&settings);
        let CheckKind::Query(query) = &checks[0].kind else {
            panic!("a query check");
        };
        // no_worse_than without max_delta: not worse at all.
        assert_eq!(query.max_delta_from_known_good, Some(0.0));
        assert_eq!(query.min_evidence.as_deref(), Some("e"));
        assert_eq!(checks[0].apps, vec!["checkout@prod-eu".to_string()]);
        let CheckKind::Http(http) = &checks[1].kind else {
            panic!("a smoke check");
        };
        assert_eq!((http.method.as_str(), http.expect_status), ("POST", 201));
        assert_eq!(http.expect_json_pointer.as_deref(), Some("/id"));
        assert_eq!(
            http.headers,
            vec![
                ("Authorization".into(), HeaderValueSource::Env("T".into())),
                ("X-Key".into(), HeaderValueSource::File("/k".into())),
                (
                    "Accept".into(),
                    HeaderValueSource::Plain("application/json".into())
                ),
            ]
        );
        assert_eq!(
            super::probe_settings(&settings).prometheus_url.as_deref(),
            Some("http://127.0.0.1:9090")
        );
    }
}
