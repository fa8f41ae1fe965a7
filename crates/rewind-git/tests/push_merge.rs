//! Pushing rollback branches and merging them into `git.branch` against a
//! real bare remote over file://, with the git CLI checking the result:
//! fast-forwards only, `git fsck` clean, and a concurrent push to the
//! branch between build and merge handled (merge commit or rebuild).

mod common;

use std::path::Path;

use common::{Generated, clone_bare, entries, generate, git, open_cache, request};
use rewind_domain::{CommitId, Strategy};
use rewind_git::{
    BuildOutcome, BuiltCommit, GitError, GitRepo, MergeKind, MergeOutcome, RollbackRequest,
};

/// A writable remote generated for one test, a cache over it, and a
/// rollback of one app to the initial import.
struct Setup {
    _dir: tempfile::TempDir,
    _cache: tempfile::TempDir,
    remote: std::path::PathBuf,
    repo: GitRepo,
    generated: Generated,
    req: RollbackRequest,
    inputs: Vec<String>,
}

fn setup(seed: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.git");
    let generated = generate(&source, 8, 80, seed);
    let remote = dir.path().join("remote.git");
    clone_bare(&source, &remote);
    let (cache, mut repo) = open_cache(&format!("file://{}", remote.display()), "main");
    let head = repo.fetch().unwrap();
    // The app whose overlay changed most: a rollback to the first commit
    // certainly has something to do.
    let (app, cluster) = generated
        .summary
        .apps
        .iter()
        .flat_map(|a| a.paths.keys().map(move |c| (a, c.clone())))
        .max_by_key(|(a, c)| {
            generated
                .summary
                .events
                .iter()
                .filter(|e| {
                    e.app.as_deref() == Some(a.name.as_str())
                        && e.cluster.as_deref() == Some(c.as_str())
                })
                .count()
        })
        .unwrap();
    let app_path = app.paths[&cluster].clone();
    let inputs = generated.inputs(app, &cluster);
    let req = request(
        &format!("{}-{cluster}", app.name),
        &app_path,
        head.as_str(),
        &generated.commits[0],
        Strategy::Restore,
    );
    Setup {
        _dir: dir,
        _cache: cache,
        remote,
        repo,
        generated,
        req,
        inputs,
    }
}

fn built(outcome: BuildOutcome) -> BuiltCommit {
    match outcome {
        BuildOutcome::Commit(b) => b,
        BuildOutcome::AlreadyOnTarget => panic!("expected a commit"),
    }
}

fn fsck_clean(remote: &Path) {
    let out = git(
        remote,
        &["fsck", "--strict", "--no-dangling", "--no-progress"],
    );
    assert!(out.is_empty(), "git fsck: {out}");
}

fn remote_branches(remote: &Path) -> Vec<String> {
    git(
        remote,
        &["for-each-ref", "--format=%(refname)", "refs/heads"],
    )
    .lines()
    .map(String::from)
    .collect()
}

/// Commits `change` in a fresh clone of `remote` and pushes it to main, as
/// another person would.
fn push_from_elsewhere(remote: &Path, change: impl FnOnce(&Path)) -> String {
    let work = tempfile::tempdir().unwrap();
    let wt = work.path();
    git(wt, &["clone", "-q", &remote.display().to_string(), "."]);
    change(wt);
    git(wt, &["add", "-A"]);
    git(wt, &["commit", "-q", "-m", "concurrent change"]);
    git(wt, &["push", "-q", "origin", "HEAD:main"]);
    git(wt, &["rev-parse", "HEAD"])
}

