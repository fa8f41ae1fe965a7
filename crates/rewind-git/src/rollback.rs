//! What a caller asks for and what it gets back: the rollback request, the
//! built commit, and the commit message with its trailers.

use rewind_domain::{
    AppName, AppRef, ClusterName, CommitId, ConfigHash, RollbackId, Strategy, branch_slug, text,
};

/// Bring `app` back to commit `to`, on top of the current head of
/// `git.branch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackRequest {
    pub rollback_id: RollbackId,
    pub app: AppName,
    /// The app's cluster: messages name the app as `NAME@CLUSTER`.
    pub cluster: ClusterName,
    /// The app's path in the repository (`apps/checkout/overlays/prod`).
    pub app_path: String,
    /// The commit the cluster runs now (for the message and trailers).
    pub from: CommitId,
    /// The known-good commit to go back to.
    pub to: CommitId,
    /// The cluster's revision of the target, for the subject line.
    pub to_cluster_revision: Option<i64>,
    /// Why: shown in the commit body.
    pub reason: String,
    pub strategy: Strategy,
    /// When a revert conflicts, restore instead of failing.
    pub allow_restore_fallback: bool,
    /// The target's config hash as the ledger recorded it; computed from
    /// the target commit when absent.
    pub target_config_hash: Option<ConfigHash>,
}

impl RollbackRequest {
    /// The app on its cluster, as messages name it.
    pub fn app_ref(&self) -> AppRef {
        AppRef::new(self.app.clone(), self.cluster.clone())
    }
}

/// The result of building a rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutcome {
    /// A new commit, on no branch yet: push it with
    /// [`crate::GitRepo::push_rollback`].
    Commit(BuiltCommit),
    /// The app's inputs already are as at the target: nothing to commit.
    AlreadyOnTarget,
}

/// A rollback commit written to the cache (not yet pushed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltCommit {
    pub commit: CommitId,
    /// The head of `git.branch` it was built on.
    pub parent: CommitId,
    /// Its tree id (hex).
    pub tree: String,
    /// Every file path (blobs, links) that differs from the parent, sorted.
    pub changed_paths: Vec<String>,
    /// The changed paths outside the app's own path: inputs other apps may
    /// read too (the caller names those apps in a `shared-change` risk).
    pub shared_paths: Vec<String>,
    /// What was done: `Revert`, or `Restore` (asked for, or the fallback
    /// after a conflicting revert).
    pub strategy_used: Strategy,
    /// For a revert, the commits reverted, newest first.
    pub reverted: Vec<CommitId>,
    /// When a revert conflicted and restore was used instead: the files
    /// that conflicted.
    pub revert_conflicts: Vec<String>,
    /// The target's config hash, as written in `Rewind-Config-Hash`.
    pub config_hash: Option<ConfigHash>,
    /// Symbolic links pointing outside the repository that the rollback
    /// would have brought back, and did not: each stays as on head (or
    /// absent).
    pub dropped_links: Vec<String>,
}

/// The branch a rollback is proposed on: `rewind/<app-slug>/<rollback-id>`.
pub fn rollback_branch(app: &AppName, id: &RollbackId) -> String {
    format!("rewind/{}/{}", branch_slug(app), id)
}

/// The branch of rebuild `attempt` (1, 2, ...) of a rollback, when the
/// forge would not merge the first: derived from the rollback id, so a
/// retried attempt finds its own branch instead of minting another.
pub fn rebuild_branch(app: &AppName, id: &RollbackId, attempt: u32) -> String {
    format!("{}-rebuild-{attempt}", rollback_branch(app, id))
}

/// The commit message: subject, why, what, then the trailers, which are the
/// last paragraph so `git interpret-trailers` finds them.
pub(crate) fn commit_message(
    req: &RollbackRequest,
    strategy_used: Strategy,
    config_hash: Option<&ConfigHash>,
    reverted: &[CommitId],
    revert_conflicts: &[String],
    dropped_links: &[String],
) -> String {
    let app = req.app_ref();
    let mut msg = format!("Revert {app} to {}", req.to.short());
    if let Some(revision) = req.to_cluster_revision {
        msg.push_str(&format!(" (cluster revision {revision})"));
    }
    msg.push_str("\n\n");
    let reason = one_paragraph(&req.reason);
    if reason.is_empty() {
        msg.push_str("Why: no reason given.\n\n");
    } else {
        msg.push_str(&format!("Why: {reason}\n\n"));
    }
    match strategy_used {
        Strategy::Restore => msg.push_str(&format!(
            "Every input of {} ({} and the paths its kustomizations reference) is restored \
             to its tree at {}; every other path is unchanged.\n",
            app, req.app_path, req.to
        )),
        Strategy::Revert => {
            msg.push_str(&format!(
                "Reverts, newest first, the commits since {} that touched the inputs of {}:\n",
                req.to, app
            ));
            for commit in reverted {
                msg.push_str(&format!("- {commit}\n"));
            }
        }
    }
    if !revert_conflicts.is_empty() {
        msg.push_str(&format!(
            "A revert conflicted in {}, so the inputs were restored instead.\n",
            revert_conflicts.join(", ")
        ));
    }
    if !dropped_links.is_empty() {
        msg.push_str(&format!(
            "Not restored: {}, symbolic links pointing outside the repository.\n",
            text::one_line(&dropped_links.join(", "), 1000)
        ));
    }
    msg.push('\n');
    msg.push_str(&format!("Rewind-Rollback-Id: {}\n", req.rollback_id));
    msg.push_str(&format!("Rewind-App: {}\n", req.app));
    msg.push_str(&format!("Rewind-Cluster: {}\n", req.cluster));
    msg.push_str(&format!("Rewind-From: {}\n", req.from));
    msg.push_str(&format!("Rewind-To: {}\n", req.to));
    if let Some(hash) = config_hash {
        msg.push_str(&format!("Rewind-Config-Hash: {hash}\n"));
    }
    msg
}

