//! Git catches up with a rollback Flagger or Argo Rollouts did in the
//! cluster (`policy.catch_up = "propose"`).
//!
//! Neither sender names a Git revision: Flagger sends the canary's name and
//! the checksum of the spec it refused, Argo Rollouts the Rollout with the
//! images it refused and the stable ReplicaSet's pod-template hash. What
//! ties them to the ledger is the app (the sender's `app`, else the
//! workload's `namespace/name`) on its cluster, and time:
//!
//! - the refused version is what Git says now: the app's current (newest)
//!   deployment, the one whose sync started the canary;
//! - the version the cluster went back to (Flagger's primary, Argo
//!   Rollouts' stable ReplicaSet) is the newest earlier deployment of that
//!   app that ran another commit; when the sender names the refused images
//!   and rewind knows the deployments' images, it must not run them.
//!
//! Whenever that cannot be told (an app rewind does not know, a cluster it
//! cannot choose, no earlier deployment, refused images the current
//! deployment does not run, a report about a deployment Git has since moved
//! past), nothing is proposed and an audit entry `catch_up.skipped` says
//! why, with the report's id. A proposal the policy refuses (a lock, an
//! open rollback, a breaker) is audited by `propose` as any other.

use rewind_domain::{AppRef, ClusterName, ClusterRolledBack, Deployment, Trigger};
use serde_json::json;

use crate::propose::ProposeRequest;
use crate::{Engine, EngineError};

/// Why a report cannot become a proposal: a code and one sentence.
struct Skip {
    code: &'static str,
    reason: String,
}

fn skip(code: &'static str, reason: String) -> Skip {
    Skip { code, reason }
}

