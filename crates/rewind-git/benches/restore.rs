//! Restore benchmark: rewind builds a restore commit and pushes it to a
//! local bare remote, against a shell script doing the same with the git
//! CLI, in the same run, on a 2,000-app / 20,000-commit repository and a
//! 200-app one (to show that commit time does not grow with file count).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-git cargo bench -p rewind-git --bench restore
//! ```
//!
//! Repositories are generated with `shared/tools/gen-gitops-repo` into
//! `REWIND_BENCH_DIR` (default `/tmp/rewind-bench`) on first use and reused
//! afterwards. `REWIND_BENCH_ITERS` sets the rollbacks per side (default 20).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Generated, Pick, clone_bare, generate, git, open_cache, request};
use rewind_domain::{CommitId, Strategy};
use rewind_git::BuildOutcome;

/// One rollback to run on both sides: an overlay and its known-good commit.
struct Case {
    app: String,
    path: String,
    good: String,
}

fn main() {
    let dir = PathBuf::from(
        std::env::var("REWIND_BENCH_DIR").unwrap_or_else(|_| "/tmp/rewind-bench".into()),
    );
    let iters: usize = std::env::var("REWIND_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "| repository | files | rewind build+push (median) | git CLI script (median) | CLI / rewind | rewind commit only (median) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut commit_medians = Vec::new();
    for apps in [200u32, 2000] {
        let generated = load_or_generate(&dir, apps, 20_000);
        let result = run(&generated, iters);
        let files = git(&generated.remote, &["ls-tree", "-r", "--name-only", "main"])
            .lines()
            .count();
        println!(
            "| {apps} apps, {} commits | {files} | {} | {} | {:.1}× | {} |",
            generated.commits.len(),
            ms(result.rewind),
            ms(result.cli),
            result.cli.as_secs_f64() / result.rewind.as_secs_f64(),
            ms(result.commit_only),
        );
        commit_medians.push(result.commit_only);
    }
    println!(
        "\ncommit-only time, 2,000 apps / 200 apps: {:.2}×",
        commit_medians[1].as_secs_f64() / commit_medians[0].as_secs_f64()
    );
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn load_or_generate(dir: &Path, apps: u32, commits: u32) -> Generated {
    let remote = dir.join(format!("apps-{apps}.git"));
    let summary = dir.join(format!("apps-{apps}.json"));
    if remote.join("HEAD").exists() && summary.exists() {
        let summary: common::Summary =
            serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
        let commits = git(
            &remote,
            &["rev-list", "--reverse", "--first-parent", "main"],
        )
        .lines()
        .map(String::from)
        .collect();
        return Generated {
            remote,
            summary,
            commits,
        };
    }
    eprintln!("generating {} (once) ...", remote.display());
    let generated = generate(&remote, apps, commits, 1);
    std::fs::rename(remote.with_extension("summary.json"), &summary).unwrap();
    generated
}

struct Medians {
    rewind: Duration,
    cli: Duration,
    commit_only: Duration,
}

fn cases(generated: &Generated, n: usize) -> Vec<Case> {
    let mut pick = Pick::new(7);
    let mut out = Vec::new();
    while out.len() < n {
        let i = pick.below(generated.summary.events.len());
        let event = &generated.summary.events[i];
        let (Some(app), Some(cluster)) = (&event.app, &event.cluster) else {
            continue;
        };
        let Some(app) = generated.summary.apps.iter().find(|a| &a.name == app) else {
            continue;
        };
        out.push(Case {
            app: format!("{}-{cluster}", app.name),
            path: app.paths[cluster].clone(),
            // The commit before the change: the known-good.
            good: generated.commits[i].clone(),
        });
    }
    out
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn run(generated: &Generated, iters: usize) -> Medians {
    let work = tempfile::tempdir().unwrap();
    let cases = cases(generated, iters);

    // rewind: a warm cache (first clone not timed), then fetch + build +
    // push per rollback.
    let remote = work.path().join("remote-rewind.git");
    clone_bare(&generated.remote, &remote);
    let (_cache, mut repo) = open_cache(&format!("file://{}", remote.display()), "main");
    let head = repo.fetch().unwrap();
    let mut rewind = Vec::new();
    let mut commit_only = Vec::new();
    for case in &cases {
        let req = request(
            &case.app,
            &case.path,
            head.as_str(),
            &case.good,
            Strategy::Restore,
        );
        let started = Instant::now();
        let BuildOutcome::Commit(built) = repo.build_rollback(&req).unwrap() else {
            panic!("{} already on target", case.app);
        };
        repo.push_rollback(&req.app, &req.rollback_id, &built.commit)
            .unwrap();
        rewind.push(started.elapsed());

        let started = Instant::now();
        let outcome = repo
            .build_rollback_on(&CommitId::new(head.as_str()).unwrap(), &req)
            .unwrap();
        commit_only.push(started.elapsed());
        assert!(matches!(outcome, BuildOutcome::Commit(_)));
    }

    // The CLI: a warm clone with a work tree, then per rollback the same
    // steps a person or a script would take.
    let remote = work.path().join("remote-cli.git");
    clone_bare(&generated.remote, &remote);
    let wt = work.path().join("cli");
    std::fs::create_dir(&wt).unwrap();
    git(&wt, &["clone", "-q", &remote.display().to_string(), "."]);
    let script = r#"set -e
git fetch -q origin
git checkout -q -B "rewind-cli/$3" origin/main
git checkout "$1" -- "$2"
git commit -q -m "Revert $2 to $1"
git push -q origin "HEAD:refs/heads/rewind-cli/$3"
"#;
    let mut cli = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let started = Instant::now();
        let status = Command::new("bash")
            .current_dir(&wt)
            .args([
                "-c",
                script,
                "restore",
                &case.good,
                &case.path,
                &i.to_string(),
            ])
            .env("GIT_AUTHOR_NAME", "bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.com")
            .env("GIT_COMMITTER_NAME", "bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.com")
            .status()
            .unwrap();
        cli.push(started.elapsed());
        assert!(status.success(), "CLI script failed for {}", case.app);
    }
    Medians {
        rewind: median(rewind),
        cli: median(cli),
        commit_only: median(commit_only),
    }
}
