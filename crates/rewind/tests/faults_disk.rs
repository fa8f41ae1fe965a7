//! Disk full for the repository cache, for real: `rewind serve` runs in its
//! own mount namespace (`unshare --user --map-root-user --mount`, no
//! privileges needed) with `git.cache_dir` on a 4 MiB tmpfs, which the test
//! then fills through `/proc/PID/root`. Webhooks are still recorded (the
//! database is elsewhere), `/readyz` stays 200 and its `cache_disk` and
//! `repository` lines (and `/metrics`) say the disk is full; once space is
//! freed the job's retry fetches and everything reads `ok` again, with
//! nothing that was accepted lost.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use rewind_ingest::samples::{HistoryEntry, argocd_notification};

const TOKEN: &str = "argocd-disk-test-token";
const APP_PATH: &str = "apps/checkout/overlays/prod";

/// Whether this machine lets an unprivileged process have its own mount
/// namespace with a tmpfs (user namespaces enabled).
fn namespaces_work() -> Result<(), String> {
    let output = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg("d=$(mktemp -d) && mount -t tmpfs -o size=1m t \"$d\" && umount \"$d\"; rmdir \"$d\"")
        .output()
        .map_err(|e| format!("unshare not available: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cannot mount a tmpfs in a user namespace: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Commits `files` in the work tree and pushes to the bare remote; answers
/// the commit id.
fn commit_and_push(work: &Path, files: &[(&str, String)], message: &str) -> String {
    for (path, content) in files {
        let file = work.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
    git(work, &["push", "-q", "origin", "HEAD:main"]);
    git(work, &["rev-parse", "HEAD"])
}

fn kustomization(tag: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "apps/checkout/overlays/prod/kustomization.yaml",
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\nimages:\n  - name: checkout\n    newTag: {tag}\n"
            ),
        ),
        (
            "apps/checkout/overlays/prod/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\nspec:\n  template:\n    spec:\n      containers:\n        - name: checkout\n          image: checkout\n".to_string(),
        ),
    ]
}

mod served;

/// `rewind serve` with `cache` on a fresh 4 MiB tmpfs of its own: its own
/// mount namespace, where `sh` mounts the tmpfs and then becomes rewind.
fn serve_on_small_disk(config: &Path, dir: &Path, cache: &Path) -> served::Served {
    let cache = cache.to_str().expect("utf-8 path");
    served::serve(
        config,
        dir,
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            "mount -t tmpfs -o size=4m rewind-cache \"$1\" && shift && exec \"$@\"",
            "sh",
            cache,
        ],
        &[("RUST_LOG", "info")],
    )
}

/// The cache directory as the server sees it (its mount namespace).
fn cache_view(served: &served::Served, cache: &Path) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root", served.pid()))
        .join(cache.strip_prefix("/").unwrap_or(cache))
}

fn request(method: &str, url: &str, body: Option<Vec<u8>>) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let builder = match method {
            "POST" => client
                .post(url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(body.unwrap_or_default()),
            _ => client.get(url),
        };
        let response = builder.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    })
}

fn readyz(url: &str) -> (u16, serde_json::Value) {
    let (status, text) = request("GET", &format!("{url}/readyz"), None);
    (status, serde_json::from_str(&text).unwrap_or_default())
}

fn metric(url: &str, series: &str) -> Option<f64> {
    let (_, text) = request("GET", &format!("{url}/metrics"), None);
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Polls `/readyz` until `done` holds for its body (bounded).
fn wait_for(url: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (_, body) = readyz(url);
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{what}: never happened: {body}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Writes into `dir` until the filesystem refuses with ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).expect("create filler");
    let chunk = vec![0x5a_u8; 64 * 1024];
    loop {
        match file.write_all(&chunk).and_then(|()| file.sync_data()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => return filler,
            Err(e) => panic!("filling the cache failed otherwise: {e}"),
        }
    }
}

