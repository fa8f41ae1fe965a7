//! Config hash and semantic diff of one app in a 2,000-app repository.
//!
//! The repository is generated once (about a minute) into
//! `$REWIND_BENCH_REPO` (default `/tmp/rewind-bench-2000.git`) with
//! `gen-gitops-repo --apps 2000 --commits 2000 --seed 1 --bare`, and reused.
//! Baseline: listing and reading the app's input files and hashing their raw
//! bytes, the least any config hash must do.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use git2::Repository;
use rewind_manifest::{app_inputs, config_hash, images, rollback_risks, semantic_diff};
use sha2::{Digest, Sha256};
use support::GitTree;

fn repo_and_summary() -> (PathBuf, serde_json::Value) {
    let dir = std::env::var_os("REWIND_BENCH_REPO").map_or_else(
        || PathBuf::from("/tmp/rewind-bench-2000.git"),
        PathBuf::from,
    );
    let summary = dir.with_extension("summary.json");
    if !summary.exists() {
        support::generate(
            &dir,
            &["--apps", "2000", "--commits", "2000", "--seed", "1"],
        );
    }
    let summary = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    (dir, summary)
}

fn benches(c: &mut Criterion) {
    let (dir, summary) = repo_and_summary();
    let repo = Repository::open_bare(&dir).unwrap();
    // The app of the last image event that uses a shared base: a realistic
    // closure (overlay, base, shared base) and a realistic diff.
    let apps = summary["apps"].as_array().unwrap();
    let event = summary["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| {
            e["kind"] == "image"
                && apps
                    .iter()
                    .any(|a| a["name"] == e["app"] && !a["base"].is_null())
        })
        .expect("an image event");
    let app = apps.iter().find(|a| a["name"] == event["app"]).unwrap();
    let path = app["paths"][event["cluster"].as_str().unwrap()]
        .as_str()
        .unwrap()
        .to_string();
    let commit = event["commit"].as_str().unwrap();
    let after = GitTree::at(&repo, commit);
    let before = GitTree::at(&repo, &format!("{commit}^"));
    eprintln!("app {path} at {commit}");

    for (label, after, before) in [
        ("GitTree as in rewind-git", after, before),
        (
            "GitTree with subtree cache",
            GitTree::at(&repo, commit).with_subtree_cache(),
            GitTree::at(&repo, &format!("{commit}^")).with_subtree_cache(),
        ),
    ] {
        run(c, label, &path, &after, &before);
    }
}

fn run(c: &mut Criterion, label: &str, path: &str, after: &GitTree<'_>, before: &GitTree<'_>) {
    let path = path.to_string();
    let mut group = c.benchmark_group(format!("one app of 2000, {label}"));
    group
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);
    group.bench_function("baseline: read input files, sha256 of raw bytes", |b| {
        let inputs = app_inputs(after, &path).unwrap();
        b.iter(|| {
            let mut hasher = Sha256::new();
            for file in inputs.all_files(after).unwrap() {
                hasher.update(
                    rewind_manifest::TreeSource::read_file(after, &file)
                        .unwrap()
                        .unwrap(),
                );
            }
            hasher.finalize()
        })
    });
    group.bench_function("app_inputs", |b| {
        b.iter(|| app_inputs(after, &path).unwrap())
    });
    group.bench_function("config_hash", |b| {
        b.iter(|| config_hash(after, &path).unwrap())
    });
    group.bench_function("images", |b| b.iter(|| images(after, &path).unwrap()));
    group.bench_function("semantic_diff", |b| {
        b.iter(|| semantic_diff(before, after, &path).unwrap())
    });
    group.bench_function("rollback_risks (no other apps)", |b| {
        b.iter(|| rollback_risks(after, before, &path, &[]).unwrap())
    });
    group.finish();
}

criterion_group!(manifest, benches);
criterion_main!(manifest);