#[test]
fn push_is_idempotent_and_merge_fast_forwards() {
    let mut s = setup(5);
    let main_before = git(&s.remote, &["rev-parse", "main"]);
    let b = built(s.repo.build_rollback(&s.req).unwrap());

    let pushed = s
        .repo
        .push_rollback(&s.req.app, &s.req.rollback_id, &b.commit)
        .unwrap();
    assert!(!pushed.reused);
    assert!(pushed.branch.starts_with("rewind/"));
    assert_eq!(
        git(
            &s.remote,
            &["rev-parse", &format!("refs/heads/{}", pushed.branch)]
        ),
        b.commit.as_str()
    );
    assert_eq!(
        git(&s.remote, &["rev-parse", "main"]),
        main_before,
        "push touched main"
    );

    // Again, and with a rebuilt commit of the same tree: the branch is reused.
    let again = s
        .repo
        .push_rollback(&s.req.app, &s.req.rollback_id, &b.commit)
        .unwrap();
    assert!(again.reused);
    let rebuilt = built(s.repo.build_rollback(&s.req).unwrap());
    let reused = s
        .repo
        .push_rollback(&s.req.app, &s.req.rollback_id, &rebuilt.commit)
        .unwrap();
    assert!(reused.reused);
    assert_eq!(reused.commit, b.commit);

    // A different tree on the same branch is refused, never forced.
    let mut other = s.req.clone();
    other.to = CommitId::new(&s.generated.commits[1]).unwrap();
    let other_tree = s.repo.build_rollback(&other).unwrap();
    if let BuildOutcome::Commit(o) = other_tree
        && o.tree != b.tree
    {
        let err = s
            .repo
            .push_rollback(&s.req.app, &s.req.rollback_id, &o.commit)
            .unwrap_err();
        assert!(matches!(err, GitError::BranchConflict { .. }), "{err}");
        assert_eq!(
            git(
                &s.remote,
                &["rev-parse", &format!("refs/heads/{}", pushed.branch)]
            ),
            b.commit.as_str()
        );
    }

    let merged = s.repo.merge_rollback(&s.req, &b.commit).unwrap();
    assert_eq!(
        merged,
        MergeOutcome::Merged {
            head: b.commit.clone(),
            kind: MergeKind::FastForward
        }
    );
    assert_eq!(git(&s.remote, &["rev-parse", "main"]), b.commit.as_str());
    git(
        &s.remote,
        &["merge-base", "--is-ancestor", &main_before, "main"],
    );
    assert_eq!(
        entries(&s.remote, "main", &s.inputs),
        entries(&s.remote, s.req.to.as_str(), &s.inputs)
    );

    // A second merge changes nothing.
    let twice = s.repo.merge_rollback(&s.req, &b.commit).unwrap();
    assert!(matches!(
        twice,
        MergeOutcome::Merged {
            kind: MergeKind::AlreadyMerged,
            ..
        }
    ));
    assert_eq!(
        remote_branches(&s.remote),
        vec![
            "refs/heads/main".to_string(),
            format!("refs/heads/{}", pushed.branch)
        ]
    );
    fsck_clean(&s.remote);
}

#[test]
fn concurrent_push_elsewhere_gives_a_merge_commit() {
    let mut s = setup(6);
    let b = built(s.repo.build_rollback(&s.req).unwrap());
    s.repo
        .push_rollback(&s.req.app, &s.req.rollback_id, &b.commit)
        .unwrap();

    // Someone changes a file no input of the app reads.
    let theirs = push_from_elsewhere(&s.remote, |wt| {
        std::fs::write(wt.join("README.md"), "changed meanwhile\n").unwrap();
    });
    let merged = s.repo.merge_rollback(&s.req, &b.commit).unwrap();
    let MergeOutcome::Merged {
        head,
        kind: MergeKind::MergeCommit,
    } = merged
    else {
        panic!("expected a merge commit, got {merged:?}");
    };
    assert_eq!(git(&s.remote, &["rev-parse", "main"]), head.as_str());
    assert_eq!(
        git(&s.remote, &["rev-parse", "main^1", "main^2"]),
        format!("{theirs}\n{}", b.commit)
    );
    assert_eq!(
        git(&s.remote, &["show", "main:README.md"]),
        "changed meanwhile"
    );
    assert_eq!(
        entries(&s.remote, "main", &s.inputs),
        entries(&s.remote, s.req.to.as_str(), &s.inputs)
    );
    fsck_clean(&s.remote);
}

