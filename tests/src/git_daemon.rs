//! A real Git server for fault tests: `git daemon` serving the bare
//! repositories under one directory over `git://` on a loopback port, with
//! pushes enabled. Unlike libgit2's `file://` transport, pushes go through
//! `git receive-pack`, so the repository's `pre-receive` hook runs and can
//! refuse them, and stopping the daemon makes the remote unreachable
//! (connection refused) until it is started again on the same port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct GitDaemon {
    base: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl GitDaemon {
    /// Serves every repository under `base` (as `git://127.0.0.1:PORT/NAME`).
    pub async fn start(base: &Path) -> GitDaemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut daemon = GitDaemon {
            base: base.to_path_buf(),
            port,
            child: None,
        };
        daemon.resume().await;
        daemon
    }

    /// The URL of the repository `name` under the base directory.
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }

    /// Stops the server: connections to its port are refused.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, and waits until it accepts.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "git daemon already running");
        // `git daemon` would run `git-daemon` as a child of its own, which
        // a kill of `git` leaves listening: start the server itself.
        let child = Command::new(daemon_binary())
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--enable=receive-pack")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!("--base-path={}", self.base.display()))
            .arg(&self.base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git-daemon starts (it comes with git)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "git daemon does not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `git-daemon` in git's exec path (`git --exec-path`).
fn daemon_binary() -> PathBuf {
    let output = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git is installed");
    assert!(output.status.success(), "git --exec-path failed");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("git-daemon")
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Installs a `pre-receive` hook in the bare repository at `repo` that
/// refuses every push with `message` (as branch protection or a policy
/// check on a Git host does).
pub fn refuse_pushes(repo: &Path, message: &str) {
    use std::os::unix::fs::PermissionsExt;
    let hook = repo.join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().expect("hooks dir")).expect("hooks dir");
    std::fs::write(&hook, format!("#!/bin/sh\necho '{message}' >&2\nexit 1\n"))
        .expect("write hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod hook");
}

/// Removes the hook: pushes are accepted again.
pub fn accept_pushes(repo: &Path) {
    let _ = std::fs::remove_file(repo.join("hooks/pre-receive"));
}
