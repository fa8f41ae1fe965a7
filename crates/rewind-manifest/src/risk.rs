//! Rollback risks: what moving an app from the current commit to a target
//! commit would do beyond swapping images and config, with the contract's
//! stable codes. Each code appears at most once, with a one-line detail.
//! `unrenderable` names what rewind cannot render or trust in the target
//! (the same findings `doctor` reports), so `auto_merge = "safe"` never
//! merges what nobody could review.

use std::collections::BTreeSet;

use rewind_domain::{Risk, RiskCode};

use crate::diff::{AppDiff, Comparison, FileStatus, compare};
use crate::error::ManifestError;
use crate::finding::Finding;
use crate::inputs::AppInputs;
use crate::inputs_cache::InputsCache;
use crate::path;
use crate::render::{Object, ObjectId, PATCH_MATCHES_NO_OBJECT, Rendered};
use crate::source::{CachedTree, TreeSource};

/// Items named in a detail before "and N more".
const MAX_NAMED: usize = 3;

/// The risks of moving the app at `app_path` from `current` to `target`.
/// `other_apps` are (name, path) of the other apps reading the same
/// repository, for `shared-change`.
pub fn rollback_risks(
    current: &dyn TreeSource,
    target: &dyn TreeSource,
    app_path: &str,
    other_apps: &[(String, String)],
) -> Result<Vec<Risk>, ManifestError> {
    rollback_risks_cached(
        current,
        target,
        app_path,
        other_apps,
        &mut InputsCache::new(),
    )
}

/// [`rollback_risks`], reusing other apps' inputs from `cache` (a service
/// keeps one across proposals: see [`InputsCache`]).
pub fn rollback_risks_cached(
    current: &dyn TreeSource,
    target: &dyn TreeSource,
    app_path: &str,
    other_apps: &[(String, String)],
    cache: &mut InputsCache,
) -> Result<Vec<Risk>, ManifestError> {
    Ok(assess_rollback(current, target, app_path, other_apps, cache)?.risks)
}

/// Everything a rollback proposal says about its change, from one
/// comparison of the two commits.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// The semantic diff, current → target.
    pub diff: AppDiff,
    pub risks: Vec<Risk>,
    /// What rewind cannot render or trust at the current commit (an
    /// escaping reference, invalid YAML...): no reason to refuse rolling
    /// away from it, but the proposal says what was broken.
    pub current_problems: Vec<Finding>,
}

/// The diff, the risks and the current commit's problems of moving the
/// app at `app_path` from `current` to `target`, reusing other apps'
/// inputs from `cache`.
pub fn assess_rollback(
    current: &dyn TreeSource,
    target: &dyn TreeSource,
    app_path: &str,
    other_apps: &[(String, String)],
    cache: &mut InputsCache,
) -> Result<Assessment, ManifestError> {
    let current = CachedTree::new(current);
    let current: &dyn TreeSource = &current;
    let target = CachedTree::new(target);
    let target: &dyn TreeSource = &target;
    let comparison = compare(current, target, app_path)?;
    let mut risks = Vec::new();
    risks.extend(migration(&comparison));
    risks.extend(stateful(&comparison.diff));
    risks.extend(scale(&comparison.diff));
    risks.extend(mutable_image(&comparison.to.objects));
    risks.extend(shared_change(current, &comparison, other_apps, cache)?);
    risks.extend(crd(&comparison.diff));
    risks.extend(history_limit(&comparison.to.objects));
    risks.extend(unrenderable(target, &comparison)?);
    let current_problems =
        unrenderable_findings(current, &comparison.from_inputs, &comparison.from)?;
    Ok(Assessment {
        diff: comparison.diff,
        risks,
        current_problems,
    })
}

/// What rewind cannot render or trust in one side of a comparison: the
/// findings of its inputs and render that make the rendered objects
/// incomplete or untrustworthy ([`FindingCode::is_unrenderable`]), and its
/// symbolic links. Sorted, one per file and code.
pub fn unrenderable_findings(
    src: &dyn TreeSource,
    inputs: &AppInputs,
    rendered: &Rendered,
) -> Result<Vec<Finding>, ManifestError> {
    let mut findings: BTreeSet<Finding> = inputs
        .warnings
        .iter()
        .chain(&rendered.warnings)
        .filter(|f| f.code.is_unrenderable() && f.detail != PATCH_MATCHES_NO_OBJECT)
        .cloned()
        .collect();
    findings.extend(inputs.symlinks(src)?);
    Ok(findings.into_iter().collect())
}

