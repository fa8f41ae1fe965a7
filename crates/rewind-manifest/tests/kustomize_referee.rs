//! Real kustomize (`kubectl kustomize`) as the referee for the built-in
//! renderer: over a hand-written history of kustomizations (generators with
//! content-hash names, `behavior: merge`, namePrefix, namespace, labels,
//! components, replicas, images, targeted JSON 6902 and strategic-merge
//! patches, `$patch: delete`, sync hooks), rewind renders the same object
//! ids as kustomize at every step and its semantic diff names the same
//! added, removed and changed objects. Also: objects named by
//! `generateName`, which kustomize refuses and Argo CD's directory source
//! accepts. Skipped without kubectl, except under CI.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use rewind_domain::RiskCode;
use rewind_manifest::{FindingCode, check_app, render, rollback_risks, semantic_diff};
use support::kubectl;

type Files = BTreeMap<String, String>;

const APP: &str = "overlays/prod";

fn initial() -> Files {
    let files = [
        (
            "base/kustomization.yaml",
            r#"resources: [deployment.yaml, service.yaml, hooks.yaml]
configMapGenerator:
- name: app-config
  literals: [LOG_LEVEL=info, "GREETING='hello world'"]
  files: [settings.json]
  envs: [app.env]
secretGenerator:
- name: app-secret
  literals: [password=s3cret]
labels:
- pairs: {app.kubernetes.io/part-of: shop}
"#,
        ),
        (
            "base/settings.json",
            "{\"retries\": 3, \"html\": \"<b>&</b>\"}\n",
        ),
        ("base/app.env", "# defaults\nTIMEOUT=30s\n  PADDED = yes \n"),
        (
            "base/deployment.yaml",
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 1
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: reg/api:1.0
        envFrom:
        - configMapRef: {name: app-config}
        env:
        - name: PASSWORD
          valueFrom:
            secretKeyRef: {name: app-secret, key: password}
        volumeMounts:
        - {name: settings, mountPath: /etc/api}
      volumes:
      - name: settings
        configMap: {name: app-config}
"#,
        ),
        (
            "base/service.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  selector: {app: api}\n  ports:\n  - {port: 80, targetPort: 8080}\n",
        ),
        (
            "base/hooks.yaml",
            r#"apiVersion: batch/v1
kind: Job
metadata:
  name: db-migrate
  annotations: {argocd.argoproj.io/hook: PreSync}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: reg/api:1.0
        command: [python, manage.py, migrate, --noinput]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: smoke
  annotations: {argocd.argoproj.io/hook: PostSync}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: smoke
        image: curlimages/curl:8.10.1
        args: [-fsS, http://api/healthz]
"#,
        ),
        (
            "components/monitoring/kustomization.yaml",
            r#"apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources: [monitor.yaml]
patches:
- target: {kind: Deployment}
  patch: |-
    - op: add
      path: /spec/template/metadata/annotations
      value: {prometheus.io/scrape: "true"}
"#,
        ),
        (
            "components/monitoring/monitor.yaml",
            "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: api\nspec:\n  endpoints: [{port: http}]\n",
        ),
        (
            "overlays/prod/kustomization.yaml",
            r#"resources: [../../base]
components: [../../components/monitoring]
namePrefix: prod-
namespace: shop
commonLabels: {env: prod}
replicas:
- {name: api, count: 3}
images:
- {name: reg/api, newTag: "1.1"}
configMapGenerator:
- name: app-config
  behavior: merge
  literals: [REGION=eu]
- name: static
  literals: [MODE=fixed]
  options: {disableNameSuffixHash: true}
patches:
- target: {group: apps, version: v1, kind: Deployment, name: api}
  patch: |-
    - op: add
      path: /spec/template/spec/containers/0/args
      value: [--port, "8080"]
- path: delete-smoke.yaml
- path: service-patch.yaml
"#,
        ),
        (
            "overlays/prod/delete-smoke.yaml",
            "$patch: delete\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: smoke\n",
        ),
        (
            "overlays/prod/service-patch.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  type: ClusterIP\n",
        ),
    ];
    files
        .into_iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect()
}

/// One step of the history: a name and an edit.
type Step = (&'static str, fn(&mut Files));

fn edit(files: &mut Files, path: &str, from: &str, to: &str) {
    let text = files.get_mut(path).unwrap();
    assert!(text.contains(from), "{path} lacks {from:?}");
    *text = text.replacen(from, to, 1);
}

fn steps() -> Vec<Step> {
    vec![
        ("literal", |f| {
            edit(
                f,
                "base/kustomization.yaml",
                "LOG_LEVEL=info",
                "LOG_LEVEL=debug",
            )
        }),
        ("file", |f| edit(f, "base/settings.json", "3", "5")),
        ("env file", |f| edit(f, "base/app.env", "30s", "45s")),
        ("secret", |f| {
            edit(f, "base/kustomization.yaml", "s3cret", "n3w-s3cret")
        }),
        ("merge literal", |f| {
            edit(f, APP_K, "REGION=eu", "REGION=us")
        }),
        ("unhashed literal", |f| {
            edit(f, APP_K, "MODE=fixed", "MODE=moving")
        }),
        ("replicas", |f| edit(f, APP_K, "count: 3", "count: 5")),
        ("image", |f| {
            edit(f, APP_K, "newTag: \"1.1\"", "newTag: \"1.2\"")
        }),
        ("json6902", |f| edit(f, APP_K, "\"8080\"]", "\"9090\"]")),
        ("migration command", |f| {
            edit(f, "base/hooks.yaml", "--noinput", "--no-input")
        }),
        ("deleted hook changes", |f| {
            edit(f, "base/hooks.yaml", "healthz", "readyz")
        }),
        ("undelete hook", |f| {
            edit(f, APP_K, "- path: delete-smoke.yaml\n", "")
        }),
        ("hook changes", |f| {
            edit(f, "base/hooks.yaml", "readyz", "livez")
        }),
        ("component", |f| {
            edit(f, "components/monitoring/monitor.yaml", "http", "metrics")
        }),
        ("component patch", |f| {
            edit(
                f,
                "components/monitoring/kustomization.yaml",
                "\"true\"",
                "\"false\"",
            )
        }),
        ("labels", |f| edit(f, APP_K, "env: prod", "env: production")),
        ("format only", |f| {
            edit(
                f,
                "base/service.yaml",
                "ports:\n  - {port: 80, targetPort: 8080}",
                "ports:\n    - targetPort: 8080\n      port: 80",
            )
        }),
        ("strategic patch", |f| {
            edit(
                f,
                "overlays/prod/service-patch.yaml",
                "ClusterIP",
                "NodePort",
            )
        }),
        ("namespace", |f| {
            edit(f, APP_K, "namespace: shop", "namespace: shop-eu")
        }),
        ("prefix", |f| {
            edit(f, APP_K, "namePrefix: prod-", "namePrefix: prd-")
        }),
        ("merge keeps the base's hash option", |f| {
            edit(
                f,
                APP_K,
                "behavior: merge\n  literals: [REGION=us]",
                "behavior: merge\n  literals: [REGION=eu]",
            )
        }),
        ("merge without hash", |f| {
            edit(
                f,
                APP_K,
                "behavior: merge\n",
                "behavior: merge\n  options: {disableNameSuffixHash: true}\n",
            )
        }),
        ("merge option removed", |f| {
            edit(
                f,
                APP_K,
                "  options: {disableNameSuffixHash: true}\n  literals: [REGION",
                "  literals: [REGION",
            )
        }),
        ("no hash", |f| {
            edit(
                f,
                "base/kustomization.yaml",
                "secretGenerator:",
                "generatorOptions: {disableNameSuffixHash: true}\nsecretGenerator:",
            )
        }),
    ]
}

const APP_K: &str = "overlays/prod/kustomization.yaml";

#[test]
fn renderer_and_diff_agree_with_kustomize_over_a_history() {
    if !kubectl::available("renderer_and_diff_agree_with_kustomize_over_a_history") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut files = initial();
    let mut previous: Option<(Files, BTreeMap<String, rewind_manifest::Node>)> = None;
    let mut seen_codes = BTreeSet::new();
    for (n, (name, step)) in std::iter::once(("initial", (|_: &mut Files| {}) as fn(&mut Files)))
        .chain(steps())
        .enumerate()
    {
        step(&mut files);
        let dir = tmp.path().join(format!("{n:02}"));
        kubectl::write(&dir, &files);
        let built = kubectl::build(&dir.join(APP)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let tree = kubectl::memory(&files);
        let rendered = render(&tree, APP).unwrap();
        assert_eq!(
            kubectl::rendered_ids(&rendered),
            built.keys().cloned().collect(),
            "step {name}: rewind renders other names than kustomize"
        );
        if let Some((old_files, old_built)) = &previous {
            let want = kubectl::changes(old_built, &built);
            let old_tree = kubectl::memory(old_files);
            let diff = semantic_diff(&old_tree, &tree, APP).unwrap();
            assert_eq!(
                kubectl::rewind_changes(&diff),
                want,
                "step {name}:\n{}",
                diff.render_text()
            );
            // Rolling the step back: the risks it must carry.
            let risks = rollback_risks(&tree, &old_tree, APP, &[]).unwrap();
            let codes: BTreeSet<RiskCode> = risks.iter().map(|r| r.code).collect();
            seen_codes.extend(codes.iter().copied());
            let detail = |code| {
                risks
                    .iter()
                    .find(|r| r.code == code)
                    .map(|r| r.detail.clone())
                    .unwrap_or_default()
            };
            match name {
                "literal" | "file" | "env file" | "secret" | "merge literal" => {
                    let rollout = detail(RiskCode::Rollout);
                    assert!(rollout.contains("Deployment prod-api"), "{name}: {risks:?}");
                    assert!(!codes.contains(&RiskCode::Migration), "{name}: {risks:?}");
                }
                "unhashed literal" | "replicas" | "json6902" | "component" | "format only" => {
                    assert!(!codes.contains(&RiskCode::Rollout), "{name}: {risks:?}");
                }
                "migration command" => {
                    assert!(
                        detail(RiskCode::Migration).contains("(Django)"),
                        "{risks:?}"
                    );
                    assert!(!codes.contains(&RiskCode::Hook), "{risks:?}");
                }
                "image" => {
                    // The migration Job runs the app image: it re-runs.
                    assert!(
                        detail(RiskCode::Migration).contains("Job prod-db-migrate"),
                        "{risks:?}"
                    );
                    assert!(!codes.contains(&RiskCode::Rollout), "{risks:?}");
                }
                "deleted hook changes" => {
                    assert!(want.is_empty() && codes.is_empty(), "{risks:?}")
                }
                "undelete hook" | "hook changes" => {
                    let hook = detail(RiskCode::Hook);
                    assert!(
                        hook.contains("PostSync hook Job (prod-smoke"),
                        "{name}: {risks:?}"
                    );
                    assert!(
                        hook.contains("runs after the sync; rewind cannot tell what it changes")
                    );
                    assert!(!codes.contains(&RiskCode::Migration), "{name}: {risks:?}");
                }
                _ => {}
            }
        }
        previous = Some((files.clone(), built));
    }
    for code in [
        RiskCode::Rollout,
        RiskCode::Hook,
        RiskCode::Migration,
        RiskCode::Scale,
    ] {
        assert!(seen_codes.contains(&code), "{code} never raised");
    }
}

/// kustomize refuses objects without `metadata.name`
/// (kubernetes-sigs/kustomize#641); rewind still compares them, keyed by
/// `generateName`, and says the kustomization cannot build.
#[test]
fn generate_name_in_a_kustomization_is_compared_and_flagged_as_kustomize_refuses_it() {
    let job = |command: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: before-\n  annotations: {{argocd.argoproj.io/hook: PreSync}}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - {{name: x, image: 'alpine:3.20', command: {command}}}\n"
        )
    };
    let files = |command: &str| -> Files {
        [
            (
                "app/kustomization.yaml",
                "resources: [job.yaml]\n".to_string(),
            ),
            ("app/job.yaml", job(command)),
        ]
        .into_iter()
        .map(|(p, c)| (p.to_string(), c))
        .collect()
    };
    let (old, new) = (files("[sleep, '10']"), files("[sleep, '20']"));
    if kubectl::available("generate_name_in_a_kustomization") {
        let tmp = tempfile::tempdir().unwrap();
        kubectl::write(tmp.path(), &new);
        let err = kubectl::build(&tmp.path().join("app")).unwrap_err();
        assert!(err.contains("missing metadata.name"), "{err}");
    }
    let diff = semantic_diff(&kubectl::memory(&old), &kubectl::memory(&new), "app").unwrap();
    assert_eq!(diff.changed.len(), 1, "{}", diff.render_text());
    assert_eq!(diff.changed[0].id.to_string(), "batch/v1 Job before-");
    assert!(
        diff.warnings
            .iter()
            .any(|w| w.code == FindingCode::Unsupported && w.detail.contains("kustomize#641")),
        "{:?}",
        diff.warnings
    );
}

/// Argo CD's directory source reads plain YAML, where hook Jobs named by
/// `generateName` are the documented form: they are diffed, a `sleep` hook
/// is a `hook`, never a `migration`, and a Flyway hook is a migration.
#[test]
fn generate_name_hooks_in_a_directory_app_are_hooks_unless_they_migrate() {
    let hook = |name: &str, phase: &str, image: &str, command: &str| {
        format!(
            "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: {name}\n  annotations: {{argocd.argoproj.io/hook: {phase}}}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - {{name: x, image: '{image}', command: {command}}}\n"
        )
    };
    let app = |sleep: &str, flyway: &str| {
        let mut text = hook(
            "upgrade-sql-schema-",
            "PreSync",
            "alpine:3.20",
            &format!("[sleep, '{sleep}']"),
        );
        text.push_str(&hook(
            "flyway-",
            "Sync",
            &format!("flyway/flyway:{flyway}"),
            "[flyway, migrate]",
        ));
        rewind_manifest::MemoryTree::new().with("hooks/manifests.yaml", text)
    };
    let (v1, v2, v3) = (app("5", "10"), app("10", "10"), app("10", "11"));
    let diff = semantic_diff(&v1, &v2, "hooks").unwrap();
    let changed: Vec<String> = diff.changed.iter().map(|c| c.id.to_string()).collect();
    assert_eq!(changed, ["batch/v1 Job upgrade-sql-schema-"]);
    assert!(diff.warnings.is_empty(), "{:?}", diff.warnings);
    let risks = rollback_risks(&v2, &v1, "hooks", &[]).unwrap();
    let codes: Vec<RiskCode> = risks.iter().map(|r| r.code).collect();
    assert_eq!(codes, [RiskCode::Hook], "{risks:?}");
    assert_eq!(
        risks[0].detail,
        "a PreSync hook Job (upgrade-sql-schema-, which changes) runs before the sync; rewind cannot tell what it changes"
    );
    let risks = rollback_risks(&v3, &v2, "hooks", &[]).unwrap();
    let migration = risks
        .iter()
        .find(|r| r.code == RiskCode::Migration)
        .expect("migration");
    assert!(
        migration.detail.contains("Job flyway- (Flyway) changes"),
        "{risks:?}"
    );
    assert!(!risks.iter().any(|r| r.code == RiskCode::Hook), "{risks:?}");
    // Doctor: the sleep hook is a notice about a hook, the Flyway one a
    // migration warning; nothing claims `sleep` migrates.
    let findings = check_app(&v1, "hooks").unwrap();
    let migration: Vec<_> = findings
        .iter()
        .filter(|f| f.code == FindingCode::Migration)
        .collect();
    assert_eq!(migration.len(), 1, "{findings:?}");
    assert!(
        migration[0].detail.contains("Job flyway- runs Flyway"),
        "{findings:?}"
    );
    assert!(
        !migration[0].detail.contains("upgrade-sql-schema"),
        "{findings:?}"
    );
    assert!(
        findings.iter().any(|f| f.code == FindingCode::Hook
            && f.detail
                .contains("PreSync hook Job (upgrade-sql-schema-) runs before the sync")),
        "{findings:?}"
    );
}

/// The app paths an event of the generated history reaches.
fn reached(summary: &serde_json::Value, event: &serde_json::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for app in summary["apps"].as_array().unwrap() {
        let hit = match event["base"].as_str() {
            Some(base) => app["base"].as_str() == Some(base),
            None => app["name"] == event["app"],
        };
        if !hit {
            continue;
        }
        for (cluster, path) in app["paths"].as_object().unwrap() {
            if event["cluster"].as_str().is_none_or(|c| c == cluster) {
                out.insert(path.as_str().unwrap().to_string());
            }
        }
    }
    out
}

/// Over a generated GitOps history (tests/tools/gen-gitops-repo: image
/// bumps, env and configMapGenerator changes, scaling, migrations,
/// reformatting, shared bases), rewind's changed-object sets equal the
/// diff of kustomize's renderings of each commit and its parent.
#[test]
fn generated_histories_agree_with_kustomize() {
    if !kubectl::available("generated_histories_agree_with_kustomize") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo.git");
    let summary = support::generate(
        &repo_dir,
        &["--apps", "6", "--commits", "40", "--seed", "11"],
    );
    let repo = git2::Repository::open_bare(&repo_dir).unwrap();
    let events = summary["events"].as_array().unwrap();
    let checkout = |commit: &str| {
        let dir = tmp.path().join(commit);
        if !dir.exists() {
            kubectl::checkout(&repo_dir, commit, &dir);
        }
        dir
    };
    // A parent's rendering is the previous event's: build each once.
    let mut builds: BTreeMap<(String, String), BTreeMap<String, rewind_manifest::Node>> =
        BTreeMap::new();
    let mut build = |dir: &std::path::Path, commit: &str, path: &str| {
        builds
            .entry((commit.to_string(), path.to_string()))
            .or_insert_with(|| kubectl::build(&dir.join(path)).unwrap())
            .clone()
    };
    let mut compared = 0;
    let mut kinds = BTreeSet::new();
    for event in events {
        let commit = event["commit"].as_str().unwrap();
        let parent = repo
            .find_commit(git2::Oid::from_str(commit).unwrap())
            .unwrap()
            .parent_id(0)
            .unwrap()
            .to_string();
        let (before_dir, after_dir) = (checkout(&parent), checkout(commit));
        let (before, after) = (
            support::GitTree::at(&repo, &parent),
            support::GitTree::at(&repo, commit),
        );
        for path in reached(&summary, event) {
            let old = build(&before_dir, &parent, &path);
            let new = build(&after_dir, commit, &path);
            let rendered = render(&after, &path).unwrap();
            assert_eq!(
                kubectl::rendered_ids(&rendered),
                new.keys().cloned().collect(),
                "{commit} {path}: other names than kustomize"
            );
            let diff = semantic_diff(&before, &after, &path).unwrap();
            assert_eq!(
                kubectl::rewind_changes(&diff),
                kubectl::changes(&old, &new),
                "{} event {commit} on {path}:\n{}",
                event["kind"],
                diff.render_text()
            );
            compared += 1;
            kinds.insert(event["kind"].as_str().unwrap().to_string());
        }
    }
    assert!(compared >= 39, "{compared}");
    assert!(kinds.len() >= 4, "{kinds:?}");
}
