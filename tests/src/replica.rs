//! `rewind serve` as real child processes, for the crash and replica tests:
//! a configuration file written for one [`crate::World`]'s repository and
//! database, replicas started from a binary the test names (the
//! `rewind-failpoints` build, `CARGO_BIN_EXE_rewind-failpoints`), their log
//! read line by line, and `kill -9`.
//!
//! Nothing here sleeps to let things happen: every wait polls for the
//! condition it needs, with a deadline that fails the test with the log.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{ALERTMANAGER_TOKEN, ARGOCD_TOKEN, GITHUB_SECRET};

/// What a replica's configuration file says beyond the test defaults.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub database_url: String,
    pub git_url: PathBuf,
    /// Each replica has its own repository cache, as pods do.
    pub cache_dir: PathBuf,
    /// The fake GitHub's URL (owner `acme`, repository `gitops`).
    pub github_url: Option<String>,
    pub github_token: String,
    /// Short, so a killed replica's jobs are taken over within seconds.
    pub job_lease: &'static str,
}

impl ReplicaConfig {
    /// The TOML file: auto-merge on (no reviews to wait for), short
    /// known-good and verification windows, the harness's webhook secrets.
    pub fn toml(&self) -> String {
        let forge = match &self.github_url {
            Some(url) => format!(
                "kind = \"github\"\napi_url = \"{url}\"\nowner = \"acme\"\nrepo = \"gitops\"\n\
                 token = \"{}\"\nwebhook_secret = \"{GITHUB_SECRET}\"\nmax_wait = \"5s\"\n",
                self.github_token
            ),
            None => "kind = \"local\"\n".to_string(),
        };
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://rewind.test\"\nshutdown_grace = \"2s\"\n\
             [database]\nurl = \"{db}\"\njob_lease = \"{lease}\"\n\
             [git]\nurl = \"{git}\"\ncache_dir = \"{cache}\"\n\
             [forge]\n{forge}\
             [webhooks]\nargocd_token = \"{ARGOCD_TOKEN}\"\nalertmanager_token = \"{ALERTMANAGER_TOKEN}\"\n\
             [policy]\nauto_merge = \"always\"\nhealthy_for = \"1s\"\nverify_for = \"1s\"\n\
             max_rollbacks_per_hour = 100\n",
            db = self.database_url,
            lease = self.job_lease,
            git = self.git_url.display(),
            cache = self.cache_dir.display(),
        )
    }

    /// Writes the file as `dir/NAME.toml`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, self.toml()).expect("write replica config");
        path
    }
}

/// The lines a child wrote on stderr (its log), shared with the thread
/// that reads them.
#[derive(Debug, Default)]
struct Log {
    lines: Mutex<Vec<String>>,
}

impl Log {
    fn text(&self) -> String {
        self.lines.lock().expect("log lock").join("\n")
    }

    fn contains(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .expect("log lock")
            .iter()
            .any(|line| line.contains(needle))
    }
}

/// One `rewind serve` child; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Replica {
    pub name: String,
    pub url: String,
    child: Child,
    log: Arc<Log>,
}

/// Why a replica did not come up: its exit status and log.
#[derive(Debug)]
pub struct StartFailure {
    pub status: Option<i32>,
    pub log: String,
}

impl Replica {
    /// Starts `binary serve --config CONFIG`, with `FAILPOINTS` when given,
    /// and waits for the line announcing its URL (the listener is bound
    /// before it).
    pub fn start(binary: &str, name: &str, config: &Path, failpoints: Option<&str>) -> Replica {
        match Replica::try_start(binary, name, config, failpoints) {
            Ok(replica) => replica,
            Err(failure) => panic!(
                "replica {name} did not start (exit {:?}):\n{}",
                failure.status, failure.log
            ),
        }
    }

    /// [`Replica::start`], answering the exit status and log of a replica
    /// that stopped before serving.
    pub fn try_start(
        binary: &str,
        name: &str,
        config: &Path,
        failpoints: Option<&str>,
    ) -> Result<Replica, StartFailure> {
        Replica::start_watched(
            binary,
            name,
            config,
            failpoints,
            Duration::from_secs(60),
            |_| {},
        )
    }

    /// [`Replica::try_start`], waiting up to `patience` for it to serve
    /// (the fleet benches' first fetch clones a large repository) and
    /// calling `on_spawn` with the child's pid as soon as it exists (they
    /// watch its memory from the start).
    pub fn start_watched(
        binary: &str,
        name: &str,
        config: &Path,
        failpoints: Option<&str>,
        patience: Duration,
        on_spawn: impl FnOnce(u32),
    ) -> Result<Replica, StartFailure> {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("REWIND_CONFIG")
            .env_remove("FAILPOINTS")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(spec) = failpoints {
            command.env("FAILPOINTS", spec);
        }
        let mut child = command.spawn().expect("spawn rewind serve");
        on_spawn(child.id());
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Log::default());
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let reader_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("server.url=").nth(1) {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .trim_matches('"');
                    let _ = url_tx.send(url.to_string());
                }
                reader_log.lines.lock().expect("log lock").push(line);
            }
        });
        let deadline = Instant::now() + patience;
        loop {
            if let Ok(url) = url_rx.recv_timeout(Duration::from_millis(50)) {
                return Ok(Replica {
                    name: name.to_string(),
                    url,
                    child,
                    log,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                // Let the reader take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return Err(StartFailure {
                    status: status.code(),
                    log: log.text(),
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartFailure {
                    status: None,
                    log: log.text(),
                });
            }
        }
    }

    /// The child's process id (for /proc readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many lines it logged so far.
    pub fn log_len(&self) -> usize {
        self.log.lines.lock().expect("log lock").len()
    }

    /// The lines logged from index `from` on.
    pub fn log_since(&self, from: usize) -> Vec<String> {
        let lines = self.log.lines.lock().expect("log lock");
        lines
            .get(from..)
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Waits until a log line contains `needle`; panics with the log after
    /// `timeout`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log.contains(needle) {
            assert!(
                Instant::now() < deadline,
                "replica {} never logged {needle:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -9`: nothing finishes, nothing is released.
    pub fn kill9(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        // `Child::kill` is SIGKILL on Unix.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// Polls `probe` every 100 ms until it answers `Some`, or panics with
/// `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
