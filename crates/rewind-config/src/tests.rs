//! Loading: precedence, unknown keys, bad values, redaction.

use std::io::Write;

use super::*;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_match_the_contract() {
    let s = Settings::defaults().unwrap();
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.server.max_body_bytes, 1_048_576);
    assert_eq!(s.database.url.expose(), "sqlite://var/rewind.db");
    assert_eq!(s.git.branch, "main");
    assert_eq!(s.forge.kind, ForgeKind::Local);
    assert_eq!(s.policy.strategy, StrategySetting::Restore);
    assert_eq!(s.policy.healthy_for.get().as_secs(), 300);
    assert_eq!(s.policy.verify_for.get().as_secs(), 180);
    assert_eq!(s.policy.max_rollbacks_per_hour, 2);
    assert_eq!(s.policy.required_approvals, 1);
    assert_eq!(s.policy.auto_merge, AutoMerge::Never);
    assert_eq!(s.alerts.severities, vec!["critical".to_string()]);
    assert!(s.api.tokens.is_empty() && s.apps.is_empty());
}

#[test]
fn file_overrides_defaults_and_env_overrides_file() {
    let f = file(
        r#"
[server]
listen = "0.0.0.0:9000"
[database]
url = "sqlite:///tmp/x.db"
[policy]
healthy_for = "90s"
[[api.tokens]]
name = "oncall"
token = "s3cret-token"
role = "approver"
[[apps]]
name = "shop/checkout"
path = "apps/checkout/overlays/prod"
cluster = "prod-eu"
"#,
    );
    let s = load_from(
        Some(f.path()),
        env(&[
            ("REWIND__DATABASE__URL", "postgres://u:pw@db/rewind"),
            ("REWIND__ALERTS__SEVERITIES", "critical,page"),
            ("REWIND__POLICY__MAX_ROLLBACKS_PER_HOUR", "5"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(s.server.listen.port(), 9000);
    assert_eq!(s.policy.healthy_for.get().as_secs(), 90);
    assert_eq!(s.database.url.expose(), "postgres://u:pw@db/rewind");
    assert_eq!(s.alerts.severities, vec!["critical", "page"]);
    assert_eq!(s.policy.max_rollbacks_per_hour, 5);
    assert_eq!(s.api.tokens[0].role, Role::Approver);
    assert_eq!(s.apps[0].cluster, "prod-eu");
}

#[test]
fn unknown_keys_are_named_with_their_origin() {
    let f = file("[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n");
    let err = load_from(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(err.contains("server.listen_port"), "{err}");
    assert!(err.contains(&f.path().display().to_string()), "{err}");

    let f = file("[serverr]\nlisten = \"127.0.0.1:1\"\n");
    let err = load_from(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(err.contains("serverr"), "{err}");

    let err = load_from(None, env(&[("REWIND__GIT__TOKEN_FILE", "x")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("git.token_file"), "{err}");
    assert!(err.contains("REWIND__GIT__TOKEN_FILE"), "{err}");
}

#[test]
fn bad_values_name_key_and_file() {
    let cases = [
        ("[policy]\nhealthy_for = \"soon\"\n", "policy.healthy_for"),
        ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
        ("[forge]\nkind = \"gitlab\"\n", "forge.kind"),
        (
            "[policy]\nauto_merge = \"sometimes\"\n",
            "policy.auto_merge",
        ),
        ("[database]\nurl = \"mysql://x\"\n", "database.url"),
        ("[forge]\nkind = \"github\"\n", "forge.owner"),
        ("[git]\nbranch = \"has space\"\n", "git.branch"),
        (
            "[policy]\nmax_rollbacks_per_hour = 0\n",
            "policy.max_rollbacks_per_hour",
        ),
    ];
    for (text, key) in cases {
        let f = file(text);
        let err = load_from(Some(f.path()), env(&[])).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
        assert!(
            err.contains(&f.path().display().to_string()),
            "{text}: {err}"
        );
    }
}

#[test]
fn syntax_errors_and_missing_files_name_the_file() {
    let f = file("[server\nlisten=");
    let err = load_from(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(err.contains("not valid TOML"), "{err}");
    let err = load_from(Some(Path::new("/nonexistent/rewind.toml")), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/rewind.toml"), "{err}");
}

#[test]
fn secrets_are_redacted_everywhere() {
    let f = file(
        r#"
[database]
url = "postgres://rewind:dbpassword@db/rewind"
[git]
token = "ghp_gittoken"
[webhooks]
argocd_token = "argo-secret"
flux_hmac_key = "flux-secret"
[forge]
kind = "github"
owner = "acme"
repo = "gitops"
token = "ghp_forgetoken"
webhook_secret = "hook-secret"
[[api.tokens]]
name = "oncall"
token = "api-secret-1"
role = "operator"
"#,
    );
    let s = load_from(Some(f.path()), env(&[])).unwrap();
    let shown = format!("{s:?}\n{}", s.to_redacted_toml());
    for secret in [
        "dbpassword",
        "ghp_gittoken",
        "argo-secret",
        "flux-secret",
        "ghp_forgetoken",
        "hook-secret",
        "api-secret-1",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
    assert!(shown.contains("oncall"));
    assert_eq!(s.webhooks.argocd_token.unwrap().expose(), "argo-secret");
}

#[test]
fn the_shipped_default_file_loads_as_a_file_too() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
    let s = load_from(Some(&path), env(&[])).unwrap();
    assert_eq!(s.server.listen.port(), 8080);
}

#[test]
fn empty_secrets_count_as_unset() {
    let s = load_from(None, env(&[("REWIND__WEBHOOKS__ARGOCD_TOKEN", "")])).unwrap();
    assert!(s.webhooks.argocd_token.is_none());
}

#[test]
fn tokens_come_from_the_config_a_tokens_file_and_the_environment() {
    let tokens = file(
        r#"
[[tokens]]
name = "ci"
token = "file-token-123"
role = "operator"
"#,
    );
    let config = file(&format!(
        "[api]\ntokens_file = {:?}\n[[api.tokens]]\nname = \"oncall\"\ntoken = \"config-token-1\"\nrole = \"viewer\"\n",
        tokens.path().display().to_string()
    ));
    let s = load_from(
        Some(config.path()),
        env(&[
            ("REWIND_API_TOKEN_RELEASE_BOT", "approver:env-token-4567"),
            ("REWIND_API_TOKEN_EMPTY", ""),
        ]),
    )
    .unwrap();
    let found: Vec<(&str, &str, Role)> = s
        .api
        .tokens
        .iter()
        .map(|t| (t.name.as_str(), t.token.expose(), t.role))
        .collect();
    assert_eq!(
        found,
        vec![
            ("oncall", "config-token-1", Role::Viewer),
            ("ci", "file-token-123", Role::Operator),
            ("release_bot", "env-token-4567", Role::Approver),
        ]
    );
    // Shown redacted like every other secret.
    assert!(!s.to_redacted_toml().contains("env-token-4567"));
}

#[test]
fn bad_token_sources_are_named_without_the_token() {
    let err = load_from(
        None,
        env(&[("REWIND_API_TOKEN_X", "superuser:hunter2-secret")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("REWIND_API_TOKEN_X"), "{err}");
    assert!(err.contains("viewer, operator"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let err = load_from(None, env(&[("REWIND_API_TOKEN_X", "no-colon-secret")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("<role>:<token>") && !err.contains("no-colon"),
        "{err}"
    );
    // A duplicate across sources is refused like one within a source.
    let config =
        file("[[api.tokens]]\nname = \"x\"\ntoken = \"same-token-1\"\nrole = \"viewer\"\n");
    let err = load_from(
        Some(config.path()),
        env(&[("REWIND_API_TOKEN_X", "admin:other-token-2")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("listed twice"), "{err}");
    let tokens = file("[[tokens]]\nname = \"y\"\ntoken = \"leaky-secret-9\"\nrole = 3\n");
    let config = file(&format!(
        "[api]\ntokens_file = {:?}\n",
        tokens.path().display().to_string()
    ));
    let err = load_from(Some(config.path()), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("api.tokens_file"), "{err}");
    assert!(!err.contains("leaky-secret-9"), "{err}");
    let config = file("[api]\ntokens_file = \"/nonexistent/tokens.toml\"\n");
    let err = load_from(Some(config.path()), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/tokens.toml"), "{err}");
}
