//! [`RemoteStatus`]: the outcome of the last fetch from the remote, kept
//! outside the repository mutex so `/readyz` and `/metrics` can report
//! whether Git is reachable without waiting behind a long fetch.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What the last fetch did, shared by every clone of the handle.
#[derive(Debug, Clone, Default)]
pub struct RemoteStatus {
    last: Arc<Mutex<Option<FetchOutcome>>>,
}

/// One fetch: when it ended and, if it failed, why (already redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOutcome {
    pub at: SystemTime,
    pub error: Option<String>,
}

impl RemoteStatus {
    /// The last fetch's outcome; `None` before the first one ended.
    pub fn last_fetch(&self) -> Option<FetchOutcome> {
        self.lock().clone()
    }

    pub(crate) fn record(&self, error: Option<String>) {
        *self.lock() = Some(FetchOutcome {
            at: SystemTime::now(),
            error,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<FetchOutcome>> {
        // Only plain assignments happen under this lock: a poisoned one
        // still holds a whole value.
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_last_outcome() {
        let status = RemoteStatus::default();
        let reader = status.clone();
        assert_eq!(reader.last_fetch(), None);
        status.record(Some("unreachable".into()));
        assert_eq!(
            reader.last_fetch().and_then(|o| o.error).as_deref(),
            Some("unreachable")
        );
        status.record(None);
        assert_eq!(reader.last_fetch().map(|o| o.error), Some(None));
    }
}
