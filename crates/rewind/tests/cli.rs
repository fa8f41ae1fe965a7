//! The `rewind` binary as people run it: `serve` on a minimal config file
//! (SQLite created, `/readyz` and `/metrics` answer, SIGTERM stops it
//! cleanly), unknown keys refused by name, `config default`, the offline
//! exit codes, doctor on symlinks and escaping references, and `demo` end
//! to end. The API client against a running rewind is in `remote_cli.rs`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn rewind() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rewind"));
    command.env_remove("REWIND_CONFIG").env("RUST_LOG", "info");
    command
}

/// Starts `rewind serve` and returns it with its URL, read from the log
/// line that announces it (the listener is bound before that line).
fn serve(config: &std::path::Path, dir: &std::path::Path) -> (Child, String) {
    serve_with_env(config, dir, &[])
}

/// [`serve`] with extra environment variables.
fn serve_with_env(
    config: &std::path::Path,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (Child, String) {
    let mut child = rewind()
        .envs(env.iter().copied())
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("rewind serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("rewind serve exited before serving")
            .expect("read log");
        if let Some(rest) = line.split("server.url=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

fn get(url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::get(url).await.expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    })
}

#[test]
fn serve_with_a_minimal_config_creates_its_database_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("gitops.git");
    let config = dir.path().join("rewind.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://data/rewind.db\"\n[git]\nurl = \"{}\"\ncache_dir = \"cache\"\n",
            remote.display()
        ),
    )
    .unwrap();
    let (mut child, url) = serve(&config, dir.path());
    assert!(
        dir.path().join("data/rewind.db").exists(),
        "SQLite database created"
    );
    assert!(remote.join("HEAD").exists(), "local repository created");
    let (status, body) = get(&format!("{url}/readyz"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&format!("{url}/metrics"));
    assert_eq!(status, 200);
    assert!(body.contains("rewind_http_requests_total"), "{body}");
    assert!(body.contains("rewind_rollbacks"), "{body}");
    let (status, _) = get(&format!("{url}/healthz"));
    assert_eq!(status, 200);

    // SIGTERM: a graceful stop, exit code 0.
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_with_timeout(&mut child, Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_unknown_key_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rewind.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\nlisten_port = 80\n",
    )
    .unwrap();
    let output = rewind()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.listen_port"), "{stderr}");
    assert!(stderr.contains("rewind.toml"), "{stderr}");
}

#[test]
fn config_default_prints_the_commented_defaults_and_show_redacts() {
    let output = rewind().args(["config", "default"]).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("max_rollbacks_per_hour = 2") && text.contains("# "),
        "{text}"
    );

    let output = rewind()
        .args(["config", "show"])
        .env("REWIND__WEBHOOKS__ARGOCD_TOKEN", "very-secret-token")
        .env(
            "REWIND__DATABASE__URL",
            "postgres://rewind:db-password@db/rewind",
        )
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("very-secret-token") && !text.contains("db-password"),
        "{text}"
    );
    assert!(text.contains("argocd_token"), "{text}");
}

