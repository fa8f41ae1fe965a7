//! The buttons of a rollback page: approve, merge, cancel, each a form
//! post with the page's CSRF token, from rewind's own origin, by a caller
//! with the role the API asks for.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Redirect;
use rewind_config::Role;
use rewind_domain::RollbackId;
use serde::Deserialize;

use crate::error::ApiError;
use crate::session::{self, UiUser};
use crate::state::AppState;

/// The buttons of a rollback page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiAction {
    Approve,
    Merge,
    Cancel,
}

impl UiAction {
    pub const ALL: [UiAction; 3] = [UiAction::Approve, UiAction::Merge, UiAction::Cancel];

    pub fn as_str(self) -> &'static str {
        match self {
            UiAction::Approve => "approve",
            UiAction::Merge => "merge",
            UiAction::Cancel => "cancel",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            UiAction::Approve => "Approve",
            UiAction::Merge => "Merge",
            UiAction::Cancel => "Cancel",
        }
    }

    /// The least role that may press the button (the API's too).
    pub fn role(self) -> Role {
        match self {
            UiAction::Approve | UiAction::Merge => Role::Approver,
            UiAction::Cancel => Role::Operator,
        }
    }

    fn parse(s: &str) -> Option<UiAction> {
        UiAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The body of every UI form post.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: Option<String>,
}

/// `POST /ui/rollbacks/{id}/{action}` from the buttons: same origin, the
/// page's CSRF token, then the role, then the action.
pub async fn act(
    State(state): State<AppState>,
    user: UiUser,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, ApiError> {
    session::check_origin(&state, &headers)?;
    session::check_csrf(&user, form.csrf.as_deref())?;
    let action = UiAction::parse(&action)
        .ok_or_else(|| ApiError::not_found(format!("no action {action:?}")))?;
    let caller = user.caller()?;
    caller.require(action.role())?;
    let id: RollbackId = id.parse()?;
    let engine = state.engine();
    match action {
        UiAction::Approve => engine.approve(id, &caller.name, "ui").await?,
        UiAction::Merge => engine.merge(id, &caller.name, "ui").await?,
        UiAction::Cancel => engine.cancel(id, &caller.name, "ui").await?,
    };
    state.0.wake.notify_waiters();
    Ok(Redirect::to(&format!("/ui/rollbacks/{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_from_their_names_only() {
        for action in UiAction::ALL {
            assert_eq!(UiAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(UiAction::parse("Approve"), None);
        assert_eq!(UiAction::parse("delete"), None);
        assert_eq!(UiAction::Cancel.role(), Role::Operator);
        assert_eq!(UiAction::Merge.role(), Role::Approver);
    }
}