#[test]
fn a_full_cache_disk_is_reported_webhooks_still_recorded_and_it_recovers() {
    if let Err(reason) = namespaces_work() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and the disk-full test cannot run: {reason}"
        );
        eprintln!("skipped: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("gitops.git");
    git(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", "gitops.git"],
    );
    let work = dir.path().join("work");
    git(dir.path(), &["clone", "-q", "gitops.git", "work"]);
    let first = commit_and_push(&work, &kustomization("v1.4.1"), "checkout v1.4.1");
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let config = dir.path().join("rewind.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://data/rewind.db\"\n\
             [git]\nurl = \"{}\"\ncache_dir = \"{}\"\n[webhooks]\nargocd_token = \"{TOKEN}\"\n",
            remote.display(),
            cache.display()
        ),
    )
    .unwrap();
    let served = serve_on_small_disk(&config, dir.path(), &cache);
    let url = served.url.clone();
    let body = wait_for(&url, "first fetch", |b| b["checks"]["repository"] == "ok");
    assert_eq!(body["checks"]["cache_disk"], "ok", "{body}");
    assert!(metric(&url, "rewind_cache_free_bytes").unwrap_or(0.0) > 1024.0 * 1024.0);

    // The disk fills up (something else on the volume, or the cache grew).
    let filler = fill(&cache_view(&served, &cache));
    let (status, body) = readyz(&url);
    assert_eq!(status, 200, "webhooks can still be recorded: {body}");
    let disk = body["checks"]["cache_disk"].as_str().unwrap_or_default();
    assert!(disk.contains("full"), "{body}");
    assert_eq!(
        metric(&url, "rewind_readiness_check{check=\"cache_disk\"}"),
        Some(0.0)
    );
    assert!(metric(&url, "rewind_cache_free_bytes").unwrap_or(f64::MAX) < 1024.0 * 1024.0);

    // Argo CD deploys a commit the cache must fetch: recorded (202), and
    // the fetch fails for want of space.
    let second = commit_and_push(
        &work,
        &[(
            "apps/checkout/overlays/prod/extra.yaml",
            format!("data: {}\n", "x".repeat(200_000)),
        )],
        "checkout extra data",
    );
    let t0 = Utc::now() - chrono::Duration::minutes(30);
    let history = vec![
        HistoryEntry {
            id: 1,
            revision: first,
            deployed_at: t0,
        },
        HistoryEntry {
            id: 2,
            revision: second.clone(),
            deployed_at: Utc::now(),
        },
    ];
    let delivery = argocd_notification(
        "on-deployed",
        "checkout",
        &remote.display().to_string(),
        APP_PATH,
        &history,
        "Progressing",
    );
    let (status, answer) = request(
        "POST",
        &format!("{url}/webhooks/argocd"),
        Some(serde_json::to_vec(&delivery).unwrap()),
    );
    assert_eq!(status, 202, "{answer}");
    let body = wait_for(&url, "the failed fetch is reported", |b| {
        b["checks"]["repository"]
            .as_str()
            .is_some_and(|r| r.starts_with("last fetch failed"))
    });
    let repository = body["checks"]["repository"].as_str().unwrap_or_default();
    assert!(
        repository.to_ascii_lowercase().contains("space"),
        "the reason is the disk: {body}"
    );

    // Space comes back: the job's retry fetches; everything is ok again,
    // and the deployment recorded during the outage is there.
    std::fs::remove_file(&filler).unwrap();
    let body = wait_for(&url, "recovery", |b| {
        b["checks"]["repository"] == "ok" && b["checks"]["cache_disk"] == "ok"
    });
    assert_eq!(body["status"], "ready", "{body}");
    let (_, history) = request("GET", &format!("{url}/api/v1/apps/checkout/history"), None);
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let revisions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["revision"].as_str())
        .collect();
    assert!(revisions.contains(&second.as_str()), "{history:#}");

    let log = served.stop();
    let panics: Vec<&String> = log.iter().filter(|l| l.contains("panicked")).collect();
    assert!(panics.is_empty(), "{panics:#?}");
}
