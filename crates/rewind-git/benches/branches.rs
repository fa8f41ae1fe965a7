//! Push time against the number of `rewind/*` branches on the remote, and
//! what retention's pruning gives back. libgit2 lists every remote ref on
//! each push (and the cache fetches every `rewind/*` branch), so stale
//! rollback branches slow every proposal.
//!
//! ```text
//! cargo bench -p rewind-git --bench branches
//! ```
//!
//! One generated repository (`REWIND_BENCH_APPS`, default 200 apps, 2,000
//! commits), a local bare remote over file://, a warm cache. Each phase
//! times `REWIND_BENCH_ITERS` (default 20) pushes of a fresh rollback branch
//! (`GitRepo::push_rollback`, and fetch + push as a proposal does), deleting
//! each pushed branch again untimed so the count stays put. Phases: 5
//! branches (the baseline), 120 branches, then 115 of them deleted by
//! `GitRepo::delete_rollback_branch` (retention) and 5 again.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Pick, clone_bare, generate, open_cache, request};
use rewind_domain::{CommitId, Strategy};
use rewind_git::{BuildOutcome, GitRepo};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Fixture {
    repo: GitRepo,
    head: CommitId,
    cases: Vec<(String, String, String)>,
    next: usize,
}

impl Fixture {
    /// Builds the next rollback commit (untimed) and answers its request.
    fn next_commit(&mut self) -> (rewind_git::RollbackRequest, CommitId) {
        let (app, path, good) = self.cases[self.next % self.cases.len()].clone();
        self.next += 1;
        let req = request(&app, &path, self.head.as_str(), &good, Strategy::Restore);
        let BuildOutcome::Commit(built) = self.repo.build_rollback_on(&self.head, &req).unwrap()
        else {
            panic!("{app} already on target");
        };
        (req, built.commit)
    }

    /// Pushes one more rollback branch and keeps it.
    fn add_branch(&mut self) {
        let (req, commit) = self.next_commit();
        self.repo
            .push_rollback(&req.app, &req.rollback_id, &commit)
            .unwrap();
    }

    /// Median push, and median fetch + push, of `iters` fresh branches,
    /// each deleted again (untimed).
    fn measure(&mut self, iters: usize) -> (Duration, Duration) {
        let mut push = Vec::new();
        let mut fetch_push = Vec::new();
        for i in 0..iters {
            let (req, commit) = self.next_commit();
            let started = Instant::now();
            if i % 2 == 1 {
                self.repo.fetch().unwrap();
            }
            let pushed = self
                .repo
                .push_rollback(&req.app, &req.rollback_id, &commit)
                .unwrap();
            let took = started.elapsed();
            if i % 2 == 1 {
                fetch_push.push(took);
            } else {
                push.push(took);
            }
            self.repo.delete_rollback_branch(&pushed.branch).unwrap();
        }
        (median(push), median(fetch_push))
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let apps = u32::try_from(env_or("REWIND_BENCH_APPS", 200)).unwrap_or(200);
    let iters = env_or("REWIND_BENCH_ITERS", 20).max(2);
    let work = tempfile::tempdir().unwrap();
    eprintln!("generating {apps} apps, 2,000 commits ...");
    let generated = generate(&work.path().join("gen.git"), apps, 2000, 3);
    let remote = work.path().join("remote.git");
    clone_bare(&generated.remote, &remote);
    let (_cache, mut repo) = open_cache(&format!("file://{}", remote.display()), "main");
    let head = repo.fetch().unwrap();

    let mut pick = Pick::new(11);
    let mut cases = Vec::new();
    while cases.len() < 400 {
        let i = pick.below(generated.summary.events.len());
        let event = &generated.summary.events[i];
        let (Some(app), Some(cluster)) = (&event.app, &event.cluster) else {
            continue;
        };
        let Some(app) = generated.summary.apps.iter().find(|a| &a.name == app) else {
            continue;
        };
        let path = app.paths[cluster].clone();
        let good = generated.commits[i].clone();
        let req = request(&app.name, &path, head.as_str(), &good, Strategy::Restore);
        if matches!(
            repo.build_rollback_on(&head, &req).unwrap(),
            BuildOutcome::Commit(_)
        ) {
            cases.push((format!("{}-{cluster}", app.name), path, good));
        }
    }
    let mut fixture = Fixture {
        repo,
        head,
        cases,
        next: 0,
    };

    println!(
        "| remote `rewind/*` branches | push (median) | fetch + push (median) | push / 5 branches |"
    );
    println!("| --- | --- | --- | --- |");
    for _ in 0..5 {
        fixture.add_branch();
    }
    let (base_push, base_fetch) = fixture.measure(iters);
    println!("| 5 | {} | {} | 1.00× |", ms(base_push), ms(base_fetch));
    while fixture.repo.rollback_branches().unwrap().len() < 120 {
        fixture.add_branch();
    }
    let (many_push, many_fetch) = fixture.measure(iters);
    println!(
        "| 120 | {} | {} | {:.2}× |",
        ms(many_push),
        ms(many_fetch),
        many_push.as_secs_f64() / base_push.as_secs_f64()
    );
    let branches = fixture.repo.rollback_branches().unwrap();
    let started = Instant::now();
    for branch in &branches[5..] {
        fixture.repo.delete_rollback_branch(branch).unwrap();
    }
    let pruning = started.elapsed();
    let (after_push, after_fetch) = fixture.measure(iters);
    println!(
        "| 5 after pruning 115 | {} | {} | {:.2}× |",
        ms(after_push),
        ms(after_fetch),
        after_push.as_secs_f64() / base_push.as_secs_f64()
    );
    println!(
        "\npruning 115 branches: {} ({} per branch)",
        ms(pruning),
        ms(pruning / 115)
    );
}
