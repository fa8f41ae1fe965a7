//! The one verification comment on a rollback's pull request: posted at
//! the first evaluation, then edited in place on every evaluation and state
//! change, so reviewers see the latest values without a comment per tick.
//! Its id is kept in the ledger; a comment a person deleted is posted anew.
//! The local forge has no conversation: there the same table is the
//! rollback's `verification` in the API, `rewind show` and the web UI.

use rewind_domain::Rollback;

use crate::Engine;

impl Engine {
    /// Posts or updates the verification comment (best effort: the
    /// verdict is in the ledger whatever the forge says).
    pub(crate) async fn update_verification_comment(&self, rollback: &Rollback) {
        let (Some(forge), Some(pr)) = (self.forge.as_ref(), rollback.pr.as_ref()) else {
            return;
        };
        let rollback = match self.ledger.rollback(rollback.id).await {
            Ok(Some(fresh)) => fresh,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(rollback.id = %rollback.id, error = %e, "cannot read the rollback for its verification comment");
                return;
            }
        };
        let existing = match self.ledger.verify_comment(rollback.id).await {
            Ok(existing) => existing,
            Err(e) => {
                tracing::warn!(rollback.id = %rollback.id, error = %e, "cannot read the verification comment id");
                return;
            }
        };
        if existing.is_none() && rollback.verification.is_empty() {
            // No check ran: the outcome comment says it all.
            return;
        }
        let body = rewind_forge::render_verification_comment(&rollback);
        match forge.upsert_comment(pr.number, existing, &body).await {
            Ok(id) if Some(id) != existing => {
                if let Err(e) = self.ledger.set_verify_comment(rollback.id, id).await {
                    tracing::warn!(rollback.id = %rollback.id, error = %e, "cannot remember the verification comment");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(rollback.id = %rollback.id, error = %e, "cannot post the verification comment");
            }
        }
    }
}
