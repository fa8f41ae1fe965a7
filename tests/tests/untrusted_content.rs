//! What rewind cannot trust, end to end on every backend: a target it
//! cannot render (a symlink to `/etc/passwd`, an alias bomb, 100,000
//! levels of flow nesting, a kustomization cycle, a reference escaping the
//! repository) carries
//! `unrenderable` and is never merged by `auto_merge = "safe"`, and the link
//! is never restored; a broken current commit does not block rolling back to
//! a clean target; NUL characters in webhooks and requests are refused with
//! 400 naming the field; the web UI shows bidi overrides instead of applying
//! them.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_config::AutoMerge;
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use rewind_ledger::JobState;
use rewind_tests::repo::{deployment, overlay};
use rewind_tests::{ALERTMANAGER_TOKEN, APP, APP_PATH, ARGOCD_TOKEN, World, databases};
use serde_json::{Value, json};

const BOMB: &str = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";

/// One thing rewind cannot render or trust, placed in the target.
struct Problem {
    name: &'static str,
    files: Vec<(String, String)>,
    links: Vec<(String, &'static str)>,
    /// What the `unrenderable` detail must name.
    names: &'static str,
}

fn overlay_with(extra: &str, tag: &str) -> String {
    overlay(tag).replace(
        "  - ../../base\n",
        &format!("  - ../../base\n  - {extra}\n"),
    )
}

fn problems() -> Vec<Problem> {
    vec![
        Problem {
            name: "symlink to /etc/passwd",
            files: vec![],
            links: vec![(format!("{APP_PATH}/passwd.yaml"), "/etc/passwd")],
            names: "passwd.yaml",
        },
        Problem {
            name: "alias bomb",
            files: vec![
                (format!("{APP_PATH}/bomb.yaml"), BOMB.to_owned()),
                (
                    format!("{APP_PATH}/kustomization.yaml"),
                    overlay_with("bomb.yaml", "v1.4.1"),
                ),
            ],
            links: vec![],
            names: "bomb.yaml",
        },
        Problem {
            name: "100,000 levels of flow nesting",
            files: vec![
                (
                    format!("{APP_PATH}/deep.yaml"),
                    format!(
                        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  x: {}x{}\n",
                        "[".repeat(100_000),
                        "]".repeat(100_000)
                    ),
                ),
                (
                    format!("{APP_PATH}/kustomization.yaml"),
                    overlay_with("deep.yaml", "v1.4.1"),
                ),
            ],
            links: vec![],
            names: "deep.yaml",
        },
        Problem {
            name: "kustomization cycle",
            files: vec![
                (
                    format!("{APP_PATH}/loop/kustomization.yaml"),
                    "resources:\n  - ../loop\n".to_owned(),
                ),
                (
                    format!("{APP_PATH}/kustomization.yaml"),
                    overlay_with("loop", "v1.4.1"),
                ),
            ],
            links: vec![],
            names: "loop",
        },
        Problem {
            name: "reference escaping the repository",
            files: vec![(
                format!("{APP_PATH}/kustomization.yaml"),
                overlay_with("../../../../../../etc", "v1.4.1"),
            )],
            links: vec![],
            names: "escapes the repository",
        },
    ]
}

/// Commits the known-good configuration plus `problem` (the target), then
/// the bad configuration without it (current); deploys both, the target
/// known good, and fires the alert. Returns (target, current, proposal).
async fn propose_to(world: &mut World, problem: &Problem) -> (String, String, Value) {
    let mut files: Vec<(&str, String)> = vec![
        ("apps/checkout/base/deployment.yaml", deployment("false")),
        (
            "apps/checkout/overlays/prod/kustomization.yaml",
            overlay("v1.4.1"),
        ),
    ];
    files.retain(|(path, _)| !problem.files.iter().any(|(p, _)| p == path));
    files.extend(problem.files.iter().map(|(p, c)| (p.as_str(), c.clone())));
    let links: Vec<(&str, &str)> = problem
        .links
        .iter()
        .map(|(p, t)| (p.as_str(), *t))
        .collect();
    let target = world
        .repo
        .commit_entries(&files, &links, &[], "target with a problem");
    let removed: Vec<&str> = problem
        .files
        .iter()
        .map(|(p, _)| p.as_str())
        .chain(links.iter().map(|(p, _)| *p))
        .filter(|p| !p.ends_with("prod/kustomization.yaml"))
        .collect();
    let current = world.repo.commit_entries(
        &[
            ("apps/checkout/base/deployment.yaml", deployment("true")),
            (
                "apps/checkout/overlays/prod/kustomization.yaml",
                overlay("v1.4.2"),
            ),
        ],
        &[],
        &removed,
        "bad deploy",
    );
    let t0 = Utc::now() - Duration::hours(1);
    assert_eq!(
        world.deploy_at(1, &target, "Healthy", t0).await,
        StatusCode::ACCEPTED
    );
    world.tick(Utc::now()).await;
    assert_eq!(
        world.deploy(2, &current, "Degraded").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        world.alert("firing", "fp-1", Utc::now()).await,
        StatusCode::ACCEPTED
    );
    let rollbacks = world.rollbacks().await;
    assert_eq!(rollbacks.len(), 1, "{}: {rollbacks:#?}", problem.name);
    (target, current, rollbacks[0].clone())
}

fn risk<'a>(rollback: &'a Value, code: &str) -> Option<&'a str> {
    rollback["risks"]
        .as_array()?
        .iter()
        .find(|r| r["code"] == code)
        .and_then(|r| r["detail"].as_str())
}

