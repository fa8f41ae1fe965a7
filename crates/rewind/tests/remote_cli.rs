//! The real `rewind` binary against a real running rewind (the end-to-end
//! harness: a bare GitOps repository, SQLite and PostgreSQL, rewind on a
//! loopback port): tables, `--output table|json|yaml` with the same values
//! everywhere, errors as JSON, the contract's exit codes, completions, and
//! no progress spinner when stderr is not a terminal.

use std::process::Output;

use rewind_tests::{World, databases};
use serde_json::Value;

/// Runs `rewind ARGS` (stdin closed, stderr captured: not a terminal).
async fn rewind(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .env_remove("REWIND_SERVER")
        .env_remove("REWIND_TOKEN")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("rewind runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}\n{}", stdout(out), stderr(out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_and_drives_a_running_rewind() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().expect("id").to_owned();
        let url = world.url();
        let server = ["--server", url.as_str()];

        // `apps`: a table with the config hash column; JSON and YAML carry
        // the API's values.
        let out = rewind(&[&["apps"][..], &server].concat()).await;
        assert!(out.status.success(), "{}", stderr(&out));
        let table = stdout(&out);
        let header = table.lines().next().expect("header");
        for column in [
            "APP",
            "CLUSTER",
            "CURRENT",
            "HEALTH",
            "CONFIG",
            "KNOWN-GOOD",
        ] {
            assert!(header.contains(column), "{table}");
        }
        let api_apps = world.get("/api/v1/apps").await.1;
        let hash = api_apps[0]["current"]["config_hash"]
            .as_str()
            .expect("config hash");
        let short_hash = &hash["sha256:".len()..]["sha256:".len() - 7..][..12];
        assert!(table.contains("checkout"), "{table}");
        assert!(table.contains(short_hash), "{table} lacks {short_hash}");
        let out = rewind(&[&["apps", "--output", "json"][..], &server].concat()).await;
        assert_eq!(json(&out), api_apps);
        let out = rewind(&[&["--output", "yaml", "apps"][..], &server].concat()).await;
        let yaml: Value = serde_yaml::from_slice(&out.stdout).expect("yaml");
        assert_eq!(yaml, api_apps);

        // `history`: columns as `argocd app history`, newest first.
        let out = rewind(&[&["history", "checkout"][..], &server].concat()).await;
        assert!(out.status.success(), "{}", stderr(&out));
        let table = stdout(&out);
        let lines: Vec<&str> = table.lines().collect();
        let columns: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            columns,
            ["ID", "DATE", "REVISION", "HEALTH", "CONFIG", "IMAGES"],
            "{table}"
        );
        assert!(lines[1].trim_start().starts_with('2'), "{table}");
        assert!(lines[1].contains(&world.repo.bad[..7]), "{table}");
        assert!(lines[2].contains(&world.repo.good[..7]), "{table}");
        assert!(lines[2].contains("known good"), "{table}");
        assert!(lines[1].contains("checkout:"), "images column: {table}");

        // `--output text` is still accepted, as `table`.
        let out = rewind(&[&["rollbacks", "--output", "text"][..], &server].concat()).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(&id), "{}", stdout(&out));
        let out = rewind(&[&["show", &id, "--output", "json"][..], &server].concat()).await;
        assert_eq!(json(&out)["id"], id.as_str());
        let out = rewind(&[&["show", &id][..], &server].concat()).await;
        let shown = stdout(&out);
        assert!(
            shown.contains("approvals") && shown.contains("none yet"),
            "{shown}"
        );

        // A refusal (an open rollback exists): exit 3, one line on stderr,
        // and `{error, detail}` on stdout under --output json.
        let out = rewind(&[&["undo", "checkout"][..], &server].concat()).await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(stderr(&out).starts_with("refused: "), "{}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        assert!(
            !stderr(&out).contains('⠁') && !stderr(&out).contains("building its commit"),
            "no spinner off a terminal: {}",
            stderr(&out)
        );
        let out = rewind(&[&["undo", "checkout", "--output", "json"][..], &server].concat()).await;
        assert_eq!(out.status.code(), Some(3));
        let error = json(&out);
        assert_eq!(error["exit_code"], 3, "{error}");
        assert!(
            error["detail"]
                .as_str()
                .is_some_and(|d| d.contains("open rollback")),
            "{error}"
        );

        // An error from the server: exit 1, JSON naming it.
        let missing = "01936f4e-8b2a-7c3d-9e4f-a1b2c3d4e5f6";
        let out = rewind(&[&["show", missing, "--output", "json"][..], &server].concat()).await;
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(json(&out)["error"], "not found", "{}", stdout(&out));
        // Nothing listening: exit 1, JSON too.
        let out = rewind(&["apps", "--output", "json", "--server", "http://127.0.0.1:9"]).await;
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(json(&out)["error"], "unreachable");

        // The same app by cluster: `--cluster` or `NAME@CLUSTER`.
        for args in [
            &[
                "history",
                "checkout",
                "--cluster",
                "in-cluster",
                "--output",
                "json",
            ][..],
            &["history", "checkout@in-cluster", "--output", "json"][..],
        ] {
            let out = rewind(&[args, &server].concat()).await;
            assert_eq!(json(&out).as_array().map(Vec::len), Some(2), "{args:?}");
        }
        let out = rewind(
            &[
                &["history", "checkout", "--cluster", "elsewhere"][..],
                &server,
            ]
            .concat(),
        )
        .await;
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("checkout@elsewhere"),
            "{}",
            stderr(&out)
        );
        let out = rewind(
            &[
                &["history", "checkout@in-cluster", "--cluster", "x"][..],
                &server,
            ]
            .concat(),
        )
        .await;
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

        // Merging before anyone approved: refused with exit 3, and why; an
        // override needs a reason: a usage error before any request.
        let out = rewind(&[&["merge", &id][..], &server].concat()).await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(
            stderr(&out).starts_with("refused: approvals missing"),
            "{}",
            stderr(&out)
        );
        let out = rewind(&[&["merge", &id, "--override"][..], &server].concat()).await;
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let out = rewind(&[&["show", "not-a-uuid"][..], &server].concat()).await;
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

        // `approve` drives the rollback: rewind merges it.
        let out = rewind(&[&["approve", &id, "--output", "json"][..], &server].concat()).await;
        assert!(out.status.success(), "{}", stderr(&out));
        world.settle().await;
        assert_eq!(world.rollback(&id).await["state"], "merged");

        world.finish().await;
    }
}

#[tokio::test]
async fn usage_errors_exit_2_and_are_json_when_asked() {
    let out = rewind(&["apps", "--bogus"]).await;
    assert_eq!(out.status.code(), Some(2));
    let out = rewind(&["apps", "--output", "json", "--bogus"]).await;
    assert_eq!(out.status.code(), Some(2));
    let error = json(&out);
    assert_eq!(error["error"], "usage");
    assert!(
        error["detail"]
            .as_str()
            .is_some_and(|d| d.contains("--bogus")),
        "{error}"
    );
    // An offline command: a directory that is not a repository is usage.
    let dir = tempfile::tempdir().expect("dir");
    let repo = dir.path().display().to_string();
    let out = rewind(&["hash", "--repo", &repo, "--path", "x", "--output", "json"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(json(&out)["error"], "usage");
}

#[tokio::test]
async fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_rewind()"),
        ("zsh", "#compdef rewind"),
        ("fish", "complete -c rewind"),
    ] {
        let out = rewind(&["completions", shell]).await;
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script:.300}");
        assert!(script.contains("history"), "{shell} completes subcommands");
    }
    let out = rewind(&["completions", "tcsh"]).await;
    assert_eq!(out.status.code(), Some(2));
}