/// The reason as one paragraph without hidden characters: a blank line in
/// it would let a crafted reason end the body early and pose as trailers,
/// and a bidi override would make it read differently from what it says.
fn one_paragraph(reason: &str) -> String {
    text::one_line(reason, 2000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RollbackRequest {
        RollbackRequest {
            rollback_id: "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap(),
            app: AppName::new("shop/checkout").unwrap(),
            cluster: ClusterName::new("prod-eu").unwrap(),
            app_path: "apps/checkout/overlays/prod".into(),
            from: CommitId::new("b".repeat(40)).unwrap(),
            to: CommitId::new("a1b2c3d".to_string() + &"0".repeat(33)).unwrap(),
            to_cluster_revision: Some(41),
            reason: "checkout 5xx\n\nRewind-App: evil".into(),
            strategy: Strategy::Restore,
            allow_restore_fallback: false,
            target_config_hash: None,
        }
    }

    #[test]
    fn subject_body_and_trailers() {
        let hash = ConfigHash::from_digest([7; 32]);
        let mut req = request();
        req.reason = "checkout 5xx\n\nRewind-App: evil \u{202E}gnp.exe".into();
        let msg = commit_message(&req, Strategy::Restore, Some(&hash), &[], &[], &[]);
        let mut lines = msg.lines();
        assert_eq!(
            lines.next(),
            Some("Revert shop/checkout@prod-eu to a1b2c3d (cluster revision 41)")
        );
        let last_paragraph = msg.trim_end().rsplit("\n\n").next().unwrap();
        assert_eq!(
            last_paragraph,
            format!(
                "Rewind-Rollback-Id: 01890a5d-ac96-774b-bcce-b302099a8057\n\
                 Rewind-App: shop/checkout\n\
                 Rewind-Cluster: prod-eu\n\
                 Rewind-From: {}\n\
                 Rewind-To: a1b2c3d{}\n\
                 Rewind-Config-Hash: {hash}",
                "b".repeat(40),
                "0".repeat(33)
            )
        );
        // The crafted reason stays inside the body paragraph.
        assert!(msg.contains("Why: checkout 5xx Rewind-App: evil gnp.exe\n"));
        assert!(!msg.contains('\u{202E}'));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the reason says, the message keeps its subject, one
        /// `Why:` line, no hidden characters, and its own trailers last.
        #[test]
        fn a_reason_cannot_forge_trailers_or_hide_text(
            reason in "(\\PC|\n|\r|\u{202E}|\u{2066}|\0|Rewind-App: x){0,40}",
        ) {
            let mut req = request();
            req.reason = reason;
            let msg = commit_message(&req, Strategy::Restore, None, &[], &[], &[]);
            proptest::prop_assert!(!msg.chars().any(|c| c != '\n' && text::is_hidden(c)));
            let paragraphs: Vec<&str> = msg.trim_end().split("\n\n").collect();
            proptest::prop_assert_eq!(paragraphs.len(), 4, "{}", msg);
            proptest::prop_assert!(paragraphs[1].starts_with("Why: ") && !paragraphs[1].contains('\n'));
            proptest::prop_assert!(paragraphs[3].starts_with("Rewind-Rollback-Id: "));
            proptest::prop_assert_eq!(paragraphs[3].matches("Rewind-App: ").count(), 1);
        }
    }

    #[test]
    fn branch_names() {
        let req = request();
        assert_eq!(
            rollback_branch(&req.app, &req.rollback_id),
            "rewind/shop-checkout/01890a5d-ac96-774b-bcce-b302099a8057"
        );
        assert_eq!(
            rebuild_branch(&req.app, &req.rollback_id, 2),
            "rewind/shop-checkout/01890a5d-ac96-774b-bcce-b302099a8057-rebuild-2"
        );
    }
}