fn events(rollback: &Value) -> Vec<(String, String)> {
    rollback["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|e| {
                    (
                        e["event"].as_str().unwrap_or("").to_owned(),
                        e["detail"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_auto_merge_never_merges_an_unrenderable_target() {
    for problem in problems() {
        for db in databases().await {
            let mut world = World::start(db, |s| {
                s.policy.auto_merge = AutoMerge::Safe;
            })
            .await;
            let (_, current, proposal) = propose_to(&mut world, &problem).await;
            let detail = risk(&proposal, "unrenderable")
                .unwrap_or_else(|| panic!("{}: no unrenderable risk: {proposal:#}", problem.name));
            assert!(detail.contains(problem.names), "{}: {detail}", problem.name);
            let id = proposal["id"].as_str().unwrap();
            let after = world.rollback(id).await;
            assert_eq!(after["state"], "proposed", "{}: {after:#}", problem.name);
            assert_eq!(
                world.repo.head(),
                current,
                "{}: main untouched",
                problem.name
            );
            let branch = proposal["branch"].as_str().unwrap();
            for (link, _) in &problem.links {
                assert_eq!(
                    world.repo.git(&["ls-tree", branch, "--", link]),
                    "",
                    "{} restored into {branch}",
                    link
                );
                let message = world.repo.git(&["log", "-1", "--format=%B", branch]);
                assert!(message.contains("Not restored: "), "{message}");
                assert!(
                    events(&after)
                        .iter()
                        .any(|(e, d)| e == "links_not_restored" && d.contains(link)),
                    "{after:#}"
                );
            }
            world.finish().await;
        }
    }
}

/// The control: the same history without the problem merges by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_auto_merge_merges_a_clean_target() {
    for db in databases().await {
        let mut world = World::start(db, |s| s.policy.auto_merge = AutoMerge::Safe).await;
        let clean = Problem {
            name: "none",
            files: vec![],
            links: vec![],
            names: "",
        };
        let (target, current, proposal) = propose_to(&mut world, &clean).await;
        assert_eq!(proposal["risks"], json!([]), "{proposal:#}");
        assert_eq!(proposal["state"], "merged", "{proposal:#}");
        assert_ne!(world.repo.head(), current);
        assert_eq!(
            world.repo.object("main", APP_PATH),
            world.repo.object(&target, APP_PATH)
        );
        world.finish().await;
    }
}

/// The commit being rolled away from references a path outside the
/// repository: the rollback restores the clean target, says what was
/// broken, and no job is left retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_current_commit_never_blocks_a_rollback() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let good = world.repo.good.clone();
        let broken = world.repo.commit_entries(
            &[(
                "apps/checkout/overlays/prod/kustomization.yaml",
                overlay_with("../../../../../../etc", "v1.4.2"),
            )],
            &[],
            &[],
            "broken: a reference outside the repository",
        );
        let t0 = Utc::now() - Duration::hours(1);
        world.deploy_at(1, &good, "Healthy", t0).await;
        world.tick(Utc::now()).await;
        assert_eq!(
            world.deploy(2, &broken, "Degraded").await,
            StatusCode::ACCEPTED
        );
        let ledger = world.service().engine.ledger().clone();
        let stuck: Vec<_> = ledger
            .job_counts()
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.state != JobState::Done && c.count > 0)
            .collect();
        assert!(stuck.is_empty(), "jobs left retrying: {stuck:?}");

        let (status, proposal) = world
            .api(
                &format!("/api/v1/apps/{APP}/rollbacks"),
                json!({"reason": "the deploy broke \u{202E}the build"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{proposal}");
        let noted = events(&proposal);
        assert!(
            noted.iter().any(|(e, d)| e == "current_unrenderable"
                && d.contains("overlays/prod/kustomization.yaml")
                && d.contains("escapes the repository")),
            "{proposal:#}"
        );
        let branch = proposal["branch"].as_str().unwrap();
        assert_eq!(
            world.repo.object(branch, APP_PATH),
            world.repo.object(&good, APP_PATH)
        );
        // The web UI shows the reason's bidi override, never applies it.
        let page = world
            .client
            .get(format!(
                "{}/ui/rollbacks/{}",
                world.url(),
                proposal["id"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("broke &lt;U+202E&gt;the build"), "{page}");
        assert!(!page.contains('\u{202E}'));
        let id = proposal["id"].as_str().unwrap();
        let (status, body) = world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(world.rollback(id).await["state"], "merged");
        assert_eq!(
            world.repo.object("main", APP_PATH),
            world.repo.object(&good, APP_PATH)
        );
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_are_refused_with_400_naming_the_field() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let mut alert = alertmanager_notification(
            "firing",
            "CheckoutHighErrorRate",
            APP,
            "critical",
            "5xx",
            Utc::now(),
            "fp-nul",
        );
        alert["alerts"][0]["labels"]["team"] = json!("pay\u{0}ments");
        let (status, body) = world
            .post_json("/webhooks/alertmanager", ALERTMANAGER_TOKEN, &alert)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("alerts[0].labels.team"), "{body}");
        assert!(detail.contains("NUL"), "{body}");

        let history = [HistoryEntry {
            id: 1,
            revision: world.repo.good.clone(),
            deployed_at: Utc::now(),
        }];
        let argocd = argocd_notification(
            "on-deployed",
            APP,
            &world.repo.path.display().to_string(),
            &format!("{APP_PATH}\u{0}"),
            &history,
            "Healthy",
        );
        let (status, body) = world
            .post_json("/webhooks/argocd", ARGOCD_TOKEN, &argocd)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["detail"].as_str().unwrap_or_default().contains("path"),
            "{body}"
        );
        assert!(
            world
                .get("/api/v1/apps")
                .await
                .1
                .as_array()
                .is_some_and(Vec::is_empty)
        );

        world.deploy(1, &world.repo.good.clone(), "Healthy").await;
        let (status, body) = world
            .api(
                &format!("/api/v1/apps/{APP}/rollbacks"),
                json!({"to_revision": 1, "reason": "bad\u{0}reason"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with("reason: ") && detail.contains("NUL"),
            "{body}"
        );
        world.finish().await;
    }
}
