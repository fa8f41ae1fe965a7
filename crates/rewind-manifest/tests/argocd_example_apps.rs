//! A real public repository: argoproj/argocd-example-apps (Apache-2.0),
//! read from a local clone named by `REWIND_ARGOCD_EXAMPLE_APPS` (a git
//! directory; default: the workplace mirror). Nothing of it is copied here.
//! Skipped, saying why, when the clone is absent.
//!
//! - `pre-post-sync` (kustomize, namePrefix over `kustomize-guestbook`,
//!   PreSync/PostSync hook Jobs running `sleep 10`): over every commit
//!   that touched it, rewind's changed objects equal the diff of
//!   `kubectl kustomize` renderings, and doctor calls the hooks hooks, not
//!   schema migrations.
//! - `sync-waves` (a plain directory, Argo CD's directory source): its hook
//!   Jobs went from `generateName` to `name` in 94ad32f; rewind diffs both
//!   forms, and a PreSync Job named `upgrade-sql-schema` that runs
//!   `sleep 5` is a hook, never a migration.

mod support;

use std::path::PathBuf;

use git2::Repository;
use rewind_domain::RiskCode;
use rewind_manifest::{FindingCode, check_app, rollback_risks, semantic_diff};
use support::{GitTree, kubectl};

const DEFAULT: &str = "/work/.mirror/argoproj+argocd-example-apps/repo";

fn repo(test: &str) -> Option<(PathBuf, Repository)> {
    let dir = std::env::var_os("REWIND_ARGOCD_EXAMPLE_APPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT));
    match Repository::open(&dir) {
        Ok(repo) => Some((dir, repo)),
        Err(e) => {
            eprintln!(
                "SKIP {test}: no clone of argoproj/argocd-example-apps at {} ({}); set REWIND_ARGOCD_EXAMPLE_APPS",
                dir.display(),
                e.message()
            );
            None
        }
    }
}

/// Commits (oldest first) that touched any of `paths`.
fn history(repo: &Repository, paths: &[&str]) -> Vec<String> {
    let mut walk = repo.revwalk().unwrap();
    walk.push_head().unwrap();
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
        .unwrap();
    let mut out = Vec::new();
    for oid in walk {
        let commit = repo.find_commit(oid.unwrap()).unwrap();
        let tree = commit.tree().unwrap();
        let id = |tree: &git2::Tree<'_>, p: &str| {
            tree.get_path(std::path::Path::new(p)).ok().map(|e| e.id())
        };
        let parent = commit.parent(0).ok().map(|p| p.tree().unwrap());
        let touched = paths.iter().any(|p| match &parent {
            Some(pt) => id(&tree, p) != id(pt, p),
            None => id(&tree, p).is_some(),
        });
        if touched {
            out.push(commit.id().to_string());
        }
    }
    out
}

#[test]
fn pre_post_sync_history_agrees_with_kustomize_and_its_hooks_are_not_migrations() {
    let test = "pre_post_sync_history_agrees_with_kustomize";
    let Some((git_dir, repo)) = repo(test) else {
        return;
    };
    if !kubectl::available(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let commits = history(&repo, &["pre-post-sync", "kustomize-guestbook"]);
    let mut previous: Option<(String, _)> = None;
    let mut compared = 0;
    for commit in &commits {
        let dir = tmp.path().join(commit);
        kubectl::checkout(&git_dir, commit, &dir);
        // Before it was a kustomization (ksonnet days) kustomize cannot
        // build it: those commits are not compared.
        let Ok(built) = kubectl::build(&dir.join("pre-post-sync")) else {
            previous = None;
            continue;
        };
        if let Some((old_commit, old_built)) = &previous {
            let (before, after) = (GitTree::at(&repo, old_commit), GitTree::at(&repo, commit));
            let diff = semantic_diff(&before, &after, "pre-post-sync").unwrap();
            assert_eq!(
                kubectl::rewind_changes(&diff),
                kubectl::changes(old_built, &built),
                "{old_commit}..{commit}:\n{}",
                diff.render_text()
            );
            compared += 1;
        }
        previous = Some((commit.clone(), built));
    }
    assert!(compared >= 3, "only {compared} comparable commits");

    let head = GitTree::at(&repo, "HEAD");
    let findings = check_app(&head, "pre-post-sync").unwrap();
    assert!(
        !findings.iter().any(|f| f.code == FindingCode::Migration),
        "sleep 10 hooks are not migrations: {findings:?}"
    );
    for (phase, name, when) in [
        ("PreSync", "pre-post-sync-before", "before"),
        ("PostSync", "pre-post-sync-after", "after"),
    ] {
        let want = format!(
            "a {phase} hook Job ({name}) runs {when} the sync; rewind cannot tell what it changes"
        );
        assert!(
            findings
                .iter()
                .any(|f| f.code == FindingCode::Hook && f.detail.starts_with(&want)),
            "{want:?} not in {findings:?}"
        );
    }
}

#[test]
fn sync_waves_hooks_named_by_generate_name_are_diffed_as_hooks() {
    let Some((_, repo)) = repo("sync_waves_hooks_named_by_generate_name") else {
        return;
    };
    let (old, new) = (
        GitTree::at(&repo, "94ad32f^"),
        GitTree::at(&repo, "94ad32f"),
    );
    let diff = semantic_diff(&old, &new, "sync-waves").unwrap();
    let ids = |refs: &[rewind_manifest::diff::ObjectRef]| -> Vec<String> {
        refs.iter().map(|r| r.id.to_string()).collect()
    };
    assert_eq!(
        ids(&diff.removed),
        [
            "batch/v1 Job maint-page-down-",
            "batch/v1 Job maint-page-up-"
        ],
        "{}",
        diff.render_text()
    );
    assert_eq!(
        ids(&diff.added),
        ["batch/v1 Job maint-page-down", "batch/v1 Job maint-page-up"]
    );
    // Rolling 94ad32f back brings the generateName hooks back.
    let risks = rollback_risks(&new, &old, "sync-waves", &[]).unwrap();
    let hook = risks
        .iter()
        .find(|r| r.code == RiskCode::Hook)
        .expect("hook risk");
    assert!(
        hook.detail
            .contains("Sync hook Job maint-page-up- is added (runs during the sync)"),
        "{}",
        hook.detail
    );
    assert!(
        !risks.iter().any(|r| r.code == RiskCode::Migration),
        "{risks:?}"
    );
    // `upgrade-sql-schema` runs `sleep 5`: a hook, not a migration.
    let findings = check_app(&old, "sync-waves").unwrap();
    assert!(
        !findings.iter().any(|f| f.code == FindingCode::Migration),
        "{findings:?}"
    );
    assert!(
        findings.iter().any(|f| f.code == FindingCode::Hook
            && f.detail
                .starts_with("a PreSync hook Job (upgrade-sql-schema) runs before the sync")),
        "{findings:?}"
    );
    assert!(
        !findings.iter().any(|f| f.code == FindingCode::InvalidYaml),
        "generateName documents are not skipped: {findings:?}"
    );
}
