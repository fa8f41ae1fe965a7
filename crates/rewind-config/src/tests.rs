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
        ("[policy]\ncatch_up = \"maybe\"\n", "policy.catch_up"),
        (
            "[[clusters]]\nname = \"a@b\"\nserver = \"https://a\"\n",
            "clusters",
        ),
        (
            "[[clusters]]\nname = \"a\"\nserver = \"https://x\"\n[[clusters]]\nname = \"b\"\nserver = \"https://X/\"\n",
            "clusters",
        ),
        (
            "[[apps]]\nname = \"web\"\npath = \"apps/web\"\ncluster = \"prod eu\"\n",
            "apps",
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
fn syntax_errors_name_line_column_and_key_but_never_echo_the_value() {
    let f = file(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[database]\nurl = \"postgres://rewind:hunter2-db@db/rewind\n",
    );
    let err = load_from(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(err.contains(&f.path().display().to_string()), "{err}");
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("column"), "{err}");
    assert!(err.contains("`database.url`"), "{err}");
    assert!(!err.contains("hunter2"), "the source line is echoed: {err}");
    assert!(!err.contains('\n'), "one line, no quoted source: {err}");

    // A broken line that is not an assignment still names where it is.
    let f = file("[api]\ntokens_file = \"x\"\n[[api.tokens]\ntoken = \"s3cr3t\"\n");
    let err = load_from(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(err.contains("line 3"), "{err}");
    assert!(!err.contains("s3cr3t"), "{err}");
}

#[test]
fn a_credential_value_in_a_serde_message_is_not_quoted_back() {
    let message = "invalid type: string \"hunter2\", expected a sequence";
    let scrubbed = scrub_secret_value("api.tokens", message);
    assert!(!scrubbed.contains("hunter2"), "{scrubbed}");
    assert!(scrubbed.contains("expected a sequence"), "{scrubbed}");
    // Keys that hold no credential keep serde's message whole.
    assert_eq!(scrub_secret_value("policy.strategy", message), message);
}

#[test]
fn a_password_query_parameter_is_redacted_in_config_show() {
    let f = file(
        "[database]\nurl = \"postgres://rewind@db:5432/rewind?password=pq-hunter2&sslmode=disable\"\n",
    );
    let s = load_from(Some(f.path()), env(&[])).unwrap();
    let shown = format!("{s:?}\n{}\n{}", s.to_redacted_toml(), s.database.url);
    assert!(!shown.contains("pq-hunter2"), "{shown}");
    assert!(shown.contains("sslmode=disable"), "{shown}");
    assert_eq!(
        s.database.url.expose(),
        "postgres://rewind@db:5432/rewind?password=pq-hunter2&sslmode=disable"
    );
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
flagger_token = "flagger-secret"
rollouts_token = "rollouts-secret"
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
        "flagger-secret",
        "rollouts-secret",
        "ghp_forgetoken",
        "hook-secret",
        "api-secret-1",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
    assert!(shown.contains("oncall"));
    assert_eq!(s.webhooks.argocd_token.unwrap().expose(), "argo-secret");
    assert_eq!(s.webhooks.flagger_token.unwrap().expose(), "flagger-secret");
    assert_eq!(
        s.webhooks.rollouts_token.unwrap().expose(),
        "rollouts-secret"
    );
}

#[test]
fn the_shipped_default_file_loads_as_a_file_too() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
    let s = load_from(Some(&path), env(&[])).unwrap();
    assert_eq!(s.server.listen.port(), 8080);
}

#[test]
fn empty_secrets_count_as_unset() {
    let s = load_from(
        None,
        env(&[
            ("REWIND__WEBHOOKS__ARGOCD_TOKEN", ""),
            ("REWIND__WEBHOOKS__FLAGGER_TOKEN", ""),
            ("REWIND__WEBHOOKS__ROLLOUTS_TOKEN", ""),
        ]),
    )
    .unwrap();
    assert!(s.webhooks.argocd_token.is_none());
    assert!(s.webhooks.flagger_token.is_none() && s.webhooks.rollouts_token.is_none());
}

#[test]
fn verify_checks_and_notify_targets_load() {
    let f = file(
        r#"
[verify]
prometheus_url = "http://prometheus:9090"
interval = "10s"
passes = 2
registry_check = true
registry_auth_file = "/etc/rewind/docker-config.json"

[[verify.checks]]
name = "error-rate"
query = 'sum(rate(x{app="{{app}}"}[2m]))'
max = 0.05
min_evidence = 'sum(increase(x{app="{{app}}"}[2m])) >= 100'
apps = ["checkout@prod-eu"]

[[verify.checks]]
name = "latency"
query = 'histogram_quantile(0.99, x)'
no_worse_than = "known-good"
max_delta = 0.1

[[verify.checks]]
name = "create-order"
http = { method = "POST", url = "https://{{app}}.example.com/orders", body = '{"smoke": true}', expect_status = 201, expect_body = "id", headers = [{ name = "Authorization", value_env = "SMOKE_TOKEN" }] }

[[notify]]
name = "oncall"
kind = "webhook"
url = "https://hooks.example.com/rewind"
secret = "hmac-key"
events = ["proposed", "failed"]
"#,
    );
    let s = load_from(Some(f.path()), env(&[("REWIND__VERIFY__PASSES", "4")])).unwrap();
    assert_eq!(s.verify.passes, 4);
    assert_eq!(s.verify.interval.get().as_secs(), 10);
    assert_eq!(s.verify.checks.len(), 3);
    assert!(s.verify.registry_check);
    assert_eq!(
        s.verify.registry_auth_file.as_deref(),
        Some(Path::new("/etc/rewind/docker-config.json"))
    );
    assert_eq!(s.verify.checks[0].max, Some(0.05));
    assert_eq!(
        s.verify.checks[1].no_worse_than,
        Some(NoWorseThan::KnownGood)
    );
    let http = s.verify.checks[2].http.as_ref().unwrap();
    assert_eq!((http.method.as_str(), http.expect_status), ("POST", 201));
    assert_eq!(http.headers[0].value_env.as_deref(), Some("SMOKE_TOKEN"));
    assert_eq!(
        s.notify[0].events,
        vec![NotifyEvent::Proposed, NotifyEvent::Failed]
    );
    // The notification URL and secret never print.
    let shown = s.to_redacted_toml();
    assert!(
        !shown.contains("hooks.example.com") && !shown.contains("hmac-key"),
        "{shown}"
    );
    // Defaults: no checks, no targets, three passes 30 s apart.
    let d = Settings::defaults().unwrap();
    assert_eq!(
        (d.verify.passes, d.verify.interval.get().as_secs()),
        (3, 30)
    );
    assert!(d.verify.checks.is_empty() && d.notify.is_empty());
}

#[test]
fn verify_mistakes_name_the_problem() {
    let cases = [
        (
            "[[verify.checks]]\nname = \"a\"\nquery = \"up\"\nmax = 1\nfoo = 1\n",
            "foo",
        ),
        (
            "[[verify.checks]]\nname = \"a\"\nquery = \"up\"\nmax = 1\n",
            "prometheus_url",
        ),
        (
            "[verify]\nprometheus_url = \"http://p:9090\"\n[[verify.checks]]\nname = \"a\"\nquery = \"up\"\n",
            "needs `min`, `max` or `no_worse_than`",
        ),
        (
            "[verify]\nprometheus_url = \"http://p:9090\"\n[[verify.checks]]\nname = \"a\"\nquery = \"up\"\nmin = 2\nmax = 1\n",
            "min 2 is above max 1",
        ),
        (
            "[verify]\nprometheus_url = \"http://p:9090\"\n[[verify.checks]]\nname = \"a\"\nquery = \"up\"\nno_worse_than = \"yesterday\"\n",
            "no_worse_than",
        ),
        (
            "[[verify.checks]]\nname = \"a\"\nhttp = { url = \"http://x/\", headers = [{ name = \"Authorization\", value = \"Bearer abc\" }] }\n",
            "value_env or value_file",
        ),
        (
            "[[verify.checks]]\nname = \"a\"\nhttp = { url = \"http://x/\", expect = 1 }\n",
            "expect",
        ),
        ("[verify]\npasses = 0\n", "verify.passes"),
        (
            "[[notify]]\nname = \"n\"\nkind = \"webhook\"\nurl = \"https://h/\"\n",
            "needs a `secret`",
        ),
        (
            "[[notify]]\nname = \"n\"\nkind = \"slack\"\nurl = \"https://h/\"\nevents = [\"exploded\"]\n",
            "exploded",
        ),
    ];
    for (text, needle) in cases {
        let f = file(text);
        let err = load_from(Some(f.path()), env(&[])).unwrap_err().to_string();
        assert!(err.contains(needle), "{text}\n→ {err}");
    }
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
