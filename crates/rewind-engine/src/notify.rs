//! Notifications: each event queues one durable `notify` job per
//! `[[notify]]` target that lists it; the job delivers with its own, short
//! backoff. Queuing never fails the step that caused it, and a target that
//! keeps failing ends as a dead job, counted and logged, nothing more.

use std::time::Duration;

use chrono::Utc;
use rewind_config::NotifyEvent;
use rewind_domain::{AppRef, Rollback};
use rewind_notify::{Kind, Notification, Target};

use crate::{Engine, EngineError};

/// Kind of the job that delivers one notification to one target.
pub const NOTIFY: &str = "notify";

/// Backoff of notification retries: 1 s, 2 s, 4 s, … up to 5 minutes. Short
/// at first because a chat message is only useful while it is news.
pub(crate) fn backoff(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    Duration::from_secs((1u64 << exponent).min(300))
}

impl Engine {
    /// Tells every target that listens for `event` about `rollback`.
    pub(crate) async fn notify(&self, event: NotifyEvent, rollback: &Rollback, reason: &str) {
        let url = format!(
            "{}/ui/rollbacks/{}",
            self.settings.server.public_url.trim_end_matches('/'),
            rollback.id
        );
        let notification = Notification {
            event: event.as_str().to_string(),
            app: rollback.app.to_string(),
            cluster: String::new(),
            rollback: Some(rollback.id.to_string()),
            state: Some(rollback.state.as_str().to_string()),
            reason: reason.to_string(),
            url: Some(url),
        };
        self.queue_notification(event, notification).await;
    }

    /// Tells every target that listens for `event` about `app` (events
    /// without a rollback, such as a held app refusing a proposal).
    pub(crate) async fn notify_app(&self, event: NotifyEvent, app: &AppRef, reason: &str) {
        let notification = Notification {
            event: event.as_str().to_string(),
            app: app.name.to_string(),
            cluster: app.cluster.to_string(),
            rollback: None,
            state: None,
            reason: reason.to_string(),
            url: Some(self.settings.server.public_url.clone()),
        };
        self.queue_notification(event, notification).await;
    }

    async fn queue_notification(&self, event: NotifyEvent, notification: Notification) {
        for target in self
            .settings
            .notify
            .iter()
            .filter(|t| t.events.contains(&event))
        {
            let dedup = notification
                .rollback
                .as_ref()
                .map(|id| format!("notify:{}:{}:{id}", target.name, notification.event));
            let payload = serde_json::json!({"target": target.name, "notification": notification});
            if let Err(e) = self
                .ledger
                .enqueue(NOTIFY, payload, dedup, Utc::now())
                .await
            {
                // A notification must never fail the rollback step.
                tracing::warn!(notify.target = %target.name, error = %e, "cannot queue a notification");
            }
        }
    }

    /// Runs a `drift` job (queued by the ledger when an app's cluster
    /// begins to differ from Git): tells the targets that listen for
    /// `drift`.
    pub(crate) async fn drift_began(&self, payload: &serde_json::Value) -> Result<(), EngineError> {
        let app: AppRef = payload["app"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|e| EngineError::Invalid(format!("drift job: {e}")))?;
        let detail = payload["detail"]
            .as_str()
            .unwrap_or("the cluster differs from Git");
        self.notify_app(NotifyEvent::Drift, &app, detail).await;
        Ok(())
    }

    /// Runs a `notify` job: one delivery attempt.
    pub(crate) async fn deliver_notification(
        &self,
        payload: &serde_json::Value,
    ) -> Result<(), EngineError> {
        let name = payload["target"].as_str().unwrap_or_default();
        let Some(settings) = self.settings.notify.iter().find(|t| t.name == name) else {
            return Err(EngineError::Invalid(format!(
                "notification target {name:?} is no longer configured"
            )));
        };
        let notification: Notification = serde_json::from_value(payload["notification"].clone())
            .map_err(|e| EngineError::Invalid(format!("notification payload: {e}")))?;
        let target = Target {
            name: settings.name.clone(),
            kind: match settings.kind {
                rewind_config::NotifyKind::Slack => Kind::Slack,
                rewind_config::NotifyKind::Webhook => Kind::Webhook,
            },
            url: settings.url.expose().to_string(),
            secret: settings.secret.as_ref().map(|s| s.expose().to_string()),
        };
        let Some(notifier) = &self.notifier else {
            return Err(EngineError::Invalid(
                "the notification client could not be built".into(),
            ));
        };
        match notifier.deliver(&target, &notification).await {
            Ok(()) => {
                metrics::counter!("rewind_notifications_delivered_total", "target" => target.name.clone())
                    .increment(1);
                Ok(())
            }
            Err(e) => {
                metrics::counter!("rewind_notifications_failed_total", "target" => target.name.clone())
                    .increment(1);
                tracing::warn!(notify.target = %target.name, error = %e, "notification not delivered");
                Err(e.into())
            }
        }
    }
}
