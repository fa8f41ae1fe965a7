//! The deployment files outside Rust: `docker-compose.yml` (docker cannot
//! run here, so its YAML and the files it references are checked), the
//! Dockerfile's health check, and the alert rules shipped three times
//! (compose/Prometheus, Helm, kustomize), which must stay equal and name
//! only metrics rewind exports. `.ci/validate-deploy.sh` checks the rest
//! with the real tools (kustomize, Helm, kubernetes-validate, promtool).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rewind_manifest::Node;
use rewind_manifest::parse::parse_documents;

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).to_path_buf()
}

fn yaml(path: &str) -> Vec<Node> {
    let bytes = std::fs::read(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_documents(&bytes).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e:?}"))
}

fn strings(node: &Node) -> Vec<String> {
    node.as_seq()
        .iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn compose_publishes_on_loopback_mounts_existing_files_and_requires_tokens() {
    let docs = yaml("docker-compose.yml");
    assert_eq!(docs.len(), 1);
    let services = docs[0]
        .get("services")
        .and_then(Node::as_map)
        .expect("services");
    for name in ["rewind", "postgres", "prometheus", "alertmanager"] {
        assert!(services.contains_key(name), "service {name} missing");
    }
    for (name, service) in services {
        for port in strings(service.get("ports").unwrap_or(&Node::Null)) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name} publishes {port} beyond loopback"
            );
        }
        for volume in strings(service.get("volumes").unwrap_or(&Node::Null)) {
            let source = volume.split(':').next().unwrap();
            if source.starts_with("./") {
                assert!(
                    root().join(source).is_file(),
                    "{name} mounts {source}, which does not exist"
                );
                assert!(volume.ends_with(":ro"), "{name} mounts {source} writable");
            }
        }
    }
    let rewind = &services["rewind"];
    assert_eq!(rewind.str_at(&["build"]), Some("."));
    assert!(root().join("Dockerfile").is_file());
    let env = rewind.get("environment").and_then(Node::as_map).unwrap();
    // `${VAR:?message}`: compose refuses to start while the token is unset.
    for var in [
        "REWIND__WEBHOOKS__ARGOCD_TOKEN",
        "REWIND__WEBHOOKS__ALERTMANAGER_TOKEN",
        "REWIND_API_TOKEN_ADMIN",
    ] {
        let value = env.get(var).and_then(Node::as_str).unwrap_or_default();
        assert!(value.contains(":?"), "{var} is not required: {value:?}");
    }
    assert_eq!(
        env.get("REWIND_CONFIG").and_then(Node::as_str),
        Some("/etc/rewind/rewind.toml"),
        "the mounted configuration is the one rewind reads"
    );
    let health = strings(rewind.at(&["healthcheck", "test"]).unwrap());
    assert_eq!(health, ["CMD", "rewind", "healthcheck"]);

    // Alertmanager's receiver reads the token from the compose secret.
    let alertmanager = yaml("deploy/compose/alertmanager.yml");
    let text = std::fs::read_to_string(root().join("deploy/compose/alertmanager.yml")).unwrap();
    assert!(text.contains("url: http://rewind:8080/webhooks/alertmanager"));
    let receivers = alertmanager[0].get("receivers").unwrap().as_seq();
    let rewind_receiver = receivers
        .iter()
        .find(|r| r.str_at(&["name"]) == Some("rewind"))
        .expect("a rewind receiver");
    let webhook = &rewind_receiver.get("webhook_configs").unwrap().as_seq()[0];
    let credentials = webhook
        .str_at(&["http_config", "authorization", "credentials_file"])
        .expect("a bearer token file");
    let secret = services["alertmanager"].get("secrets").unwrap().as_seq()[0]
        .str_at(&["target"])
        .unwrap()
        .to_string();
    assert_eq!(credentials, format!("/run/secrets/{secret}"));
}

#[test]
fn the_dockerfile_health_check_is_rewind_healthcheck() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let check = dockerfile
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    assert!(
        check.contains(r#"CMD ["rewind", "healthcheck"]"#),
        "{check}"
    );
    assert!(!dockerfile.contains("/dev/tcp"), "dash has no /dev/tcp");
}

/// Metric names a PromQL expression uses (`rewind_...`), without the
/// histogram suffixes Prometheus adds.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("rewind_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(name.to_string());
        rest = &tail[end..];
    }
    names
}

fn rust_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

#[test]
fn alert_rules_are_the_same_everywhere_and_use_only_exported_metrics() {
    let canonical = "deploy/prometheus/rewind-rules.yaml";
    let rules = yaml(canonical);
    let helm = yaml("deploy/helm/rewind/files/rewind-rules.yaml");
    assert_eq!(
        rules, helm,
        "the Helm chart's copy differs from {canonical}"
    );
    let kustomize = yaml("deploy/kustomize/components/monitoring/prometheusrule.yaml");
    assert_eq!(
        kustomize[0].get("spec"),
        Some(&rules[0]),
        "the kustomize PrometheusRule differs from {canonical}"
    );

    let mut sources = String::new();
    rust_sources(&root().join("crates"), &mut sources);
    let groups = rules[0].get("groups").unwrap().as_seq();
    let mut alerts = 0;
    for rule in groups.iter().flat_map(|g| g.get("rules").unwrap().as_seq()) {
        alerts += 1;
        let name = rule.str_at(&["alert"]).expect("alert name");
        let expr = rule.str_at(&["expr"]).expect("expr");
        for metric in metric_names(expr) {
            assert!(
                sources.contains(&format!("\"{metric}\"")),
                "alert {name} uses {metric}, which rewind does not export"
            );
        }
        assert!(
            rule.str_at(&["annotations", "description"]).is_some(),
            "alert {name} has no description"
        );
        let operations = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
        assert!(
            operations.contains(name),
            "docs/operations.md does not explain alert {name}"
        );
    }
    assert!(alerts >= 5, "{alerts} alerts");
}

#[test]
fn metric_names_are_read_from_expressions() {
    assert_eq!(
        metric_names(
            "sum(rate(rewind_http_requests_total{x=\"y\"}[5m])) / rewind_ready + rewind_http_request_duration_seconds_bucket"
        ),
        [
            "rewind_http_request_duration_seconds",
            "rewind_http_requests_total",
            "rewind_ready"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
}
