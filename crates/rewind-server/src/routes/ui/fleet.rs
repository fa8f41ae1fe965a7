//! `GET /`: the fleet. One row per app name, one column per cluster, with
//! search and filters (name, cluster, health, drift, open rollback) and
//! pages of [`NAMES_PER_PAGE`] names, so 4,000 apps are many small pages
//! instead of one large one. Filters are a plain GET form: the page works
//! without JavaScript and every view is a link.

use std::collections::HashSet;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rewind_config::Role;
use rewind_domain::{AppRef, Health, RollbackState};
use rewind_ledger::AppSummary;
use serde::Deserialize;

use super::layout::{app_link, encode_part, page, respond, rollback_rows, short};
use super::sign_in::login_page;
use crate::error::ApiError;
use crate::session::UiUser;
use crate::state::AppState;

/// App names on one page of the overview.
pub const NAMES_PER_PAGE: usize = 50;

/// The overview's query: every field optional, empty means "any".
#[derive(Debug, Default, Clone, Deserialize)]
pub struct FleetQuery {
    /// Part of the app's name (case-insensitive).
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
    /// A health (`Healthy`, `Degraded`, ...).
    #[serde(default)]
    pub health: Option<String>,
    /// `yes`: only apps whose cluster drifted from Git.
    #[serde(default)]
    pub drift: Option<String>,
    /// `yes`: only apps with an open rollback.
    #[serde(default)]
    pub open: Option<String>,
    /// 1-based page number.
    #[serde(default)]
    pub page: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl FleetQuery {
    fn page_number(&self) -> Result<usize, ApiError> {
        match given(&self.page) {
            None => Ok(1),
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("page: {raw:?} is not a page number (1, 2, ...)"))
                }),
        }
    }

    fn health(&self) -> Result<Option<Health>, ApiError> {
        given(&self.health)
            .map(|raw| {
                Health::ALL
                    .into_iter()
                    .find(|h| h.as_str().eq_ignore_ascii_case(raw))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "health: {raw:?} is not one of Healthy, Progressing, Degraded, Suspended, Missing, Unknown"
                        ))
                    })
            })
            .transpose()
    }

    /// Whether `summary` passes every filter.
    fn keeps(&self, summary: &AppSummary, health: Option<Health>, open: &HashSet<AppRef>) -> bool {
        let name_ok = given(&self.q).is_none_or(|q| {
            summary
                .app
                .name
                .as_str()
                .to_lowercase()
                .contains(&q.to_lowercase())
        });
        let cluster_ok = given(&self.cluster).is_none_or(|c| summary.app.cluster.as_str() == c);
        let health_ok =
            health.is_none_or(|h| summary.current.as_ref().is_some_and(|d| d.health == h));
        let drift_ok = given(&self.drift).is_none() || summary.app.drift.is_some();
        let open_ok = given(&self.open).is_none() || open.contains(&summary.app.app_ref());
        name_ok && cluster_ok && health_ok && drift_ok && open_ok
    }

    /// This query's link to page `n`.
    fn link(&self, n: usize) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("q", &self.q),
            ("cluster", &self.cluster),
            ("health", &self.health),
            ("drift", &self.drift),
            ("open", &self.open),
        ] {
            if let Some(v) = given(value) {
                parts.push(format!("{key}={}", encode_part(v)));
            }
        }
        parts.push(format!("page={n}"));
        format!("/?{}", parts.join("&"))
    }
}

/// Apps with an open rollback, from one query per open state.
async fn apps_with_open_rollbacks(state: &AppState) -> Result<HashSet<AppRef>, ApiError> {
    let mut open = HashSet::new();
    for s in RollbackState::ALL.into_iter().filter(|s| s.is_open()) {
        for r in state.ledger().list_rollbacks(None, Some(s), 1000).await? {
            open.insert(r.app_ref());
        }
    }
    Ok(open)
}

/// `GET /`: the apps that pass the filters, one page of them, and the
/// latest rollbacks.
pub async fn index(
    State(state): State<AppState>,
    user: UiUser,
    Query(query): Query<FleetQuery>,
) -> Response {
    let Some(caller) = &user.caller else {
        return login_page(&user, StatusCode::UNAUTHORIZED, None);
    };
    if let Err(e) = caller.require(Role::Viewer) {
        return e.into_response();
    }
    match render(&state, &user, &query).await {
        Ok(markup) => respond(&user, StatusCode::OK, markup),
        Err(e) => e.into_response(),
    }
}

