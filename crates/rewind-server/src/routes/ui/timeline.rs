//! An app's timeline, drawn as SVG on the server: deployments as points on
//! a time axis (a ring where the config hash changed), each deployment's
//! health as a coloured band until the next one, alerts above and
//! rollbacks below as markers. The same moments are listed as text under
//! the picture, so nothing is only in the drawing (screen readers, text
//! browsers, copy and paste).

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use rewind_domain::{Deployment, Health, Rollback};
use rewind_ledger::StoredAlert;

use super::layout::{short, short_hash, time};

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 20.0;
const ALERT_Y: f64 = 30.0;
const BAND_Y: f64 = 52.0;
const BAND_H: f64 = 24.0;
const ROLLBACK_Y: f64 = 100.0;
const AXIS_Y: f64 = 122.0;
const HEIGHT: f64 = 150.0;

/// One thing that happened, for the picture and the text list.
#[derive(Debug, Clone, PartialEq)]
pub struct Moment {
    pub at: DateTime<Utc>,
    pub kind: MomentKind,
    /// What a person reads (the marker's `<title>` and the list item).
    pub text: String,
    pub href: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MomentKind {
    Deployment,
    ConfigChange,
    Alert,
    Rollback,
}

impl MomentKind {
    fn class(self) -> &'static str {
        match self {
            MomentKind::Deployment => "deployment",
            MomentKind::ConfigChange => "config-change",
            MomentKind::Alert => "alert",
            MomentKind::Rollback => "rollback",
        }
    }
}

fn health_colour(health: Health) -> &'static str {
    match health {
        Health::Healthy => "#2da44e",
        Health::Degraded => "#cf222e",
        Health::Progressing => "#bf8700",
        Health::Suspended => "#8250df",
        Health::Missing => "#6e7781",
        Health::Unknown => "#afb8c1",
    }
}

/// Deployments oldest first.
fn oldest_first(history: &[Deployment]) -> Vec<&Deployment> {
    let mut sorted: Vec<&Deployment> = history.iter().collect();
    sorted.sort_by_key(|d| (d.deployed_at, d.cluster_revision));
    sorted
}

/// Everything on the timeline, oldest first.
pub fn moments(
    history: &[Deployment],
    alerts: &[StoredAlert],
    rollbacks: &[Rollback],
) -> Vec<Moment> {
    let mut out = Vec::new();
    let mut previous_hash = None;
    for d in oldest_first(history) {
        out.push(Moment {
            at: d.deployed_at,
            kind: MomentKind::Deployment,
            text: format!(
                "revision {} deployed ({}), {}{}",
                d.cluster_revision,
                short(d.commit.as_ref()),
                d.health.as_str(),
                if d.known_good { ", known good" } else { "" }
            ),
            href: None,
        });
        if let Some(hash) = &d.config_hash {
            if previous_hash.is_some_and(|p| p != hash) {
                out.push(Moment {
                    at: d.deployed_at,
                    kind: MomentKind::ConfigChange,
                    text: format!(
                        "config hash changed to {} with revision {}",
                        short_hash(Some(hash)),
                        d.cluster_revision
                    ),
                    href: None,
                });
            }
            previous_hash = Some(hash);
        }
    }
    for a in alerts {
        out.push(Moment {
            at: a.alert.starts_at,
            kind: MomentKind::Alert,
            text: format!(
                "alert {} {}{}",
                a.alert.name,
                a.alert.status.as_str(),
                a.alert
                    .severity
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ),
            href: None,
        });
    }
    for r in rollbacks {
        out.push(Moment {
            at: r.created_at,
            kind: MomentKind::Rollback,
            text: format!(
                "rollback to revision {} ({})",
                r.to.cluster_revision,
                r.state.as_str()
            ),
            href: Some(format!("/ui/rollbacks/{}", r.id)),
        });
    }
    out.sort_by_key(|m| m.at);
    out
}

/// Maps times onto the drawing's x axis.
struct Scale {
    start: DateTime<Utc>,
    span_ms: f64,
}