fn unrenderable(target: &dyn TreeSource, c: &Comparison) -> Result<Option<Risk>, ManifestError> {
    let findings = unrenderable_findings(target, &c.to_inputs, &c.to)?;
    if findings.is_empty() {
        return Ok(None);
    }
    let items: Vec<String> = findings
        .iter()
        .map(|f| match &f.path {
            Some(path) => format!("{path} ({}: {})", f.code, f.detail),
            None => format!("{}: {}", f.code, f.detail),
        })
        .collect();
    Ok(Some(Risk::new(
        RiskCode::Unrenderable,
        format!(
            "rewind cannot render or trust the target: {}",
            name_some(&items)
        ),
    )))
}

/// "a, b, c and 2 more"
pub fn name_some<T: AsRef<str>>(items: &[T]) -> String {
    let named: Vec<&str> = items.iter().take(MAX_NAMED).map(AsRef::as_ref).collect();
    let rest = items.len().saturating_sub(MAX_NAMED);
    let mut text = named.join(", ");
    if rest > 0 {
        text.push_str(&format!(" and {rest} more"));
    }
    text
}

/// Whether a file looks like a schema migration.
pub fn is_migration_file(file: &str) -> bool {
    let lower = file.to_ascii_lowercase();
    lower.ends_with(".sql")
        || lower
            .split('/')
            .any(|part| part == "migrations" || part == "migration" || part == "db-migrations")
}

/// Whether an object is a Job or hook that runs migrations.
pub fn is_migration_job(object: &Object) -> bool {
    is_migration_id(&object.id(), Some(object))
}

fn is_migration_id(id: &ObjectId, object: Option<&Object>) -> bool {
    if !matches!(id.kind.as_str(), "Job" | "CronJob" | "Pod") {
        return false;
    }
    let hook = object.is_some_and(|o| {
        let annotations = o.body.at(&["metadata", "annotations"]);
        ["argocd.argoproj.io/hook", "helm.sh/hook"]
            .iter()
            .any(|k| annotations.and_then(|a| a.get(k)).is_some())
    });
    let name = id.name.to_ascii_lowercase();
    hook || name.contains("migrat") || name.contains("schema")
}

fn all_ids(diff: &AppDiff) -> impl Iterator<Item = (&ObjectId, &'static str)> {
    diff.changed
        .iter()
        .map(|c| (&c.id, "changes"))
        .chain(diff.added.iter().map(|a| (&a.id, "is added")))
        .chain(diff.removed.iter().map(|r| (&r.id, "is removed")))
}

fn migration(c: &Comparison) -> Option<Risk> {
    let mut items: Vec<String> = c
        .diff
        .files
        .iter()
        .filter(|f| is_migration_file(&f.path))
        .map(|f| {
            let what = match f.status {
                FileStatus::Added => "added",
                FileStatus::Removed => "removed",
                FileStatus::Modified => "changed",
            };
            format!("{} ({what})", path::file_name(&f.path))
        })
        .collect();
    let find = |id: &ObjectId| {
        c.to.objects
            .iter()
            .chain(&c.from.objects)
            .find(|o| o.id() == *id)
    };
    for (id, what) in all_ids(&c.diff) {
        if is_migration_id(id, find(id)) {
            items.push(format!("{} {} {what}", id.kind, id.name));
        }
    }
    (!items.is_empty()).then(|| {
        Risk::new(
            RiskCode::Migration,
            format!(
                "schema migrations differ: {}; a rollback does not undo migrations already applied",
                name_some(&items)
            ),
        )
    })
}

fn stateful(diff: &AppDiff) -> Option<Risk> {
    let mut items: Vec<String> = all_ids(diff)
        .filter(|(id, _)| matches!(id.kind.as_str(), "StatefulSet" | "PersistentVolumeClaim"))
        .map(|(id, what)| format!("{} {} {what}", id.kind, id.name))
        .collect();
    if diff
        .field_changes()
        .any(|(_, f)| f.path.contains("volumeClaimTemplates"))
    {
        items.push("volumeClaimTemplates change".to_string());
    }
    (!items.is_empty()).then(|| {
        Risk::new(
            RiskCode::Stateful,
            format!(
                "stateful workloads change: {}; data on volumes is not rolled back",
                name_some(&items)
            ),
        )
    })
}

/// Whether a field path is a scaling knob: replicas, or container
/// resources.
pub fn is_scale_field(path: &str) -> bool {
    path == "spec.replicas" || (path.contains("ontainers[") && path.contains("].resources"))
}

