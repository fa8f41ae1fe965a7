//! Image pre-flight (`verify.registry_check`): before a proposal, every
//! target image is looked up in its registry. A missing one is risk
//! `image-missing` (it blocks `auto_merge = "safe"`); a registry that does
//! not answer is a warning on the timeline, never a refusal.

use chrono::{DateTime, Utc};
use rewind_domain::{Risk, RiskCode, TimelineEntry, TimelineEvent};
use rewind_probe::ImageLookup;

use crate::Engine;
use crate::timeline::entry;

impl Engine {
    pub(crate) async fn preflight_images(
        &self,
        images: &[String],
        risks: &mut Vec<Risk>,
        timeline: &mut Vec<TimelineEntry>,
        now: DateTime<Utc>,
    ) {
        let Some(registry) = &self.registry else {
            return;
        };
        let mut unreachable = Vec::new();
        for image in images {
            match registry.lookup(image).await {
                ImageLookup::Found => {}
                ImageLookup::Missing(detail) => {
                    risks.push(Risk::new(RiskCode::ImageMissing, detail));
                }
                ImageLookup::Unreachable(why) => unreachable.push(format!("{image} ({why})")),
            }
        }
        if !unreachable.is_empty() {
            timeline.push(entry(
                TimelineEvent::PreflightWarning,
                format!(
                    "cannot tell whether these target images still exist: {}",
                    unreachable.join(", ")
                ),
                now,
            ));
        }
    }
}
