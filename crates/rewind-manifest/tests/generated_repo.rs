//! Acceptance over a generated GitOps repository: for every event of its
//! history, the config hash changes exactly for the affected apps unless the
//! event only reformats, the semantic diff names what changed, rollback
//! risks carry the right codes, and doctor finds the planted problems.

mod support;

use std::collections::BTreeSet;

use git2::Repository;
use rewind_domain::RiskCode;
use rewind_manifest::{FindingCode, Severity, config_hash, doctor, rollback_risks, semantic_diff};
use serde_json::Value;
use support::{GitTree, generate};

struct Fixture {
    _dir: tempfile::TempDir,
    repo: Repository,
    summary: Value,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo.git");
    // Seed 3 plants a `:latest` app, low history limits, migrations and
    // StatefulSets among 12 apps.
    let summary = generate(&path, &["--apps", "12", "--commits", "150", "--seed", "3"]);
    let repo = Repository::open_bare(&path).unwrap();
    Fixture {
        _dir: dir,
        repo,
        summary,
    }
}

fn apps(summary: &Value) -> &Vec<Value> {
    summary["apps"].as_array().unwrap()
}

fn app_paths(app: &Value) -> Vec<String> {
    app["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

/// (app name, cluster) → path of every app path an event reaches.
fn affected(summary: &Value, event: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for app in apps(summary) {
        let reached = if let Some(base) = event["base"].as_str() {
            app["base"].as_str() == Some(base)
        } else {
            app["name"] == event["app"]
        };
        if !reached {
            continue;
        }
        match event["cluster"].as_str() {
            Some(cluster) => {
                out.insert(app["paths"][cluster].as_str().unwrap().to_string());
            }
            None => out.extend(app_paths(app)),
        }
    }
    out
}

#[test]
fn hash_diff_and_risks_follow_every_event() {
    let f = fixture();
    let all_paths: Vec<String> = apps(&f.summary).iter().flat_map(app_paths).collect();
    let events = f.summary["events"].as_array().unwrap();
    let mut seen_kinds = BTreeSet::new();
    for (n, event) in events.iter().enumerate() {
        let commit = event["commit"].as_str().unwrap();
        let kind = event["kind"].as_str().unwrap();
        seen_kinds.insert(kind.to_string());
        let before = GitTree::at(&f.repo, &format!("{commit}^"));
        let after = GitTree::at(&f.repo, commit);
        let reached = affected(&f.summary, event);
        assert!(!reached.is_empty(), "event {event} reaches no app");
        // Unaffected apps: checked over the first events only, to keep the
        // debug-build test short.
        let checked: Vec<&String> = if n < 25 {
            all_paths.iter().collect()
        } else {
            reached.iter().collect()
        };
        for path in checked {
            let (h1, h2) = (
                config_hash(&before, path).unwrap(),
                config_hash(&after, path).unwrap(),
            );
            if kind == "format" || !reached.contains(path) {
                assert_eq!(h1, h2, "{kind} event {commit} changed the hash of {path}");
            } else {
                assert_ne!(
                    h1, h2,
                    "{kind} event {commit} left the hash of {path} unchanged"
                );
            }
        }
        let path = reached.iter().next().unwrap();
        let diff = semantic_diff(&before, &after, path).unwrap();
        let fields: Vec<&str> = diff
            .changed
            .iter()
            .flat_map(|c| c.fields.iter().map(|f| f.path.as_str()))
            .collect();
        let text = diff.render_text();
        match kind {
            "format" => {
                assert!(
                    diff.changed.is_empty() && diff.added.is_empty() && diff.removed.is_empty(),
                    "{text}"
                );
                assert!(
                    !diff.files.is_empty(),
                    "a format commit still changes a file"
                );
            }
            "image" => {
                assert_ne!(diff.images.from, diff.images.to, "{text}");
                assert!(fields.iter().any(|f| f.ends_with("].image")), "{text}");
                assert!(
                    text.contains(&diff.images.to[0])
                        || diff.images.to.iter().any(|i| text.contains(i))
                );
            }
            "env" => assert!(
                fields
                    .iter()
                    .any(|f| f.contains(".env[name=") || f.starts_with("data")),
                "{text}"
            ),
            "scale" => assert!(
                fields.iter().any(|f| f == &"spec.replicas"
                    || f.contains(".resources.")
                    || f == &"spec.maxReplicas"),
                "{text}"
            ),
            "migration" => assert!(
                diff.files.iter().any(|f| f.path.ends_with(".sql"))
                    || diff.changed.iter().any(|c| c.id.kind == "Job"),
                "{text}"
            ),
            "base" => assert!(!diff.changed.is_empty(), "{text}"),
            other => panic!("unknown event kind {other}"),
        }
        // Rolling this event back: the risks match what it changed.
        let risks = rollback_risks(&after, &before, path, &[]).unwrap();
        let codes: BTreeSet<RiskCode> = risks.iter().map(|r| r.code).collect();
        match kind {
            "format" | "env" => assert!(!codes.contains(&RiskCode::Scale), "{kind}: {risks:?}"),
            "image" => {
                assert!(!codes.contains(&RiskCode::Scale), "{risks:?}");
                // A migration Job runs the app's image, so an image change
                // re-runs it: a migration risk only for apps with one.
                let app = apps(&f.summary)
                    .iter()
                    .find(|a| a["name"] == event["app"])
                    .unwrap();
                if app["has_migrations"] == false {
                    assert!(!codes.contains(&RiskCode::Migration), "{risks:?}");
                }
            }
            "scale"
                if fields
                    .iter()
                    .any(|f| f == &"spec.replicas" || f.contains(".resources."))
                    || diff
                        .changed
                        .iter()
                        .any(|c| c.id.kind == "HorizontalPodAutoscaler") =>
            {
                assert!(codes.contains(&RiskCode::Scale), "{risks:?}\n{text}")
            }
            "migration" => assert!(codes.contains(&RiskCode::Migration), "{risks:?}\n{text}"),
            _ => {}
        }
    }
    assert!(seen_kinds.len() >= 5, "{seen_kinds:?}");
}

#[test]
fn shared_base_change_names_the_other_apps() {
    let f = fixture();
    let events = f.summary["events"].as_array().unwrap();
    let Some(event) = events.iter().find(|e| e["kind"] == "base") else {
        return;
    };
    let commit = event["commit"].as_str().unwrap();
    let (before, after) = (
        GitTree::at(&f.repo, &format!("{commit}^")),
        GitTree::at(&f.repo, commit),
    );
    let users: Vec<&Value> = apps(&f.summary)
        .iter()
        .filter(|a| a["base"] == event["base"])
        .collect();
    let others: Vec<(String, String)> = apps(&f.summary)
        .iter()
        .flat_map(|a| {
            a["paths"].as_object().unwrap().iter().map(move |(c, p)| {
                (
                    format!("{}-{c}", a["name"].as_str().unwrap()),
                    p.as_str().unwrap().to_string(),
                )
            })
        })
        .collect();
    let path = app_paths(users[0]).remove(0);
    let risks = rollback_risks(&after, &before, &path, &others).unwrap();
    let shared = risks
        .iter()
        .find(|r| r.code == RiskCode::SharedChange)
        .expect("shared-change risk");
    assert!(
        shared.detail.contains(event["base"].as_str().unwrap()),
        "{}",
        shared.detail
    );
    // The app itself is not named, every other user (another cluster) is.
    let other_user = format!("{}-", users[0]["name"].as_str().unwrap());
    assert!(
        shared.detail.contains(&other_user) || users.len() > 1,
        "{}",
        shared.detail
    );
}

#[test]
fn doctor_finds_planted_problems_and_nothing_on_clean_apps() {
    let f = fixture();
    let head = GitTree::at(&f.repo, "HEAD");
    let findings = doctor(&head, None).unwrap();
    for app in apps(&f.summary) {
        let name = app["name"].as_str().unwrap();
        for path in app_paths(app) {
            let mine: Vec<_> = findings
                .iter()
                .filter(|x| x.app.as_deref() == Some(path.as_str()))
                .collect();
            let has = |code: FindingCode| {
                mine.iter()
                    .any(|x| x.code == code && x.severity == Severity::Warning)
            };
            assert_eq!(
                has(FindingCode::MutableImage),
                app["image_ref"] == "latest",
                "{name}: {mine:?}"
            );
            assert_eq!(
                has(FindingCode::HistoryLimit),
                app["revision_history_limit"].as_i64().unwrap() < 3,
                "{name}: {mine:?}"
            );
            assert_eq!(
                has(FindingCode::Migration),
                app["has_migrations"] == true,
                "{name}: {mine:?}"
            );
            assert_eq!(
                has(FindingCode::Stateful),
                app["kind"] == "StatefulSet",
                "{name}: {mine:?}"
            );
            let clean = app["image_ref"] != "latest"
                && app["revision_history_limit"].as_i64().unwrap() >= 3
                && app["has_migrations"] == false
                && app["kind"] == "Deployment";
            if clean {
                let warnings: Vec<_> = mine
                    .iter()
                    .filter(|x| x.severity == Severity::Warning)
                    .collect();
                assert!(warnings.is_empty(), "clean app {name} has {warnings:?}");
            }
        }
    }
    // Doctor discovered exactly the overlays.
    let discovered: BTreeSet<String> = findings.iter().filter_map(|x| x.app.clone()).collect();
    let expected: BTreeSet<String> = apps(&f.summary).iter().flat_map(app_paths).collect();
    assert!(discovered.is_subset(&expected));
    assert_eq!(
        rewind_manifest::discover_apps(&head)
            .unwrap()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        expected
    );
}

#[test]
fn diff_text_reads_like_a_review() {
    let f = fixture();
    let events = f.summary["events"].as_array().unwrap();
    let event = events
        .iter()
        .find(|e| {
            e["kind"] == "image"
                && apps(&f.summary)
                    .iter()
                    .any(|a| a["name"] == e["app"] && a["image_ref"] == "tag")
        })
        .unwrap();
    let commit = event["commit"].as_str().unwrap();
    let (before, after) = (
        GitTree::at(&f.repo, &format!("{commit}^")),
        GitTree::at(&f.repo, commit),
    );
    let name = event["app"].as_str().unwrap();
    let path = format!(
        "apps/{name}/overlays/{}",
        event["cluster"].as_str().unwrap()
    );
    let diff = semantic_diff(&before, &after, &path).unwrap();
    let text = diff.render_text();
    eprintln!("{text}");
    let old = diff
        .images
        .from
        .iter()
        .find(|i| !diff.images.to.contains(i))
        .unwrap()
        .clone();
    let new = diff
        .images
        .to
        .iter()
        .find(|i| !diff.images.from.contains(i))
        .unwrap()
        .clone();
    let line = format!("spec.template.spec.containers[name={name}].image: {old} → {new}");
    assert!(text.contains(&line), "{line:?} not in\n{text}");
    assert!(
        text.contains(&format!("--- a/{path}/kustomization.yaml")),
        "{text}"
    );
    let json = serde_json::to_value(&diff).unwrap();
    let deployment = json["changed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "Deployment")
        .unwrap();
    let field = deployment["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("].image"))
        .unwrap();
    assert_eq!(field["old"], Value::String(old));
    assert_eq!(field["new"], Value::String(new));
}
