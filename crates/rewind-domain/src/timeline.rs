//! The words of a rollback's timeline, as a type: steps recognise what
//! already happened by matching a variant, never by comparing strings.
//!
//! On the wire (JSON, the `rollback_events.event` column) an event is its
//! snake_case name, as before. A name this version does not know (written
//! by a newer rewind) is kept as [`TimelineEvent::Other`], so old and new
//! replicas can share a database.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! timeline_events {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// What happened to a rollback.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(into = "String", from = "String")]
        pub enum TimelineEvent {
            $($(#[$doc])* $variant,)+
            /// A name this version does not know.
            Other(String),
        }

        impl TimelineEvent {
            /// Every known event (not `Other`).
            pub const KNOWN: &'static [TimelineEvent] = &[$(TimelineEvent::$variant,)+];

            pub fn as_str(&self) -> &str {
                match self {
                    $(TimelineEvent::$variant => $name,)+
                    TimelineEvent::Other(name) => name,
                }
            }

            /// The event named `name`; unknown names become `Other`.
            pub fn parse(name: &str) -> TimelineEvent {
                match name {
                    $($name => TimelineEvent::$variant,)+
                    other => TimelineEvent::Other(other.to_string()),
                }
            }
        }
    };
}

timeline_events! {
    /// The rollback was recorded.
    Proposed => "proposed",
    /// Symbolic links pointing outside the repository were left out of the
    /// rollback commit.
    LinksNotRestored => "links_not_restored",
    /// The commit rolled away from cannot be rendered or trusted.
    CurrentUnrenderable => "current_unrenderable",
    /// The image pre-flight could not reach a registry.
    PreflightWarning => "preflight_warning",
    /// `revert` conflicted and `restore` was used instead.
    RevertConflict => "revert_conflict",
    /// Another alert joined the open rollback.
    AlertJoined => "alert_joined",
    /// Another rollback was asked for and refused.
    Refused => "refused",
    /// The branch is on the remote with the rollback commit.
    Pushed => "pushed",
    /// The pull request is open (state `pr_open`).
    PrOpened => "pr_opened",
    /// Policy merges without waiting for people.
    AutoMerge => "auto_merge",
    /// A person's approval was recorded.
    Approval => "approval",
    /// A GitHub review was dismissed; that approval no longer counts.
    ApprovalDismissed => "approval_dismissed",
    /// An approval that does not count (no write access).
    ApprovalIgnored => "approval_ignored",
    /// The requester tried to approve their own rollback.
    SelfApprovalRefused => "self_approval_refused",
    /// Approvals are complete (state `approved`).
    Approved => "approved",
    /// Someone asked to merge.
    MergeRequested => "merge_requested",
    /// A merge was refused: approvals are missing.
    MergeRefused => "merge_refused",
    /// An admin merged without the approvals, giving a reason.
    MergeOverride => "merge_override",
    /// Merged into `git.branch` (state `merged`).
    Merged => "merged",
    /// A rebuild on the new head of `git.branch` started (the intent is
    /// saved before the push and the PR): its attempt number is the count
    /// of these events.
    RebuildStarted => "rebuild_started",
    /// That rebuild finished: branch pushed, PR opened, the old PR closed.
    Rebuilt => "rebuilt",
    /// The forge would not merge; people must look.
    MergeBlocked => "merge_blocked",
    /// `git.branch` already held the target (state `superseded`).
    Superseded => "superseded",
    /// State `cancelled`.
    Cancelled => "cancelled",
    /// A `/rewind` command from someone without write access.
    CommandIgnored => "command_ignored",
    /// The cluster runs the merge (state `synced`).
    Synced => "synced",
    /// State `verified`.
    Verified => "verified",
    /// State `failed`.
    Failed => "failed",
    /// The triggering alert resolved.
    AlertResolved => "alert_resolved",
    /// A push to `git.branch` brings back what a held app rolled back.
    HoldViolation => "hold_violation",
    /// A step (push, pull request, merge) failed for a reason outside
    /// rewind (Git unreachable or refusing, forge down or rate limiting);
    /// the detail says why and when it is tried again, or that it gave up.
    StepFailed => "step_failed",
}

impl From<TimelineEvent> for String {
    fn from(event: TimelineEvent) -> String {
        match event {
            TimelineEvent::Other(name) => name,
            known => known.as_str().to_string(),
        }
    }
}

impl From<String> for TimelineEvent {
    fn from(name: String) -> TimelineEvent {
        TimelineEvent::parse(&name)
    }
}

impl From<&str> for TimelineEvent {
    fn from(name: &str) -> TimelineEvent {
        TimelineEvent::parse(name)
    }
}

impl fmt::Display for TimelineEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_survive() {
        for event in TimelineEvent::KNOWN {
            assert_eq!(&TimelineEvent::parse(event.as_str()), event);
            let json = serde_json::to_string(event).unwrap();
            assert_eq!(json, format!("\"{}\"", event.as_str()));
            assert_eq!(
                &serde_json::from_str::<TimelineEvent>(&json).unwrap(),
                event
            );
        }
        let future = TimelineEvent::parse("drift_detected");
        assert_eq!(future, TimelineEvent::Other("drift_detected".into()));
        assert_eq!(
            serde_json::to_string(&future).unwrap(),
            "\"drift_detected\""
        );
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = TimelineEvent::KNOWN.iter().map(|e| e.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
