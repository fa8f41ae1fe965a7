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
use crate::hooks;
use crate::inputs::AppInputs;
use crate::inputs_cache::InputsCache;
use crate::nameref;
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
    risks.extend(hook(&comparison));
    risks.extend(rollout(&comparison));
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

/// Whether an object runs a known schema migration tool (see
/// [`crate::hooks`]).
pub fn is_migration_job(object: &Object) -> bool {
    hooks::migration_tool(object).is_some()
}

fn all_ids(diff: &AppDiff) -> impl Iterator<Item = (&ObjectId, &'static str)> {
    diff.changed
        .iter()
        .map(|c| (&c.id, "changes"))
        .chain(diff.added.iter().map(|a| (&a.id, "is added")))
        .chain(diff.removed.iter().map(|r| (&r.id, "is removed")))
}

/// The object with this id on the target side, else the current side.
fn find<'a>(c: &'a Comparison, id: &ObjectId) -> Option<&'a Object> {
    c.to.objects
        .iter()
        .chain(&c.from.objects)
        .find(|o| o.id() == *id)
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
    for (id, what) in all_ids(&c.diff) {
        if let Some(tool) = find(c, id).and_then(hooks::migration_tool) {
            items.push(format!("{} {} ({tool}) {what}", id.kind, id.name));
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

/// Sync hooks that changed and run no known migration tool: say what is
/// known (when they run), and that rewind cannot tell what they do.
fn hook(c: &Comparison) -> Option<Risk> {
    let mut items = Vec::new();
    for (id, what) in all_ids(&c.diff) {
        let Some(object) = find(c, id) else {
            continue;
        };
        if hooks::migration_tool(object).is_some() {
            continue;
        }
        if let Some(phase) = hooks::hook_phase(object) {
            items.push((phase, id, what));
        }
    }
    match items.as_slice() {
        [] => None,
        [(phase, id, what)] => Some(Risk::new(
            RiskCode::Hook,
            format!(
                "a {phase} hook {} ({}, which {what}) {}; rewind cannot tell what it changes",
                id.kind,
                id.name,
                hooks::phase_words(phase)
            ),
        )),
        many => {
            let named: Vec<String> = many
                .iter()
                .map(|(phase, id, what)| {
                    format!(
                        "{phase} hook {} {} {what} ({})",
                        id.kind,
                        id.name,
                        hooks::phase_words(phase)
                    )
                })
                .collect();
            Some(Risk::new(
                RiskCode::Hook,
                format!(
                    "sync hooks change: {}; rewind cannot tell what they change",
                    name_some(&named)
                ),
            ))
        }
    }
}

/// Workloads on both sides whose references to content-hashed generated
/// ConfigMaps/Secrets differ: the rename makes them restart.
fn rollout(c: &Comparison) -> Option<Risk> {
    let hashed = |objects: &[Object]| -> BTreeSet<(String, Option<String>, String)> {
        objects
            .iter()
            .filter(|o| o.generated == Some(true))
            .map(|o| {
                let id = o.id();
                (id.kind, id.namespace, id.name)
            })
            .collect()
    };
    let (old_hashed, new_hashed) = (hashed(&c.from.objects), hashed(&c.to.objects));
    let generated_refs = |object: &Object, set: &BTreeSet<(String, Option<String>, String)>| {
        let namespace = object.id().namespace;
        nameref::refs_of(object)
            .into_iter()
            .filter(|(kind, name)| {
                set.contains(&(kind.to_string(), namespace.clone(), name.clone()))
            })
            .collect::<Vec<_>>()
    };
    let mut workloads = Vec::new();
    let mut renamed = BTreeSet::new();
    for change in &c.diff.changed {
        if !ROLLING_KINDS.contains(&change.id.kind.as_str()) {
            continue;
        }
        let old = c.from.objects.iter().find(|o| o.id() == change.id);
        let new = c.to.objects.iter().find(|o| o.id() == change.id);
        let (Some(old), Some(new)) = (old, new) else {
            continue;
        };
        let (before, after) = (
            generated_refs(old, &old_hashed),
            generated_refs(new, &new_hashed),
        );
        if before != after {
            workloads.push(format!("{} {}", change.id.kind, change.id.name));
            for (kind, name) in after.iter().filter(|r| !before.contains(r)) {
                renamed.insert(format!("{kind} {name}"));
            }
        }
    }
    if workloads.is_empty() {
        return None;
    }
    let renamed: Vec<String> = renamed.into_iter().collect();
    Some(Risk::new(
        RiskCode::Rollout,
        format!(
            "generated config gets a new content-hash name ({}), so {} will restart",
            name_some(&renamed),
            name_some(&workloads)
        ),
    ))
}

/// Workloads that roll their pods when their pod template changes.
const ROLLING_KINDS: [&str; 5] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
];

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryTree;

    fn app(level: &str) -> MemoryTree {
        MemoryTree::new()
            .with(
                "app/kustomization.yaml",
                format!("resources: [d.yaml]\nconfigMapGenerator:\n- name: cfg\n  literals: [LEVEL={level}]\n"),
            )
            .with(
                "app/d.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n    spec:\n      containers:\n      - name: api\n        image: 'reg/api:1'\n        envFrom: [{configMapRef: {name: cfg}}]\n",
            )
    }

    #[test]
    fn a_generated_config_change_names_the_workloads_that_restart() {
        let (current, target) = (app("debug"), app("info"));
        let diff = crate::semantic_diff(&current, &target, "app").unwrap();
        assert_eq!(diff.added.len(), 1, "{}", diff.render_text());
        assert_eq!(diff.removed.len(), 1);
        assert_eq!(diff.changed[0].id.name, "api");
        let new_name = &diff.added[0].id.name;
        let risks = rollback_risks(&current, &target, "app", &[]).unwrap();
        assert_eq!(
            risks,
            [Risk::new(
                RiskCode::Rollout,
                format!(
                    "generated config gets a new content-hash name (ConfigMap {new_name}), so Deployment api will restart"
                )
            )]
        );
    }
}
