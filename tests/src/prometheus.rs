//! A real Prometheus (Debian's `prometheus` package, `/usr/bin/prometheus`)
//! started on a free loopback port with a temporary config and storage,
//! scraping every second a tiny exporter the test serves on loopback and
//! whose values the test sets.
//!
//! Without the binary a test skips with the reason, except under `CI`,
//! where a missing Prometheus fails the test (CI installs it).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;

/// Where the binary is: `$PROMETHEUS_BIN`, else Debian's path.
pub fn binary() -> PathBuf {
    std::env::var_os("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"))
}

/// `true` when Prometheus can run here. Without it: prints why the test
/// skips, or panics under `CI`.
pub fn available(test: &str) -> bool {
    let bin = binary();
    if bin.exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test}: {} is missing and CI is set: install Debian's `prometheus` package",
            bin.display()
        );
    }
    eprintln!(
        "SKIP {test}: {} is missing (apt-get install prometheus)",
        bin.display()
    );
    false
}

/// The metrics a test serves, as `name{labels}` → value.
#[derive(Debug, Clone, Default)]
pub struct Exporter {
    values: Arc<Mutex<BTreeMap<String, f64>>>,
    pub addr: Option<SocketAddr>,
}

impl Exporter {
    /// Starts serving `/metrics` on a loopback port.
    pub async fn start() -> Exporter {
        let mut exporter = Exporter::default();
        let values = exporter.values.clone();
        let app = axum::Router::new().route(
            "/metrics",
            get(move || {
                let values = values.clone();
                async move {
                    let values = values.lock().expect("lock");
                    let mut text = String::new();
                    for (series, value) in values.iter() {
                        text.push_str(&format!("{series} {value}\n"));
                    }
                    text
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind exporter");
        exporter.addr = Some(listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        exporter
    }

    /// Sets one series, e.g. `set("app_error_ratio{app=\"checkout\"}", 0.2)`.
    pub fn set(&self, series: &str, value: f64) {
        self.values
            .lock()
            .expect("lock")
            .insert(series.to_string(), value);
    }
}

/// A Prometheus process; killed when dropped.
#[derive(Debug)]
pub struct Prometheus {
    child: Option<Child>,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `exporter` every second and waits until
    /// it is ready.
    pub async fn start(exporter: &Exporter) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = exporter.addr.expect("exporter started");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("config");
        let port = free_port();
        let child = Command::new(binary())
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        prometheus.wait_ready().await;
        prometheus
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{}/-/ready", self.url)).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "Prometheus did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until `query` answers `expected` (the scrape after a change
    /// has landed); panics after 20 s.
    pub async fn wait_for(&self, query: &str, expected: f64) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(value) = instant(&client, &self.url, query).await
                && (value - expected).abs() < 1e-9
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus never answered {expected} to {query}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops Prometheus (to test an outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn instant(client: &reqwest::Client, url: &str, query: &str) -> Option<f64> {
    let body: serde_json::Value = client
        .get(format!("{url}/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