impl Scale {
    fn new(moments: &[Moment], now: DateTime<Utc>) -> Scale {
        let start = moments.first().map_or(now, |m| m.at);
        let end = moments.iter().map(|m| m.at).max().unwrap_or(now).max(now);
        let span_ms = ((end - start).num_milliseconds() as f64).max(1.0);
        Scale { start, span_ms }
    }

    fn x(&self, at: DateTime<Utc>) -> f64 {
        let fraction = (at - self.start).num_milliseconds() as f64 / self.span_ms;
        LEFT + fraction.clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }

    fn at(&self, fraction: f64) -> DateTime<Utc> {
        self.start + chrono::Duration::milliseconds((self.span_ms * fraction) as i64)
    }
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// The picture. `title_id` makes the `<title>`/`<desc>` ids unique on the
/// page.
pub fn svg(app: &str, history: &[Deployment], moments: &[Moment], now: DateTime<Utc>) -> Markup {
    let scale = Scale::new(moments, now);
    let deployments = oldest_first(history);
    let bands: Vec<(f64, f64, &Deployment)> = deployments
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let end = deployments.get(i + 1).map_or(now, |n| n.deployed_at);
            let (x0, x1) = (scale.x(d.deployed_at), scale.x(end.max(d.deployed_at)));
            (x0, (x1 - x0).max(2.0), *d)
        })
        .collect();
    let count = |kind| moments.iter().filter(|m| m.kind == kind).count();
    let description = format!(
        "{} deployments, {} config hash changes, {} alerts and {} rollbacks from {} to {}; \
         the list below the picture has every one",
        count(MomentKind::Deployment),
        count(MomentKind::ConfigChange),
        count(MomentKind::Alert),
        count(MomentKind::Rollback),
        time(&scale.at(0.0)),
        time(&scale.at(1.0)),
    );
    let ticks = [0.0, 0.25, 0.5, 0.75, 1.0];
    let label_revisions = count(MomentKind::Deployment) <= 20;
    html! {
        svg class="timeline" xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            aria-labelledby="timeline-title timeline-desc" {
            title id="timeline-title" { "Timeline of " (app) }
            desc id="timeline-desc" { (description) }
            text x="4" y=(px(ALERT_Y + 4.0)) font-size="10" fill="#57606a" { "alerts" }
            text x="4" y=(px(BAND_Y + 15.0)) font-size="10" fill="#57606a" { "health" }
            text x="4" y=(px(ROLLBACK_Y + 4.0)) font-size="10" fill="#57606a" { "undo" }
            @for (x, w, d) in &bands {
                rect class="health-band" x=(px(*x)) y=(px(BAND_Y)) width=(px(*w)) height=(px(BAND_H))
                    fill=(health_colour(d.health)) fill-opacity="0.35" {
                    title { "revision " (d.cluster_revision) ": " (d.health.as_str()) }
                }
            }
            line x1=(px(LEFT)) x2=(px(WIDTH - RIGHT)) y1=(px(AXIS_Y)) y2=(px(AXIS_Y)) stroke="#57606a" {}
            @for f in ticks {
                @let x = LEFT + f * (WIDTH - LEFT - RIGHT);
                line x1=(px(x)) x2=(px(x)) y1=(px(AXIS_Y)) y2=(px(AXIS_Y + 4.0)) stroke="#57606a" {}
                text x=(px(x)) y=(px(AXIS_Y + 16.0)) font-size="10" text-anchor="middle" fill="#57606a" {
                    (scale.at(f).format("%m-%d %H:%M"))
                }
            }
            @for m in moments {
                @let x = scale.x(m.at);
                @match m.kind {
                    MomentKind::Deployment => {
                        @let fill = deployments.iter().find(|d| d.deployed_at == m.at).map_or("#57606a", |d| health_colour(d.health));
                        circle class=(m.kind.class()) cx=(px(x)) cy=(px(BAND_Y + BAND_H / 2.0)) r="5" fill=(fill) stroke="#1b1f24" {
                            title { (m.text) }
                        }
                    }
                    MomentKind::ConfigChange => {
                        circle class=(m.kind.class()) cx=(px(x)) cy=(px(BAND_Y + BAND_H / 2.0)) r="9" fill="none" stroke="#0969da" stroke-width="2" {
                            title { (m.text) }
                        }
                    }
                    MomentKind::Alert => {
                        path class=(m.kind.class()) d={ "M" (px(x)) " " (px(ALERT_Y - 7.0)) " l6 11 h-12 z" } fill="#cf222e" {
                            title { (m.text) }
                        }
                    }
                    MomentKind::Rollback => {
                        a href=(m.href.clone().unwrap_or_default()) {
                            rect class=(m.kind.class()) x=(px(x - 5.0)) y=(px(ROLLBACK_Y - 5.0)) width="10" height="10" fill="#0969da" {
                                title { (m.text) }
                            }
                        }
                    }
                }
            }
            @if label_revisions {
                @for d in &deployments {
                    text x=(px(scale.x(d.deployed_at))) y=(px(BAND_Y - 4.0)) font-size="10" text-anchor="middle" {
                        (d.cluster_revision)
                    }
                }
            }
        }
    }
}

