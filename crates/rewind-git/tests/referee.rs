//! The git CLI as referee, over many random histories from
//! `generated-gitops-repo`: restore and revert commits built in memory by
//! rewind-git must match what git itself says.
//!
//! Default run: 240 restore and 60 revert cases. Longer: `REWIND_REFEREE_CASES=5000
//! cargo test -p rewind-git --test referee`.

mod common;

use common::{
    Generated, Pick, SummaryApp, case_count, corpus, entries, git, git_raw, open_cache, request,
};
use rewind_domain::{CommitId, Strategy};
use rewind_git::{BuildOutcome, GitRepo, GitTree};

/// One referee case: an app (overlay), a target commit and a head.
struct Case<'a> {
    app: &'a SummaryApp,
    cluster: &'a str,
    target: usize,
    head: usize,
}

/// Picks a case; targets are biased towards commits that changed the app,
/// so most cases have something to roll back.
fn pick_case<'a>(generated: &'a Generated, pick: &mut Pick, head_after_target: bool) -> Case<'a> {
    let app = &generated.summary.apps[pick.below(generated.summary.apps.len())];
    let clusters: Vec<&String> = app.paths.keys().collect();
    let cluster = clusters[pick.below(clusters.len())].as_str();
    let touching: Vec<usize> = generated
        .summary
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.app.as_deref() == Some(app.name.as_str())
                && e.cluster.as_deref().is_none_or(|c| c == cluster)
                || (e.base.is_some() && e.base == app.base)
        })
        // Event i is commit i + 1: commit 0 is the initial import.
        .map(|(i, _)| i + 1)
        .collect();
    let n = generated.commits.len();
    let target = if !touching.is_empty() && pick.below(10) < 7 {
        // The commit before a change to the app: a typical known-good.
        touching[pick.below(touching.len())] - 1
    } else {
        pick.below(n)
    };
    let head = if head_after_target || pick.below(10) < 8 {
        target + pick.below(n - target)
    } else {
        pick.below(n)
    };
    Case {
        app,
        cluster,
        target,
        head,
    }
}

/// The paths the app reads, by the generator's layout, at both commits.
fn oracle_inputs(generated: &Generated, case: &Case<'_>) -> Vec<String> {
    generated.inputs(case.app, case.cluster)
}

fn config_hash(repo: &GitRepo, commit: &CommitId, path: &str) -> String {
    let tree = GitTree::at_rev(repo.repository(), commit.as_str()).unwrap();
    rewind_manifest::config_hash(&tree, path)
        .unwrap()
        .to_string()
}

#[test]
fn restore_matches_the_git_cli() {
    let total = case_count(240);
    let repos = corpus();
    let mut pick = Pick::new(11);
    let mut built = 0;
    let mut already = 0;
    for (r, generated) in repos.iter().enumerate() {
        let (_cache, mut repo) = open_cache(&generated.url(), "main");
        repo.fetch().unwrap();
        let dir = generated.remote.as_path();
        let cases = total / repos.len() + usize::from(r < total % repos.len());
        for i in 0..cases {
            let case = pick_case(generated, &mut pick, false);
            let (t, h) = (
                &generated.commits[case.target],
                &generated.commits[case.head],
            );
            let app_path = &case.app.paths[case.cluster];
            let name = format!("{}-{}", case.app.name, case.cluster);
            let req = request(&name, app_path, h, t, Strategy::Restore);
            let head = CommitId::new(h).unwrap();
            let inputs = oracle_inputs(generated, &case);
            let context = format!("repo {r} case {i}: {name} target {t} head {h}");
            match repo.build_rollback_on(&head, &req).unwrap() {
                BuildOutcome::AlreadyOnTarget => {
                    already += 1;
                    assert_eq!(
                        entries(dir, t, &inputs),
                        entries(dir, h, &inputs),
                        "{context}: said already on target"
                    );
                }
                BuildOutcome::Commit(b) => {
                    built += 1;
                    let new = b.commit.as_str();
                    // The cache holds the new commit; the remote does not.
                    let cache = repo.path();
                    assert_eq!(b.parent, head, "{context}");
                    assert_eq!(
                        git(cache, &["rev-parse", &format!("{new}^{{tree}}")]),
                        b.tree
                    );
                    // Every input is exactly as at the target ...
                    assert_eq!(
                        entries(cache, new, &inputs),
                        entries(cache, t, &inputs),
                        "{context}: inputs differ from target"
                    );
                    // ... and nothing else moved.
                    let diff = git(cache, &["diff", "--name-only", "--no-renames", h, new]);
                    let changed: Vec<&str> = diff.lines().collect();
                    assert!(!changed.is_empty(), "{context}: empty commit");
                    for path in &changed {
                        assert!(
                            inputs
                                .iter()
                                .any(|i| path == i || path.starts_with(&format!("{i}/"))),
                            "{context}: {path} changed outside the app's inputs"
                        );
                    }
                    assert_eq!(b.changed_paths, changed, "{context}");
                    let shared: Vec<&str> = changed
                        .iter()
                        .copied()
                        .filter(|p| !p.starts_with(&format!("{app_path}/")))
                        .collect();
                    assert_eq!(b.shared_paths, shared, "{context}");
                    assert_eq!(
                        config_hash(&repo, &b.commit, app_path),
                        config_hash(&repo, &req.to, app_path),
                        "{context}: config hash differs from target's"
                    );
                    if i % 10 == 0 {
                        let trailers = git(
                            cache,
                            &[
                                "log",
                                "-1",
                                "--format=%(trailers:key=Rewind-To,valueonly)%(trailers:key=Rewind-App,valueonly)",
                                new,
                            ],
                        );
                        assert_eq!(trailers, format!("{t}\n{name}"), "{context}");
                        assert_eq!(
                            git(cache, &["log", "-1", "--format=%an <%ae>|%cn", new]),
                            "rewind-bot <rewind@example.com>|rewind-bot"
                        );
                    }
                }
            }
        }
    }
    assert!(
        built > total / 2,
        "too few non-trivial cases: {built} built, {already} already on target"
    );
    eprintln!("restore referee: {built} commits checked, {already} already on target");
}

