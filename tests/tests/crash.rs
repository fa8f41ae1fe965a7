//! Crash safety at every step, with real processes: `rewind serve` (the
//! `rewind-failpoints` build) is parked at a failpoint in the middle of a
//! rollback, answers a webhook with 202 while parked, and is killed with
//! SIGKILL there. A restarted process (SQLite: one replica per file) or a
//! surviving replica (PostgreSQL) finishes the rollback, and it completes
//! exactly once: one rollback, one `rewind/*` branch in the real Git
//! remote, one PR in the fake GitHub, one merge on `main`, each step once
//! on the timeline, no dead job, and the webhook answered before the crash
//! is in the ledger.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use rewind_ledger::Backend;
use rewind_ledger::testing::TestDatabase;
use rewind_tests::replica::{Replica, ReplicaConfig, eventually};
use rewind_tests::{ALERTMANAGER_TOKEN, APP, APP_PATH, ARGOCD_TOKEN, World, databases};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_rewind-failpoints");
const TOKEN: &str = "ghs_crash_token";
const FINGERPRINT: &str = "crash-fp";
/// Long enough for a loaded 2-core machine; the waits poll, so a healthy
/// run takes seconds.
const PATIENCE: Duration = Duration::from_secs(90);

/// A repository, a database, a fake GitHub, and what the test sent.
struct Scene {
    world: World,
    fake: FakeGitHub,
    http: reqwest::Client,
    history: Vec<HistoryEntry>,
    alert_start: DateTime<Utc>,
}

impl Scene {
    async fn new(db: TestDatabase) -> Scene {
        let world = World::new(db);
        let fake = FakeGitHub::start(FakeOptions::new(
            "acme",
            "gitops",
            world.repo.path.clone(),
            TOKEN,
        ))
        .await
        .expect("fake GitHub starts");
        Scene {
            world,
            fake,
            http: reqwest::Client::new(),
            history: Vec::new(),
            alert_start: Utc::now(),
        }
    }

    fn config(&self, name: &str) -> std::path::PathBuf {
        ReplicaConfig {
            database_url: self.world.db.url().to_string(),
            git_url: self.world.repo.path.clone(),
            cache_dir: self.world.path().join(format!("cache-{name}")),
            github_url: Some(self.fake.url().to_string()),
            github_token: TOKEN.into(),
            job_lease: "3s",
        }
        .write(self.world.path(), name)
    }

