//! Has the rollback reached the cluster? Its merge (or a descendant) is the
//! commit the cluster deployed, and, where the controller reports what runs
//! (Argo CD `status.summary.images`), the target's images are running and
//! none the rollback removed still is. Only then does the rollback become
//! `synced` and the verification clock start: checks evaluated against the
//! old pods would prove nothing. Flux reports no images: there the commit
//! alone counts.

use chrono::Utc;
use rewind_domain::{CommitId, Deployment, Rollback, RollbackState, TimelineEvent};
use rewind_git::GitError;

use crate::timeline::entry;
use crate::{Engine, EngineError};

/// Timeline event while the commit is deployed but the images are not yet.
const WAITING_FOR_IMAGES: &str = "waiting_for_images";

/// What the running images say, against the target's.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Images {
    /// The target's images run (or nothing is known to compare).
    Ready,
    /// Still waiting: says for what.
    Waiting(String),
}

/// The target's images must all be running; an image of the rolled-back
/// deployment that the target does not have must be gone. Images the
/// controller reports beyond those (sidecars) do not matter.
pub(crate) fn compare_images(
    target: &[String],
    rolled_back: &[String],
    running: Option<&[String]>,
) -> Images {
    let Some(running) = running else {
        return Images::Ready;
    };
    if target.is_empty() {
        return Images::Ready;
    }
    let missing: Vec<&str> = target
        .iter()
        .filter(|i| !running.contains(i))
        .map(String::as_str)
        .collect();
    let lingering: Vec<&str> = rolled_back
        .iter()
        .filter(|i| !target.contains(i) && running.contains(i))
        .map(String::as_str)
        .collect();
    if missing.is_empty() && lingering.is_empty() {
        return Images::Ready;
    }
    let mut why = Vec::new();
    if !missing.is_empty() {
        why.push(format!(
            "the target's {} not running yet",
            missing.join(", ")
        ));
    }
    if !lingering.is_empty() {
        why.push(format!("{} still running", lingering.join(", ")));
    }
    Images::Waiting(format!(
        "Argo CD reports {} running: {}; the verification clock starts when the target's images run",
        if running.is_empty() {
            "no images".to_string()
        } else {
            running.join(", ")
        },
        why.join(", ")
    ))
}

impl Engine {
    /// Whether the deployed `commit` contains `merge`. The cluster may
    /// report a commit pushed seconds ago that no fetch has brought to the
    /// cache yet (the clock runs before the deployment's resolve job): then
    /// fetch once; a commit the remote does not have either, or a fetch
    /// that fails, is "not yet", and a later report or tick asks again.
    async fn contains(&self, commit: &CommitId, merge: &CommitId) -> Result<bool, EngineError> {
        match self.git.is_ancestor(merge, commit).await {
            Err(GitError::CommitNotFound(_)) => {}
            answer => return Ok(answer?),
        }
        if let Err(e) = self.git.fetch().await {
            tracing::info!(commit.sha = %commit, error = %e, "deployed commit not in the cache, and the fetch failed");
            return Ok(false);
        }
        match self.git.is_ancestor(merge, commit).await {
            Err(GitError::CommitNotFound(missing)) => {
                tracing::debug!(commit.sha = %missing, "deployed commit not on the remote's fetched branches");
                Ok(false)
            }
            answer => Ok(answer?),
        }
    }

    /// merged → synced when `deployment` contains the merge and runs the
    /// target's images; otherwise, when only the images are behind, says
    /// so on the timeline (once per distinct wait).
    pub(crate) async fn sync_if_deployed(
        &self,
        rollback: &Rollback,
        deployment: &Deployment,
    ) -> Result<(), EngineError> {
        if rollback.state != RollbackState::Merged {
            return Ok(());
        }
        let (Some(merge), Some(commit)) = (&rollback.merge_commit, &deployment.commit) else {
            return Ok(());
        };
        if merge != commit && !self.contains(commit, merge).await? {
            return Ok(());
        }
        let running = self.ledger.running_images(deployment.id).await?;
        let images = compare_images(
            &rollback.to.images,
            &rollback.from.images,
            running.as_deref(),
        );
        if let Images::Waiting(why) = images {
            let said = rollback
                .timeline
                .iter()
                .rev()
                .find(|e| e.event.as_str() == WAITING_FOR_IMAGES)
                .is_some_and(|e| e.detail.ends_with(&why));
            if !said {
                let detail = format!(
                    "{} deployed cluster revision {} at {}, which contains the rollback; {why}",
                    deployment.source,
                    deployment.cluster_revision,
                    commit.short()
                );
                self.ledger
                    .append_timeline(rollback.id, entry(WAITING_FOR_IMAGES, detail, Utc::now()))
                    .await?;
            }
            return Ok(());
        }
        let running_said = match running.as_deref() {
            Some(images) if !images.is_empty() => {
                format!(", running {}", images.join(", "))
            }
            _ => String::new(),
        };
        self.ledger
            .transition_rollback(
                rollback.id,
                RollbackState::Merged,
                RollbackState::Synced,
                entry(
                    TimelineEvent::Synced,
                    format!(
                        "{} deployed cluster revision {} at {}, which contains the rollback{running_said}; verifying for {}",
                        deployment.source,
                        deployment.cluster_revision,
                        commit.short(),
                        self.settings.policy.verify_for
                    ),
                    Utc::now(),
                ),
            )
            .await?;
        self.refresh_pull_request(rollback).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(images: &[&str]) -> Vec<String> {
        images.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn the_targets_images_must_run_and_the_removed_ones_be_gone() {
        let target = v(&["shop/checkout:v1.4.1"]);
        let bad = v(&["shop/checkout:v1.4.2"]);
        assert_eq!(compare_images(&target, &bad, None), Images::Ready);
        let ready = v(&["shop/checkout:v1.4.1", "istio/proxyv2:1.20"]);
        assert_eq!(compare_images(&target, &bad, Some(&ready)), Images::Ready);
        let Images::Waiting(why) = compare_images(&target, &bad, Some(&bad)) else {
            panic!("the old image still runs");
        };
        assert!(
            why.contains("shop/checkout:v1.4.1 not running yet"),
            "{why}"
        );
        assert!(why.contains("shop/checkout:v1.4.2 still running"), "{why}");
        let both = v(&["shop/checkout:v1.4.1", "shop/checkout:v1.4.2"]);
        let Images::Waiting(why) = compare_images(&target, &bad, Some(&both)) else {
            panic!("mid-rollout");
        };
        assert!(!why.contains("not running yet"), "{why}");
    }
}