impl Engine {
    /// The job of one recorded in-cluster rollback: propose that Git says
    /// what the cluster runs, or record why not. Safe to run twice: a
    /// second proposal meets the first (one open rollback per app).
    #[tracing::instrument(skip_all, fields(cluster_rollback.id = id))]
    pub async fn cluster_rolled_back(&self, id: i64) -> Result<(), EngineError> {
        if self.settings.policy.catch_up != rewind_config::CatchUp::Propose {
            return Ok(());
        }
        let Some(stored) = self.ledger.cluster_rollback(id).await? else {
            return Ok(());
        };
        let report = stored.rollback;
        let (app, target) = match self.catch_up_target(&report).await? {
            Ok(found) => found,
            Err(Skip { code, reason }) => {
                return self
                    .audit(
                        report.sender.as_str(),
                        "catch_up.skipped",
                        format!("app/{}", report_subject(&report)),
                        json!({
                            "code": code,
                            "reason": reason,
                            "cluster_rollback": id,
                            "workload": format!("{}/{}", report.namespace, report.workload),
                        }),
                    )
                    .await;
            }
        };
        if self.held_after_failed_rollback(&app).await? {
            return self
                .audit(
                    report.sender.as_str(),
                    "catch_up.skipped",
                    format!("app/{app}"),
                    json!({
                        "code": "held",
                        "reason": format!("{app} is held after a failed rollback: no automatic proposal until a person releases it"),
                        "cluster_rollback": id,
                    }),
                )
                .await;
        }
        let detail = describe(&report, &app, &target);
        let request = ProposeRequest {
            to_revision: Some(target.cluster_revision),
            reason: format!("rolled back in the cluster: {detail}"),
            ..ProposeRequest::default()
        };
        match self
            .propose(
                &app,
                request,
                Trigger::Drift { detail },
                report.sender.as_str(),
            )
            .await
        {
            // Refusals are audited by `propose`.
            Ok(_) | Err(EngineError::Refused(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The app the report is about and the deployment the cluster went
    /// back to, or why rewind cannot tell.
    async fn catch_up_target(
        &self,
        report: &ClusterRolledBack,
    ) -> Result<Result<(AppRef, Deployment), Skip>, EngineError> {
        let app = if report.cluster.is_empty() {
            let clusters = self.ledger.app_clusters(&report.app).await?;
            match clusters.as_slice() {
                [only] => AppRef::new(report.app.clone(), only.clone()),
                [] => {
                    return Ok(Err(skip(
                        "unknown-app",
                        format!(
                            "no app {} is known on any cluster: set the sender's `app` (and `cluster`) to the Argo CD Application or Flux Kustomization that deploys {}",
                            report.app, report.workload
                        ),
                    )));
                }
                several => {
                    let names: Vec<&str> = several.iter().map(ClusterName::as_str).collect();
                    return Ok(Err(skip(
                        "ambiguous-cluster",
                        format!(
                            "{} runs on {} and the report names no cluster: set `cluster` in the sender's metadata or URL",
                            report.app,
                            names.join(", ")
                        ),
                    )));
                }
            }
        } else {
            match ClusterName::new(report.cluster.as_str()) {
                Ok(cluster) => AppRef::new(report.app.clone(), cluster),
                Err(e) => {
                    return Ok(Err(skip(
                        "unknown-app",
                        format!(
                            "the report's cluster {:?} is not a cluster name: {e}",
                            report.cluster
                        ),
                    )));
                }
            }
        };
        let Some(known) = self.ledger.get_app(&app).await? else {
            return Ok(Err(skip(
                "unknown-app",
                format!(
                    "no app {app} is known: set the sender's `app` (and `cluster`) to the Argo CD Application or Flux Kustomization that deploys {}",
                    report.workload
                ),
            )));
        };
        if !known.rollbackable {
            return Ok(Err(skip(
                "not-rollbackable",
                format!(
                    "{app} cannot be rolled back: {}",
                    known
                        .status
                        .as_deref()
                        .unwrap_or("it syncs from another repository")
                ),
            )));
        }
        let history = self.ledger.history(&app, 50).await?;
        let Some(current) = history.first() else {
            return Ok(Err(skip(
                "no-deployment",
                format!("{app} has no recorded deployment to catch up from"),
            )));
        };
        if report.at < current.deployed_at {
            return Ok(Err(skip(
                "stale-report",
                format!(
                    "the cluster rolled back at {}, before {app}'s current deployment (cluster revision {}, {}): Git has moved on since",
                    report.at.to_rfc3339(),
                    current.cluster_revision,
                    current.deployed_at.to_rfc3339()
                ),
            )));
        }
        let refused = &report.rejected_images;
        let runs_all = |d: &Deployment| refused.iter().all(|image| d.images.contains(image));
        if !refused.is_empty() && !current.images.is_empty() && !runs_all(current) {
            return Ok(Err(skip(
                "unknown-revision",
                format!(
                    "the cluster refused {}, which {app}'s current deployment (cluster revision {}) does not run: which Git revision the cluster went back to cannot be told",
                    refused.join(", "),
                    current.cluster_revision
                ),
            )));
        }
        let earlier = history[1..].iter().find(|d| {
            d.commit.is_some()
                && d.commit != current.commit
                && (refused.is_empty() || d.images.is_empty() || !runs_all(d))
        });
        match earlier {
            Some(target) => Ok(Ok((app, target.clone()))),
            None => Ok(Err(skip(
                "unknown-revision",
                format!(
                    "{app} has no earlier deployment with another commit than cluster revision {}'s: what the cluster went back to is not in rewind's history",
                    current.cluster_revision
                ),
            ))),
        }
    }
}

/// `NAME@CLUSTER`, or the bare name when the report names no cluster.
fn report_subject(report: &ClusterRolledBack) -> String {
    if report.cluster.is_empty() {
        report.app.to_string()
    } else {
        format!("{}@{}", report.app, report.cluster)
    }
}

/// What happened in the cluster and when, for the trigger and the PR:
/// sender, object, the sender's words, time, and what Git will say.
fn describe(report: &ClusterRolledBack, app: &AppRef, target: &Deployment) -> String {
    let sender = match report.sender {
        rewind_domain::RollbackSender::Flagger => "Flagger rolled back",
        rewind_domain::RollbackSender::ArgoRollouts => "Argo Rollouts aborted",
    };
    let refused = if report.rejected_images.is_empty() {
        report
            .rejected_revision
            .as_deref()
            .map(|r| format!(", refusing revision {r}"))
            .unwrap_or_default()
    } else {
        format!(", refusing {}", report.rejected_images.join(", "))
    };
    format!(
        "{sender} {}/{} on cluster {} at {}{refused} (\"{}\"); {app} goes back to cluster revision {} (commit {}), the version the cluster returned to",
        report.namespace,
        report.workload,
        app.cluster,
        report.at.to_rfc3339(),
        report.message,
        target.cluster_revision,
        target.commit.as_ref().map_or("-", |c| c.short()),
    )
}