#[test]
fn usage_errors_exit_2() {
    let output = rewind().args(["undo"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = rewind().args(["no-such-command"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// `rewind demo --exit`: the whole story in numbered steps, from the bad
/// deploy to `verified`, with rewind's logs in the file it names, not on
/// the terminal; exit 0 in seconds. With stdin not a terminal (as here),
/// it ends after the story even without `--exit`.
#[test]
fn demo_tells_the_story_to_verified_and_exits() {
    for exit_flag in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = rewind();
        command.args(["demo", "--listen", "127.0.0.1:0", "--dir"]);
        command.arg(dir.path()).stdin(Stdio::null());
        if exit_flag {
            command.arg("--exit");
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        for step in [
            " 1. GitOps repository",
            " 2. rewind is serving at",
            " 6. rewind proposes rollback",
            " 7. A reviewer approves it",
            " 8. rewind merges it",
            " 9. Argo CD (simulated) syncs the merge commit",
            "11. rewind verifies the rollback: verified",
        ] {
            assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
        }
        assert!(
            stdout.contains("v1.4.2") && stdout.contains("→") && stdout.contains("v1.4.1"),
            "the changes name the image going back: {stdout}"
        );
        assert!(stdout.contains("/ui/rollbacks/"), "{stdout}");
        // No log line on the terminal; they are in the named file.
        assert!(
            !stdout.contains(" INFO ") && !stderr.contains(" INFO "),
            "{stdout}\n{stderr}"
        );
        let log = dir.path().canonicalize().unwrap().join("rewind.log");
        assert!(stdout.contains(&log.display().to_string()), "{stdout}");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains("INFO"), "{logged}");
    }
}

/// A small generated GitOps repository (the generator the workspace
/// carries) and its summary.
fn generated_repo(dir: &std::path::Path) -> serde_json::Value {
    let generator =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tools/gen-gitops-repo");
    let repo = dir.join("repo");
    let output = Command::new(generator)
        .arg(&repo)
        .args(["--apps", "40", "--commits", "80", "--seed", "7"])
        .output()
        .expect("generator runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("summary")
}

#[test]
fn offline_hash_diff_and_doctor_on_a_generated_repository() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generated_repo(dir.path());
    let repo = dir.path().join("repo");
    let events = summary["events"].as_array().unwrap();
    let image = events
        .iter()
        .find(|e| e["kind"] == "image" && e["cluster"].is_string())
        .expect("an image bump");
    let app = summary["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == image["app"])
        .unwrap();
    let path = app["paths"][image["cluster"].as_str().unwrap()]
        .as_str()
        .unwrap();
    let commit = image["commit"].as_str().unwrap();
    let parent = format!("{commit}^");

    let hash = |rev: &str| {
        let output = rewind()
            .args(["hash", "--repo"])
            .arg(&repo)
            .args(["--path", path, rev])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let (before, after) = (hash(&parent), hash(commit));
    assert!(
        before.starts_with("sha256:") && before.len() == 71,
        "{before}"
    );
    assert_ne!(before, after, "an image bump changes the config hash");

    let output = rewind()
        .args(["diff", "--repo"])
        .arg(&repo)
        .args(["--path", path, &parent, commit, "--output", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let diff: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(diff.to_string().contains("image"), "{diff}");

    // The generator plants mutable tags, low history limits, migrations.
    let output = rewind()
        .args(["doctor", "--repo"])
        .arg(&repo)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let output = rewind()
        .args(["hash", "--repo"])
        .arg(dir.path().join("missing"))
        .args(["--path", "x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// `rewind doctor` on a checkout whose app has `passwd.yaml -> /etc/passwd`
/// and a reference outside the repository: both are warnings naming the
/// file (the same findings make a rollback's `unrenderable` risk).
#[test]
fn doctor_names_symlinks_and_escaping_references() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(repo)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    let app = repo.join("apps/a");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("kustomization.yaml"),
        "resources:\n  - cm.yaml\n  - ../../../../etc\n",
    )
    .unwrap();
    std::fs::write(
        app.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", app.join("passwd.yaml")).unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "hostile"]);

    let output = rewind()
        .args(["doctor", "--output", "json", "--path", "apps/a", "--repo"])
        .arg(repo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let findings: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let find = |code: &str| {
        findings
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["code"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("no {code} finding: {stdout}"))
    };
    let link = find("symlink");
    assert_eq!(link["path"], "apps/a/passwd.yaml");
    assert!(
        link["detail"]
            .as_str()
            .unwrap()
            .contains("\"/etc/passwd\", outside the repository"),
        "{link}"
    );
    assert_eq!(find("escape")["path"], "apps/a/kustomization.yaml");
}

/// Runs a client command against `url` with `token`.
fn client(args: &[&str], url: &str, token: &str) -> std::process::Output {
    rewind()
        .args(args)
        .args(["--server", url, "--token", token])
        .output()
        .expect("rewind runs")
}

#[test]
fn tokens_from_env_and_file_then_token_create_list_revoke_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("gitops.git");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[tokens]]\nname = \"dash\"\ntoken = \"file-viewer-token\"\nrole = \"viewer\"\n",
    )
    .unwrap();
    let config = dir.path().join("rewind.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://data/rewind.db\"\n[git]\nurl = \"{}\"\ncache_dir = \"cache\"\n[api]\ntokens_file = \"{}\"\n",
            remote.display(),
            tokens.display()
        ),
    )
    .unwrap();
    let (mut child, url) = serve_with_env(
        &config,
        dir.path(),
        &[("REWIND_API_TOKEN_ROOT", "admin:env-admin-token")],
    );

    // The admin from the environment makes a stored token; it is printed
    // once, alone on stdout.
    let out = client(
        &["token", "create", "--name", "ci", "--role", "operator"],
        &url,
        "env-admin-token",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("rwd_") && token.len() > 60, "{token}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&token));
    // The file's viewer may read but not manage tokens.
    let out = client(&["token", "list"], &url, "file-viewer-token");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
    let out = client(&["token", "list"], &url, "env-admin-token");
    let list = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success());
    for expected in ["ci", "operator", "database", "dash", "root", "config"] {
        assert!(list.contains(expected), "{expected}: {list}");
    }
    assert!(!list.contains(&token) && !list.contains("env-admin-token"));
    // The stored token authenticates.
    let out = client(&["apps", "--output", "json"], &url, &token);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Revoked, it no longer does.
    let out = client(&["token", "revoke", "ci"], &url, "env-admin-token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = client(&["apps"], &url, &token);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    // The audit log, read by the viewer, names the admin token.
    let out = client(
        &[
            "audit", "--actor", "root", "--since", "1h", "--output", "json",
        ],
        &url,
        "file-viewer-token",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["token.revoke", "token.create"], "{log}");
    let out = client(&["audit", "--actor", "root"], &url, "file-viewer-token");
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        table.contains("ACTOR") && table.contains("token/ci"),
        "{table}"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    wait_with_timeout(&mut child, Duration::from_secs(20));
}
