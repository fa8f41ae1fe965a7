//! `GET /ui/rollbacks/{id}`: one rollback as a reviewer reads it: what it
//! does (from → to, why), its wave, then the report the pull request
//! carries (changes, risks, the review with its buttons, verification,
//! timeline).

use axum::extract::{Path, State};
use maud::{Markup, html};
use rewind_config::Role;
use rewind_domain::{Rollback, RollbackId};

use super::actions::UiAction;
use super::layout::{app_link, csrf_field, page, short, shown};
use crate::error::ApiError;
use crate::session::UiUser;
use crate::state::AppState;

/// `GET /ui/rollbacks/{id}`.
pub async fn rollback(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
) -> Result<Markup, ApiError> {
    user.caller()?.require(Role::Viewer)?;
    let id: RollbackId = id.parse()?;
    let r = state
        .ledger()
        .rollback(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no rollback {id}")))?;
    let wave = match &r.wave {
        Some(wave) => wave_members(&state, &wave.group).await?,
        None => Vec::new(),
    };
    let policy = &state.settings().policy;
    let r = shown(r);
    Ok(page(
        &format!("Rollback of {}", r.app_ref()),
        &user,
        html! {
            (summary(&r))
            (wave_section(&r, &wave))
            (crate::routes::ui_report::rollback_report(&r, crate::routes::ui_report::ReportPolicy {
                required_approvals: policy.required_approvals,
                allow_self_approval: policy.allow_self_approval,
                verify_for: policy.verify_for.get(),
            }, review_actions(&r, &user)))
        },
    ))
}

/// The other rollbacks of a wave, in wave order.
async fn wave_members(state: &AppState, group: &str) -> Result<Vec<Rollback>, ApiError> {
    let mut members: Vec<Rollback> = state
        .ledger()
        .list_rollbacks(None, None, 1000)
        .await?
        .into_iter()
        .filter(|r| r.wave.as_ref().is_some_and(|w| w.group == group))
        .collect();
    members.sort_by_key(|r| r.wave.as_ref().map_or(0, |w| w.index));
    Ok(members)
}

fn summary(r: &Rollback) -> Markup {
    html! {
        p { "state " b class=(r.state.as_str()) { (r.state.as_str()) } " · strategy " (r.strategy.as_str())
            " · branch " code { (r.branch.clone().unwrap_or_default()) }
            @if let Some(pr) = &r.pr { " · " a href=(pr.url) { "pull request #" (pr.number) } } }
        p { "app " a href=(app_link(&r.app_ref())) { (r.app_ref()) }
            " · from cluster revision " (r.from.cluster_revision) " (" code { (short(r.from.commit.as_ref())) } ") to "
            (r.to.cluster_revision) " (" code { (short(r.to.commit.as_ref())) } ")" }
        p { "why: " (r.reason) }
    }
}

/// The review buttons, while the rollback can still be reviewed; the
/// report's Review section shows them under the approvals, so a reviewer
/// reads who approved and acts in one place.
fn review_actions(r: &Rollback, user: &UiUser) -> Option<Markup> {
    r.state.is_reviewable().then(|| {
        html! {
            p class="review-actions" {
                @for action in UiAction::ALL {
                    form method="post" action={ "/ui/rollbacks/" (r.id) "/" (action.as_str()) } {
                        (csrf_field(user))
                        button { (action.label()) }
                    }
                }
            }
        }
    })
}

fn wave_section(r: &Rollback, members: &[Rollback]) -> Markup {
    html! {
        @if let Some(wave) = &r.wave {
            h2 id="wave" { "Wave" }
            p { "step " (wave.index + 1) " of " (members.len().max(1)) " in wave " code { (wave.group) }
                @if let Some(after) = wave.after { " · goes ahead once " a href={ "/ui/rollbacks/" (after) } { code { (after.to_string()[..8]) } } " is verified" } }
            ol class="wave" {
                @for m in members {
                    li {
                        @if m.id == r.id { b { (m.app_ref()) } " (this one)" }
                        @else { a href={ "/ui/rollbacks/" (m.id) } { (m.app_ref()) } }
                        " " span class=(m.state.as_str()) { (m.state.as_str()) }
                    }
                }
            }
        }
    }
}