/// The text alternative: every moment, oldest first.
pub fn text_list(moments: &[Moment]) -> Markup {
    html! {
        ol class="timeline-text" aria-label="timeline as text" {
            @for m in moments {
                li class=(m.kind.class()) {
                    time datetime=(m.at.to_rfc3339()) { (time(&m.at)) } " "
                    @match &m.href {
                        Some(href) => a href=(href) { (m.text) },
                        None => (m.text),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rewind_domain::{AppName, ClusterName, ConfigHash, Source, SyncStatus};

    fn deployment(revision: i64, minutes: i64, health: Health, hash: &str) -> Deployment {
        let t0 = DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Deployment {
            id: revision,
            app: AppName::new("shop").unwrap(),
            cluster: ClusterName::default(),
            cluster_revision: revision,
            revision: format!("{revision:040x}"),
            commit: None,
            tree: None,
            config_hash: Some(ConfigHash::new(format!("sha256:{hash:0>64}")).unwrap()),
            images: vec![],
            health,
            sync: SyncStatus::default(),
            deployed_at: t0 + chrono::Duration::minutes(minutes),
            source: Source::Argocd,
            known_good: false,
            known_good_by_history: false,
            healthy_since: None,
            alerted: false,
            initiated_by: None,
        }
    }

    #[test]
    fn the_picture_has_a_point_per_deployment_bands_and_config_changes() {
        let history = vec![
            deployment(3, 20, Health::Degraded, "b"),
            deployment(2, 10, Health::Healthy, "a"),
            deployment(1, 0, Health::Healthy, "a"),
        ];
        let moments = moments(&history, &[], &[]);
        let kinds: Vec<MomentKind> = moments.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                MomentKind::Deployment,
                MomentKind::Deployment,
                MomentKind::Deployment,
                MomentKind::ConfigChange
            ]
        );
        let now = history[0].deployed_at + chrono::Duration::minutes(10);
        let svg = svg("shop@in-cluster", &history, &moments, now).into_string();
        assert!(svg.contains("<title id=\"timeline-title\">Timeline of shop@in-cluster</title>"));
        assert!(svg.contains("3 deployments, 1 config hash changes, 0 alerts and 0 rollbacks"));
        assert_eq!(svg.matches("class=\"deployment\"").count(), 3);
        assert_eq!(svg.matches("class=\"health-band\"").count(), 3);
        assert_eq!(svg.matches("class=\"config-change\"").count(), 1);
        // The degraded band is red, and runs until now.
        assert!(svg.contains("fill=\"#cf222e\" fill-opacity"));
        let list = text_list(&moments).into_string();
        assert!(
            list.contains("config hash changed to 000000000000 with revision 3"),
            "{list}"
        );
    }

    #[test]
    fn an_empty_history_draws_an_empty_axis() {
        let svg = svg("shop", &[], &[], Utc::now()).into_string();
        assert!(svg.contains("0 deployments"));
        assert!(!svg.contains("NaN"));
    }
}