fn scale(diff: &AppDiff) -> Option<Risk> {
    let mut items: Vec<String> = diff
        .field_changes()
        .filter(|(_, f)| is_scale_field(&f.path))
        .map(|(id, f)| {
            format!(
                "{} {} {} {} → {}",
                id.kind,
                id.name,
                f.path,
                short(&f.old),
                short(&f.new)
            )
        })
        .collect();
    items.extend(
        all_ids(diff)
            .filter(|(id, _)| id.kind == "HorizontalPodAutoscaler")
            .map(|(id, what)| format!("HPA {} {what}", id.name)),
    );
    (!items.is_empty()).then(|| {
        Risk::new(
            RiskCode::Scale,
            format!("capacity changes: {}", name_some(&items)),
        )
    })
}

fn short(value: &Option<serde_json::Value>) -> String {
    match value {
        None => "(none)".into(),
        Some(serde_json::Value::String(s)) => crate::node::shorten(s, 40),
        Some(v) => crate::node::shorten(&v.to_string(), 40),
    }
}

/// Whether an image reference can change under the same name: `latest`
/// or no tag, and no digest.
pub fn is_mutable_image(image: &str) -> bool {
    let (_, tag, digest) = crate::render::split_image(image);
    digest.is_none() && tag.is_none_or(|t| t == "latest" || t.is_empty())
}

fn mutable_image(objects: &[Object]) -> Option<Risk> {
    let images: Vec<String> = crate::render::images_of(objects)
        .into_iter()
        .filter(|i| is_mutable_image(i))
        .collect();
    (!images.is_empty()).then(|| {
        Risk::new(
            RiskCode::MutableImage,
            format!(
                "target runs mutable image tags: {}; the rollback may not bring back the same code",
                name_some(&images)
            ),
        )
    })
}

fn shared_change(
    current: &dyn TreeSource,
    c: &Comparison,
    other_apps: &[(String, String)],
    cache: &mut InputsCache,
) -> Result<Option<Risk>, ManifestError> {
    let app_path = &c.to_inputs.app_path;
    let outside: Vec<&str> = c
        .diff
        .files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| !path::is_within(p, app_path))
        .collect();
    if outside.is_empty() {
        return Ok(None);
    }
    let mut readers = BTreeSet::new();
    let mut files = BTreeSet::new();
    for (name, other_path) in other_apps {
        if path::normalize(other_path).as_deref() == Some(app_path.as_str()) {
            continue;
        }
        // An app missing at the current commit reads nothing here.
        let Ok(inputs) = cache.app_inputs(current, other_path) else {
            continue;
        };
        for file in &outside {
            if inputs.contains(file) {
                readers.insert(name.clone());
                files.insert(*file);
            }
        }
    }
    if readers.is_empty() {
        return Ok(None);
    }
    let readers: Vec<String> = readers.into_iter().collect();
    let files: Vec<&str> = files.into_iter().collect();
    Ok(Some(Risk::new(
        RiskCode::SharedChange,
        format!(
            "{} also read by {}: they change on their next sync too",
            name_some(&files),
            name_some(&readers)
        ),
    )))
}

fn crd(diff: &AppDiff) -> Option<Risk> {
    let items: Vec<String> = all_ids(diff)
        .filter(|(id, _)| id.kind == "CustomResourceDefinition")
        .map(|(id, what)| format!("{} {what}", id.name))
        .collect();
    (!items.is_empty()).then(|| {
        Risk::new(
            RiskCode::Crd,
            format!(
                "CustomResourceDefinitions change: {}; they are cluster-wide",
                name_some(&items)
            ),
        )
    })
}

/// Workloads whose `revisionHistoryLimit` is below 3, as "Kind name (n)".
pub fn low_history_limits(objects: &[Object]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| matches!(o.kind(), "Deployment" | "StatefulSet" | "DaemonSet"))
        .filter_map(|o| {
            let limit = o
                .body
                .at(&["spec", "revisionHistoryLimit"])
                .and_then(crate::Node::as_int)?;
            (limit < 3).then(|| format!("{} {} ({limit})", o.kind(), o.name()))
        })
        .collect()
}

fn history_limit(objects: &[Object]) -> Option<Risk> {
    let items = low_history_limits(objects);
    (!items.is_empty()).then(|| {
        Risk::new(
            RiskCode::HistoryLimit,
            format!(
                "revisionHistoryLimit below 3: {}; little room to roll back in the cluster",
                name_some(&items)
            ),
        )
    })
}