#[test]
fn revert_matches_git_revert() {
    let total = case_count(240) / 4;
    let repos = corpus();
    let mut pick = Pick::new(23);
    let mut compared = 0;
    let mut cli_failed = 0;
    for (r, generated) in repos.iter().enumerate() {
        let (_cache, mut repo) = open_cache(&generated.url(), "main");
        repo.fetch().unwrap();
        let work = tempfile::tempdir().unwrap();
        let wt = work.path();
        git(
            wt,
            &["clone", "-q", &generated.remote.display().to_string(), "."],
        );
        let cases = total / repos.len() + usize::from(r < total % repos.len());
        for i in 0..cases {
            let case = pick_case(generated, &mut pick, true);
            let (t, h) = (
                &generated.commits[case.target],
                &generated.commits[case.head],
            );
            let app_path = &case.app.paths[case.cluster];
            let name = format!("{}-{}", case.app.name, case.cluster);
            let req = request(&name, app_path, h, t, Strategy::Revert);
            let inputs = oracle_inputs(generated, &case);
            let context = format!("repo {r} case {i}: {name} target {t} head {h}");

            // Which commits: git's own path-limited history.
            let mut args = vec![
                "rev-list".to_string(),
                "--first-parent".into(),
                format!("{t}..{h}"),
                "--".into(),
            ];
            args.extend(inputs.iter().cloned());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let expected: Vec<String> = git(wt, &args).lines().map(String::from).collect();

            let outcome = repo
                .build_rollback_on(&CommitId::new(h).unwrap(), &req)
                .unwrap();
            let b = match outcome {
                BuildOutcome::AlreadyOnTarget => {
                    // Either nothing touched the inputs, or the changes cancel
                    // out (a deploy and its revert).
                    assert_eq!(
                        entries(repo.path(), t, &inputs),
                        entries(repo.path(), h, &inputs),
                        "{context}: nothing to revert, git found {expected:?}"
                    );
                    continue;
                }
                BuildOutcome::Commit(b) => b,
            };
            let reverted: Vec<String> = b.reverted.iter().map(|c| c.to_string()).collect();
            assert_eq!(reverted, expected, "{context}: commits to revert");
            assert_eq!(b.strategy_used, Strategy::Revert);
            // In a linear history, reverting every commit that touched the
            // inputs brings them back to the target.
            assert_eq!(
                entries(repo.path(), b.commit.as_str(), &inputs),
                entries(repo.path(), t, &inputs),
                "{context}"
            );

            git(wt, &["checkout", "-q", "-f", "--detach", h]);
            let mut args = vec!["revert", "--no-edit"];
            args.extend(expected.iter().map(String::as_str));
            let out = git_raw(wt, &args);
            if out.status.success() {
                compared += 1;
                assert_eq!(
                    git(wt, &["rev-parse", "HEAD^{tree}"]),
                    b.tree,
                    "{context}: tree differs from git revert"
                );
            } else {
                cli_failed += 1;
                let _ = git_raw(wt, &["revert", "--abort"]);
            }
        }
    }
    assert!(
        compared > total / 2,
        "too few cases compared: {compared} (git revert failed {cli_failed})"
    );
    eprintln!(
        "revert referee: {compared} trees compared with git revert, {cli_failed} skipped (git revert failed)"
    );
}