    async fn post(&self, url: &str, path: &str, token: &str, body: &Value) -> StatusCode {
        self.http
            .post(format!("{url}{path}"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("webhook")
            .status()
    }

    async fn get(&self, url: &str, path: &str) -> Value {
        self.http
            .get(format!("{url}{path}"))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// Argo CD reports `app` at cluster revision `id` = `commit`.
    async fn deploy(
        &mut self,
        url: &str,
        app: &str,
        id: i64,
        commit: &str,
        health: &str,
        at: DateTime<Utc>,
    ) -> StatusCode {
        let history = if app == APP {
            if !self.history.iter().any(|h| h.id == id) {
                self.history.push(HistoryEntry {
                    id,
                    revision: commit.to_string(),
                    deployed_at: at,
                });
            }
            self.history.clone()
        } else {
            vec![HistoryEntry {
                id,
                revision: commit.to_string(),
                deployed_at: at,
            }]
        };
        let body = argocd_notification(
            "on-deployed",
            app,
            &self.world.repo.path.display().to_string(),
            APP_PATH,
            &history,
            health,
        );
        self.post(url, "/webhooks/argocd", ARGOCD_TOKEN, &body)
            .await
    }

    async fn alert(&self, url: &str, status: &str) -> StatusCode {
        let body = alertmanager_notification(
            status,
            "CheckoutHighErrorRate",
            APP,
            "critical",
            "checkout 5xx ratio above 5%",
            self.alert_start,
            FINGERPRINT,
        );
        self.post(url, "/webhooks/alertmanager", ALERTMANAGER_TOKEN, &body)
            .await
    }

    /// Good (known good by now), then bad and Degraded, then the alert.
    async fn bad_deploy_and_alert(&mut self, url: &str) {
        let (good, bad) = (self.world.repo.good.clone(), self.world.repo.bad.clone());
        let t0 = Utc::now() - chrono::Duration::hours(1);
        assert_eq!(
            self.deploy(url, APP, 1, &good, "Healthy", t0).await,
            StatusCode::ACCEPTED
        );
        eventually(
            "the good deployment to become known good",
            PATIENCE,
            || async {
                let apps = self.get(url, "/api/v1/apps").await;
                apps.as_array()?
                    .iter()
                    .find(|a| a["name"] == APP)
                    .filter(|a| a["known_good"]["commit"].is_string())
                    .map(|_| ())
            },
        )
        .await;
        let at = Utc::now() - chrono::Duration::minutes(1);
        assert_eq!(
            self.deploy(url, APP, 2, &bad, "Degraded", at).await,
            StatusCode::ACCEPTED
        );
        self.alert_start = Utc::now();
        assert_eq!(self.alert(url, "firing").await, StatusCode::ACCEPTED);
    }

    async fn rollbacks(&self, url: &str) -> Vec<Value> {
        self.get(url, &format!("/api/v1/rollbacks?app={APP}"))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the app's rollback is in `state`; answers it. Panics
    /// with the rollback and the replica's log after [`PATIENCE`].
    async fn rollback_in(&self, replica: &Replica, state: &str) -> Value {
        let url = &replica.url;
        let deadline = std::time::Instant::now() + PATIENCE;
        let mut last = Value::Null;
        loop {
            if let Some(id) = self
                .rollbacks(url)
                .await
                .first()
                .and_then(|r| r["id"].as_str().map(str::to_owned))
            {
                last = self.get(url, &format!("/api/v1/rollbacks/{id}")).await;
                if last["state"] == state {
                    return last;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the rollback never became {state}: {last:#}\nlog of {}:\n{}",
                replica.name,
                replica.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Argo CD deploys the merge and reports Healthy; Alertmanager
    /// resolves the alert: verification can end.
    async fn sync_and_resolve(&mut self, url: &str, merge_commit: &str) {
        assert_eq!(
            self.deploy(url, APP, 3, merge_commit, "Healthy", Utc::now())
                .await,
            StatusCode::ACCEPTED
        );
        assert_eq!(self.alert(url, "resolved").await, StatusCode::ACCEPTED);
    }
}

fn count_events(rollback: &Value, event: &str) -> usize {
    rollback["timeline"]
        .as_array()
        .map(|t| t.iter().filter(|e| e["event"] == event).count())
        .unwrap_or(0)
}

/// Where the crash happens, and the state the rollback reaches after it.
#[derive(Debug, Clone, Copy)]
struct Step {
    failpoint: &'static str,
    /// Verification needs the merge deployed and the alert resolved first.
    verification: bool,
}

const STEPS: &[Step] = &[
    Step {
        failpoint: "propose.after_build",
        verification: false,
    },
    Step {
        failpoint: "propose.after_record",
        verification: false,
    },
    Step {
        failpoint: "advance.after_push",
        verification: false,
    },
    Step {
        failpoint: "advance.after_pr_opened",
        verification: false,
    },
    Step {
        failpoint: "advance.after_merge",
        verification: false,
    },
    Step {
        failpoint: "verify.before_verified",
        verification: true,
    },
];

async fn crash_at(db: TestDatabase, step: Step) {
    let backend = db.backend();
    let mut scene = Scene::new(db).await;
    let first_config = scene.config("first");
    let first = Replica::start(
        BINARY,
        "first",
        &first_config,
        Some(&format!("{}=1*return(hang)", step.failpoint)),
    );
    let url = first.url.clone();
    scene.bad_deploy_and_alert(&url).await;
    if step.verification {
        let merged = scene.rollback_in(&first, "merged").await;
        let merge_commit = merged["merge_commit"].as_str().expect("merge commit");
        scene.sync_and_resolve(&url, merge_commit).await;
    }
    first
        .wait_for_log(&format!("failpoint {} reached", step.failpoint), PATIENCE)
        .await;

    // Parked mid-step, still answering: this webhook is accepted before
    // the crash and must be processed after it.
    let witness = format!("witness-{}", step.failpoint.replace('.', "-"));
    let good = scene.world.repo.good.clone();
    assert_eq!(
        scene
            .deploy(&url, &witness, 1, &good, "Healthy", Utc::now())
            .await,
        StatusCode::ACCEPTED
    );

    let second_config = scene.config("second");
    let survivor = match backend {
        Backend::Sqlite => {
            // A second replica on the same SQLite file is refused, and the
            // first keeps working.
            let refused = Replica::try_start(BINARY, "second", &second_config, None)
                .expect_err("a second replica on one SQLite file is refused");
            assert_eq!(refused.status, Some(1), "{}", refused.log);
            assert!(
                refused.log.contains("in use by another rewind")
                    && refused.log.contains("PostgreSQL"),
                "{}",
                refused.log
            );
            let health = scene.http.get(format!("{url}/healthz")).send().await;
            assert_eq!(health.expect("healthz").status(), StatusCode::OK);
            first.kill9();
            Replica::start(BINARY, "second", &second_config, None)
        }
        Backend::Postgres => {
            // The other replica is up before the crash and takes over the
            // parked job when its lease runs out.
            let second = Replica::start(BINARY, "second", &second_config, None);
            first.kill9();
            second
        }
    };
    let url = survivor.url.clone();
    let done = if step.verification {
        scene.rollback_in(&survivor, "verified").await
    } else {
        let merged = scene.rollback_in(&survivor, "merged").await;
        let merge_commit = merged["merge_commit"].as_str().expect("merge commit");
        scene.sync_and_resolve(&url, merge_commit).await;
        merged
    };

    // Exactly once.
    let context = format!("{backend:?} crash at {}: {done:#}", step.failpoint);
    assert_eq!(scene.rollbacks(&url).await.len(), 1, "{context}");
    let branches = scene.world.repo.rewind_branches();
    assert_eq!(branches.len(), 1, "{context}\nbranches: {branches:?}");
    assert_eq!(
        Some(branches[0].as_str()),
        done["branch"].as_str(),
        "{context}"
    );
    let prs = scene.fake.pull_requests();
    assert_eq!(prs.len(), 1, "{context}\nPRs: {prs:#?}");
    assert!(prs[0].merged, "{context}");
    let merges_on_main = scene.world.repo.git(&[
        "rev-list",
        "--count",
        "--first-parent",
        &format!("{}..refs/heads/main", scene.world.repo.bad),
    ]);
    assert_eq!(merges_on_main, "1", "{context}");
    for event in ["proposed", "pushed", "pr_opened", "merged"] {
        assert_eq!(count_events(&done, event), 1, "{event} once: {context}");
    }
    if step.verification {
        assert_eq!(count_events(&done, "verified"), 1, "{context}");
    }
    scene.world.repo.fsck();

    // The webhook answered 202 before the crash was processed after it.
    eventually(
        "the witness app's deployment to be resolved",
        PATIENCE,
        || async {
            let apps = scene.get(&url, "/api/v1/apps").await;
            apps.as_array()?
                .iter()
                .find(|a| a["name"] == witness.as_str())
                .filter(|a| a["current"]["config_hash"].is_string())
                .map(|_| ())
        },
    )
    .await;
    let ledger = scene.world.db.connect().await;
    let dead = ledger
        .count("SELECT COUNT(*) AS n FROM jobs WHERE state = 'dead'")
        .await
        .expect("count");
    assert_eq!(dead, 0, "{context}");
    drop(survivor);
    scene.world.finish().await;
}

async fn crash_at_each(failpoints: &[&str]) {
    for step in STEPS.iter().filter(|s| failpoints.contains(&s.failpoint)) {
        // A fresh database of each backend per step.
        for db in databases().await {
            crash_at(db, *step).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_commit_is_built_proposes_once() {
    crash_at_each(&["propose.after_build"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_proposal_is_recorded_proposes_once() {
    crash_at_each(&["propose.after_record"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_push_or_the_pr_leaves_one_branch_and_one_pr() {
    crash_at_each(&["advance.after_push", "advance.after_pr_opened"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_the_merge_merges_once() {
    crash_at_each(&["advance.after_merge"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_verification_verifies_once() {
    crash_at_each(&["verify.before_verified"]).await;
}
