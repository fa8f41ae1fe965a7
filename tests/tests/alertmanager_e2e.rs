//! A real Alertmanager (Debian's `prometheus-alertmanager`, bound to
//! loopback) delivers an alert to a running rewind, which proposes the
//! rollback. Installed by `.ci/run`; skipped with a message elsewhere
//! unless `CI` is set, where its absence fails.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Duration as ChronoDuration, Utc};
use rewind_tests::{ALERTMANAGER_TOKEN, World, databases};
use serde_json::json;

const BINARY: &str = "prometheus-alertmanager";

struct Alertmanager(Child);

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn installed() -> bool {
    Command::new(BINARY)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_delivers_an_alert_that_opens_a_rollback() {
    if !installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{BINARY} is not installed in CI"
        );
        eprintln!("skipping: {BINARY} is not installed (apt-get install prometheus-alertmanager)");
        return;
    }
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        world
            .deploy_at(1, &good, "Healthy", Utc::now() - ChronoDuration::hours(1))
            .await;
        world.tick(Utc::now()).await;
        world.deploy(2, &bad, "Degraded").await;

        let port = free_port();
        let dir = world.path().join("alertmanager");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: rewind\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: rewind\n    webhook_configs:\n      - url: '{}/webhooks/alertmanager'\n        send_resolved: true\n\
                 \x20       http_config:\n          authorization:\n            type: Bearer\n            credentials: '{ALERTMANAGER_TOKEN}'\n",
                world.url()
            ),
        )
        .unwrap();
        let _alertmanager = Alertmanager(
            Command::new(BINARY)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("alertmanager starts"),
        );
        let api = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while world
            .client
            .get(format!("{api}/-/ready"))
            .send()
            .await
            .map(|r| r.status().is_success())
            .ok()
            != Some(true)
        {
            assert!(Instant::now() < deadline, "alertmanager never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let alert = json!([{
            "labels": {"alertname": "CheckoutHighErrorRate", "app": "checkout", "severity": "critical"},
            "annotations": {"summary": "checkout 5xx ratio above 5%"},
            "startsAt": Utc::now().to_rfc3339(),
            "generatorURL": "http://prometheus.example/graph"
        }]);
        let response = world
            .client
            .post(format!("{api}/api/v2/alerts"))
            .json(&alert)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );

        // Alertmanager delivers after group_wait; rewind's jobs run as the
        // deliveries arrive.
        let deadline = Instant::now() + Duration::from_secs(60);
        let rollbacks = loop {
            world.settle().await;
            let rollbacks = world.rollbacks().await;
            if !rollbacks.is_empty() {
                break rollbacks;
            }
            assert!(
                Instant::now() < deadline,
                "no rollback after Alertmanager's delivery"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(rollbacks.len(), 1);
        assert_eq!(
            rollbacks[0]["trigger"]["alert_name"],
            "CheckoutHighErrorRate"
        );
        assert!(
            rollbacks[0]["reason"]
                .as_str()
                .unwrap()
                .contains("checkout 5xx ratio")
        );
        drop(_alertmanager);
        world.finish().await;
    }
}
