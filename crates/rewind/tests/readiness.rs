//! Readiness as Kubernetes sees it, through the real binary: `rewind serve`
//! on a new, empty GitOps repository is ready (it can record webhooks; Git
//! is only reported), a database that cannot take writes makes it not ready
//! without an ERROR line per probe, and `rewind healthcheck` exits 0 exactly
//! when `/readyz` answers 200.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rewind() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rewind"));
    command.env_remove("REWIND_CONFIG").env("RUST_LOG", "info");
    command
}

mod served;

/// `rewind serve` at info level, as production runs it: the probes'
/// log level is what is under test.
fn serve(config: &Path, dir: &Path) -> served::Served {
    served::serve(config, dir, &[], &[("RUST_LOG", "info")])
}

fn get(url: &str) -> (u16, serde_json::Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::get(url).await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    })
}

fn healthcheck(url: &str) -> std::process::Output {
    rewind()
        .args(["healthcheck", "--url", url])
        .output()
        .unwrap()
}

fn write_config(dir: &Path, git_url: &Path) -> std::path::PathBuf {
    let config = dir.join("rewind.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://data/rewind.db\"\n[git]\nurl = \"{}\"\ncache_dir = \"cache\"\n",
            git_url.display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn serve_on_a_new_empty_repository_is_ready_and_healthcheck_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // What a platform team starts with: `git init --bare`, no commit yet.
    let remote = dir.path().join("empty.git");
    git2::Repository::init_bare(&remote).unwrap();
    let config = write_config(dir.path(), &remote);
    let served = serve(&config, dir.path());

    let (status, body) = get(&format!("{}/readyz", served.url));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["required"], serde_json::json!(["database"]), "{body}");
    let repository = body["checks"]["repository"].as_str().unwrap_or_default();
    assert!(
        repository.contains("main"),
        "the repository line says the branch is missing: {body}"
    );
    assert_eq!(body["forge"], "local", "{body}");

    let (_, metrics) = get(&format!("{}/metrics", served.url));
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("rewind_readiness_check{check=\"repository\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rewind_readiness_check{check=\"database\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("rewind_ready 1"), "{metrics}");

    let output = healthcheck(&served.url);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = healthcheck(&format!("{}/readyz", served.url));
    assert_eq!(output.status.code(), Some(0));
    served.stop();

    // As the image's HEALTHCHECK runs it: no --url, the port from
    // server.listen of REWIND_CONFIG.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    std::fs::write(&config, text).unwrap();
    let served = serve(&config, dir.path());
    let output = rewind()
        .arg("healthcheck")
        .env("REWIND_CONFIG", &config)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&format!("127.0.0.1:{port}/readyz")),
        "{output:?}"
    );
    served.stop();

    // Nothing listening: not healthy, with the reason on stderr.
    let output = healthcheck("http://127.0.0.1:1");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot reach"),
        "{output:?}"
    );
}

/// Another process holds SQLite's write lock: no webhook could be recorded,
/// so `/readyz` is 503 and `rewind healthcheck` fails; once it lets go,
/// both recover. Probes never log at ERROR.
#[test]
fn a_database_that_cannot_take_writes_is_not_ready_and_probes_log_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("gitops.git");
    let config = write_config(dir.path(), &remote);
    let served = serve(&config, dir.path());
    let (status, body) = get(&format!("{}/readyz", served.url));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["repository"], "ok", "{body}");

    let mut locker = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n",
        )
        .arg(dir.path().join("data/rewind.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut ack = String::new();
    BufReader::new(locker.stdout.take().unwrap())
        .read_line(&mut ack)
        .unwrap();
    assert_eq!(ack.trim(), "locked");

    for _ in 0..3 {
        let (status, body) = get(&format!("{}/readyz", served.url));
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "not ready", "{body}");
        assert_ne!(body["checks"]["database"], "ok", "{body}");
    }
    let output = healthcheck(&served.url);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("503"),
        "{output:?}"
    );

    // Closing its stdin ends the locker, which releases the lock.
    locker.stdin.take().unwrap().write_all(b"").unwrap();
    locker.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(&format!("{}/readyz", served.url));
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(healthcheck(&served.url).status.code(), Some(0));

    let log = served.stop();
    let probe_errors: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("ERROR") && line.contains("readyz"))
        .collect();
    assert!(probe_errors.is_empty(), "{probe_errors:#?}");
}