#[test]
fn concurrent_push_to_the_app_rebuilds_the_rollback() {
    let mut s = setup(7);
    let b = built(s.repo.build_rollback(&s.req).unwrap());
    s.repo
        .push_rollback(&s.req.app, &s.req.rollback_id, &b.commit)
        .unwrap();

    // Someone deploys the app again meanwhile: the reviewed commit would no
    // longer give the target's inputs.
    let app_path = s.req.app_path.clone();
    let theirs = push_from_elsewhere(&s.remote, |wt| {
        let file = wt.join(&app_path).join("kustomization.yaml");
        let mut text = std::fs::read_to_string(&file).unwrap();
        text.push_str("# a new deploy\ncommonLabels:\n  deployed: again\n");
        std::fs::write(file, text).unwrap();
    });
    let merged = s.repo.merge_rollback(&s.req, &b.commit).unwrap();
    let MergeOutcome::Merged {
        head,
        kind: MergeKind::Rebuilt(rebuilt),
    } = merged
    else {
        panic!("expected a rebuild, got {merged:?}");
    };
    assert_eq!(rebuilt.parent.as_str(), theirs);
    assert_eq!(git(&s.remote, &["rev-parse", "main"]), head.as_str());
    assert_eq!(
        git(&s.remote, &["rev-parse", "main^"]),
        theirs,
        "not a fast-forward of their commit"
    );
    assert_eq!(
        entries(&s.remote, "main", &s.inputs),
        entries(&s.remote, s.req.to.as_str(), &s.inputs)
    );
    fsck_clean(&s.remote);
}

#[test]
fn revert_strategy_pushes_and_merges_too() {
    let mut s = setup(8);
    s.req.strategy = Strategy::Revert;
    let b = built(s.repo.build_rollback(&s.req).unwrap());
    assert_eq!(b.strategy_used, Strategy::Revert);
    assert!(!b.reverted.is_empty());
    s.repo
        .push_rollback(&s.req.app, &s.req.rollback_id, &b.commit)
        .unwrap();
    let merged = s.repo.merge_rollback(&s.req, &b.commit).unwrap();
    assert!(matches!(
        merged,
        MergeOutcome::Merged {
            kind: MergeKind::FastForward,
            ..
        }
    ));
    assert_eq!(
        entries(&s.remote, "main", &s.inputs),
        entries(&s.remote, s.req.to.as_str(), &s.inputs)
    );
    fsck_clean(&s.remote);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_cache_serialises_concurrent_rollbacks() {
    let s = setup(9);
    let settings = s.repo.settings().clone();
    drop(s.repo);
    let cache = rewind_git::RepoCache::open(settings).await.unwrap();
    let mut other = s.req.clone();
    other.rollback_id = rewind_domain::RollbackId::generate();
    other.strategy = Strategy::Revert;
    let (a, b) = tokio::join!(
        cache.build_rollback(s.req.clone()),
        cache.build_rollback(other.clone())
    );
    let (a, b) = (built(a.unwrap()), built(b.unwrap()));
    let (pa, pb) = tokio::join!(
        cache.push_rollback(&s.req.app, &s.req.rollback_id, &a.commit),
        cache.push_rollback(&other.app, &other.rollback_id, &b.commit)
    );
    let (pa, pb) = (pa.unwrap(), pb.unwrap());
    assert_ne!(pa.branch, pb.branch);
    assert_eq!(
        cache.head(&pa.branch).await.unwrap(),
        Some(a.commit.clone())
    );
    assert!(cache.commit_exists(&b.commit).await.unwrap());
    assert!(cache.is_ancestor(&s.req.to, &a.commit).await.unwrap());
    fsck_clean(&s.remote);
}
