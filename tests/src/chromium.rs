//! Headless Chromium for the web UI tests: Debian's `chromium` driven
//! through its `chromedriver` (package `chromium-driver`) over WebDriver
//! with fantoccini, so pages are rendered, buttons pressed and forms
//! submitted by a real browser against a running rewind. Screenshots go to
//! `target/ui-screenshots/`.
//!
//! Without Chromium the tests skip with the reason; with `CI=true` they
//! fail instead.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A browser session and the chromedriver behind it (killed on drop).
pub struct Chromium {
    pub client: Client,
    driver: tokio::process::Child,
    screenshots: PathBuf,
}

impl std::fmt::Debug for Chromium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chromium")
            .field("screenshots", &self.screenshots)
            .finish_non_exhaustive()
    }
}

/// Where screenshots go: `target/ui-screenshots/` of the workspace.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots")
}

impl Chromium {
    /// Starts chromedriver and a headless Chromium, or says why not
    /// (`None`); under `CI=true` a missing browser fails the test.
    pub async fn start() -> Option<Chromium> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            let reason = format!(
                "web UI browser test skipped: {} not installed (Debian packages chromium and chromium-driver)",
                missing.join(" and ")
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{reason}; CI=true requires it");
            }
            eprintln!("{reason}");
            return None;
        }
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        // chromedriver listens within a second or two; bounded wait.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        let screenshots = screenshot_dir();
        std::fs::create_dir_all(&screenshots).expect("screenshot dir");
        Some(Chromium {
            client,
            driver,
            screenshots,
        })
    }

    /// Saves the page as `target/ui-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    pub async fn goto(&self, url: &str) -> String {
        self.client.goto(url).await.expect("page loads");
        self.source().await
    }

    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// Presses the button whose text is exactly `label` and returns the
    /// page it leads to.
    pub async fn press(&self, label: &str) -> String {
        let button = self
            .client
            .find(Locator::XPath(&format!(
                "//button[normalize-space()='{label}']"
            )))
            .await
            .unwrap_or_else(|e| panic!("no button {label:?}: {e}"));
        // A form submission's click returns before the next page is
        // there: wait until the old document's root goes stale.
        let root = self
            .client
            .find(Locator::Css("html"))
            .await
            .expect("a document");
        button.click().await.expect("click");
        for _ in 0..200 {
            if root.tag_name().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.source().await
    }

    /// Types into the input named `name`.
    pub async fn fill(&self, name: &str, text: &str) {
        let input = self
            .client
            .find(Locator::Css(&format!("input[name='{name}']")))
            .await
            .unwrap_or_else(|e| panic!("no input {name:?}: {e}"));
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    /// Chooses `value` in the select named `name`.
    pub async fn choose(&self, name: &str, value: &str) {
        self.client
            .find(Locator::Css(&format!("select[name='{name}']")))
            .await
            .unwrap_or_else(|e| panic!("no select {name:?}: {e}"))
            .select_by_value(value)
            .await
            .expect("select");
    }

    /// Signs in through the sign-in form with `token`.
    pub async fn sign_in(&self, base: &str, token: &str) -> String {
        self.client.delete_all_cookies().await.expect("cookies");
        self.goto(&format!("{base}/ui/login")).await;
        self.fill("token", token).await;
        self.press("Sign in").await
    }

    pub async fn finish(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}