async fn render(state: &AppState, user: &UiUser, query: &FleetQuery) -> Result<Markup, ApiError> {
    let page_number = query.page_number()?;
    let health = query.health()?;
    let apps = state.ledger().list_apps().await?;
    let open = apps_with_open_rollbacks(state).await?;
    let mut clusters: Vec<&str> = apps.iter().map(|s| s.app.cluster.as_str()).collect();
    clusters.sort_unstable();
    clusters.dedup();
    let kept: Vec<&AppSummary> = apps
        .iter()
        .filter(|s| query.keeps(s, health, &open))
        .collect();
    let mut names: Vec<&str> = kept.iter().map(|s| s.app.name.as_str()).collect();
    names.dedup();
    let pages = names.len().div_ceil(NAMES_PER_PAGE).max(1);
    let shown_names: Vec<&str> = names
        .iter()
        .skip((page_number - 1) * NAMES_PER_PAGE)
        .take(NAMES_PER_PAGE)
        .copied()
        .collect();
    let shown: Vec<&AppSummary> = kept
        .iter()
        .filter(|s| shown_names.contains(&s.app.name.as_str()))
        .copied()
        .collect();
    let rollbacks = state
        .ledger()
        .list_rollbacks(None, None, 20)
        .await
        .unwrap_or_default();
    Ok(page(
        "Apps",
        user,
        html! {
            (filters(query, &clusters))
            p role="status" {
                (kept.len()) " of " (apps.len()) " apps match"
                @if pages > 1 { " · page " (page_number) " of " (pages) }
            }
            (grid(&shown_names, &shown, &open))
            (pager(query, page_number, pages))
            h2 { "Rollbacks" }
            (rollback_rows(&rollbacks))
        },
    ))
}

fn filters(query: &FleetQuery, clusters: &[&str]) -> Markup {
    let selected = |value: &Option<String>, option: &str| given(value) == Some(option);
    html! {
        form class="filters" method="get" action="/" role="search" {
            label { "Search " input type="search" name="q" value=(given(&query.q).unwrap_or_default()) placeholder="app name"; }
            label { "Cluster "
                select name="cluster" {
                    option value="" { "any" }
                    @for c in clusters { option value=(c) selected[selected(&query.cluster, c)] { (c) } }
                }
            }
            label { "Health "
                select name="health" {
                    option value="" { "any" }
                    @for h in Health::ALL { option value=(h.as_str()) selected[selected(&query.health, h.as_str())] { (h.as_str()) } }
                }
            }
            label { input type="checkbox" name="drift" value="yes" checked[given(&query.drift).is_some()]; " drifted" }
            label { input type="checkbox" name="open" value="yes" checked[given(&query.open).is_some()]; " open rollback" }
            button type="submit" { "Filter" }
            " " a href="/" { "clear" }
        }
    }
}

fn pager(query: &FleetQuery, current: usize, pages: usize) -> Markup {
    html! {
        @if pages > 1 {
            nav class="pages" aria-label="pages" {
                @if current > 1 { a rel="prev" href=(query.link(current - 1)) { "← previous" } }
                @if current < pages { a rel="next" href=(query.link(current + 1)) { "next →" } }
            }
        }
    }
}

/// One row per app name, one column per cluster that runs it, each cell
/// that cluster's app (current revision, health, known good, hold, drift).
fn grid(names: &[&str], apps: &[&AppSummary], open: &HashSet<AppRef>) -> Markup {
    let mut clusters: Vec<&str> = apps.iter().map(|s| s.app.cluster.as_str()).collect();
    clusters.sort_unstable();
    clusters.dedup();
    let find = |name: &str, cluster: &str| {
        apps.iter()
            .find(|s| s.app.name.as_str() == name && s.app.cluster.as_str() == cluster)
    };
    html! {
        table {
            tr { th { "app" } @for c in &clusters { th { (c) } } }
            @for name in names {
                tr {
                    td { b { (name) } }
                    @for c in &clusters {
                        @match find(name, c) {
                            Some(s) => td {
                                a href=(app_link(&s.app.app_ref())) {
                                    @match &s.current {
                                        Some(d) => { (d.cluster_revision) " " code { (short(d.commit.as_ref())) } }
                                        None => { "no deployment" }
                                    }
                                }
                                @if let Some(d) = &s.current { " " span class=(d.health.as_str()) { (d.health.as_str()) } }
                                br;
                                "known good " (s.known_good.as_ref().map_or("-".into(), |d| d.cluster_revision.to_string()))
                                @if s.app.held_since.is_some() { " " span class="risk" { "held" } }
                                @if open.contains(&s.app.app_ref()) { " " span class="risk" { "open rollback" } }
                                @if let Some(drift) = &s.app.drift { br; span class="risk" title=(drift.detail) { "drift" } " " small { (drift.detail) } }
                                @if let Some(status) = &s.app.status { br; small { (status) } }
                            },
                            None => td { "" },
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_keep_the_filters() {
        let query = FleetQuery {
            q: Some("check out".into()),
            cluster: Some("prod-eu".into()),
            drift: Some("yes".into()),
            page: Some("3".into()),
            ..FleetQuery::default()
        };
        assert_eq!(query.page_number().unwrap(), 3);
        assert_eq!(
            query.link(4),
            "/?q=check%20out&cluster=prod-eu&drift=yes&page=4"
        );
    }

    #[test]
    fn bad_pages_and_healths_are_refused_naming_the_parameter() {
        for bad in ["0", "-2", "x"] {
            let query = FleetQuery {
                page: Some(bad.into()),
                ..FleetQuery::default()
            };
            assert!(
                query
                    .page_number()
                    .unwrap_err()
                    .detail
                    .starts_with("page: ")
            );
        }
        let query = FleetQuery {
            health: Some("sick".into()),
            ..FleetQuery::default()
        };
        assert!(query.health().unwrap_err().detail.starts_with("health: "));
        let query = FleetQuery {
            health: Some("degraded".into()),
            ..FleetQuery::default()
        };
        assert_eq!(query.health().unwrap(), Some(Health::Degraded));
    }
}
