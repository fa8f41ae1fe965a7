//! `rewind doctor`: rollback-readiness findings across a repository. Finds
//! the apps (directories with a kustomization under `overlays/`, or every
//! kustomization root when there are none) and checks each for mutable
//! image tags, short revision history, config consumed under fixed names,
//! schema migrations (files, and Jobs running a known migration tool;
//! up-migrations without a down), other sync hooks (a notice: what they
//! do is unknown), StatefulSets with volume claim templates, symbolic links
//! and references that escape the repository.

use std::collections::BTreeSet;

use crate::error::ManifestError;
use crate::finding::{Finding, FindingCode};
use crate::hooks;
use crate::inputs::{Escapes, app_inputs_with};
use crate::kustomization::{self, kustomization_file};
use crate::node::Node;
use crate::path;
use crate::render::{Object, render_with};
use crate::risk::{is_migration_file, is_mutable_image, low_history_limits};
use crate::source::{CachedTree, EntryKind, TreeSource};

/// Directory depth the app discovery walks to.
const MAX_DISCOVERY_DEPTH: usize = 16;

/// The apps of a repository: directories holding a kustomization whose
/// parent is named `overlays`; when there are none, every kustomization
/// that no other kustomization includes.
pub fn discover_apps(src: &dyn TreeSource) -> Result<Vec<String>, ManifestError> {
    let mut kustomizations = Vec::new();
    collect(src, "", 0, &mut kustomizations)?;
    let overlays: Vec<String> = kustomizations
        .iter()
        .filter(|dir| path::file_name(path::parent(dir)) == "overlays")
        .cloned()
        .collect();
    if !overlays.is_empty() {
        return Ok(overlays);
    }
    let mut included = BTreeSet::new();
    for dir in &kustomizations {
        let mut ignored = Vec::new();
        if let Some(k) = kustomization::load(src, dir, &mut ignored)? {
            for reference in k.resources().into_iter().chain(k.components()) {
                if let Some(target) = path::join(&k.dir, reference) {
                    included.insert(target);
                }
            }
        }
    }
    Ok(kustomizations
        .into_iter()
        .filter(|d| !included.contains(d))
        .collect())
}

fn collect(
    src: &dyn TreeSource,
    dir: &str,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), ManifestError> {
    let Some(entries) = src.list_dir(dir)? else {
        return Ok(());
    };
    if kustomization_file(dir, &entries).is_some() {
        out.push(dir.to_string());
    }
    if depth >= MAX_DISCOVERY_DEPTH {
        return Ok(());
    }
    for entry in entries {
        if entry.kind == EntryKind::Dir && !entry.name.starts_with('.') {
            collect(src, &path::child(dir, &entry.name), depth + 1, out)?;
        }
    }
    Ok(())
}

/// Findings for the given app paths, or for every discovered app.
pub fn doctor(
    src: &dyn TreeSource,
    paths: Option<&[String]>,
) -> Result<Vec<Finding>, ManifestError> {
    let apps = match paths {
        Some(paths) => paths.to_vec(),
        None => discover_apps(src)?,
    };
    let mut findings = Vec::new();
    for app in &apps {
        findings.extend(check_app(src, app)?.into_iter().map(|f| f.for_app(app)));
    }
    findings.sort_by(|a, b| {
        (&a.app, &a.path, a.code, &a.detail).cmp(&(&b.app, &b.path, b.code, &b.detail))
    });
    findings.dedup();
    Ok(findings)
}

/// The findings of one app.
pub fn check_app(src: &dyn TreeSource, app: &str) -> Result<Vec<Finding>, ManifestError> {
    let cached = CachedTree::new(src);
    let src: &dyn TreeSource = &cached;
    // A broken reference is a finding here, not a failure of the whole run.
    let inputs = app_inputs_with(src, app, Escapes::Report)?;
    let rendered = render_with(src, app, Escapes::Report)?;
    let mut findings: Vec<Finding> = inputs.warnings.clone();
    findings.extend(rendered.warnings.iter().cloned());
    findings.extend(inputs.symlinks(src)?);
    let objects = &rendered.objects;

    for object in objects {
        let mut images = Vec::new();
        let mut body = object.body.clone();
        crate::render::for_each_image(&mut body, &mut |image| images.push(image.clone()));
        for image in images.into_iter().filter(|i| is_mutable_image(i)) {
            findings.push(Finding::warning(
                FindingCode::MutableImage,
                &object.source,
                format!(
                    "{} {} runs {image}: a mutable tag, so rolling back to this commit may not bring back the same code",
                    object.kind(),
                    object.name()
                ),
            ));
        }
    }
    for item in low_history_limits(objects) {
        findings.push(Finding::warning(
            FindingCode::HistoryLimit,
            app,
            format!("{item}: revisionHistoryLimit below 3 leaves few ReplicaSets to roll back to"),
        ));
    }
    findings.extend(static_config(objects));

    let files = inputs.all_files(src)?;
    let sql: Vec<&String> = files.iter().filter(|f| is_migration_file(f)).collect();
    let jobs: Vec<(&Object, &str)> = objects
        .iter()
        .filter_map(|o| hooks::migration_tool(o).map(|tool| (o, tool)))
        .collect();
    if !sql.is_empty() || !jobs.is_empty() {
        let mut what = Vec::new();
        if !sql.is_empty() {
            what.push(format!("{} migration files", sql.len()));
        }
        for (job, tool) in &jobs {
            what.push(format!("{} {} runs {tool}", job.kind(), job.name()));
        }
        findings.push(Finding::warning(
            FindingCode::Migration,
            app,
            format!(
                "runs schema migrations ({}): a rollback does not undo them",
                what.join(", ")
            ),
        ));
    }
    for object in objects {
        if hooks::migration_tool(object).is_some() {
            continue;
        }
        if let Some(phase) = hooks::hook_phase(object) {
            findings.push(Finding::notice(
                FindingCode::Hook,
                &object.source,
                format!(
                    "a {phase} hook {} ({}) {}; rewind cannot tell what it changes, and a rollback does not undo it",
                    object.kind(),
                    object.name(),
                    hooks::phase_words(&phase)
                ),
            ));
        }
    }
    for up in files.iter().filter(|f| f.ends_with(".up.sql")) {
        let down = format!("{}.down.sql", up.trim_end_matches(".up.sql"));
        if !files.contains(&down) {
            findings.push(Finding::warning(
                FindingCode::Migration,
                up.as_str(),
                "up-migration without a down-migration: a rollback cannot reverse it",
            ));
        }
    }
    for object in objects.iter().filter(|o| o.kind() == "StatefulSet") {
        if !object
            .body
            .at(&["spec", "volumeClaimTemplates"])
            .map_or(&[][..], Node::as_seq)
            .is_empty()
        {
            findings.push(Finding::warning(
                FindingCode::Stateful,
                &object.source,
                format!(
                    "StatefulSet {} has volumeClaimTemplates: data on its volumes is not rolled back, and the templates cannot change in place",
                    object.name()
                ),
            ));
        }
    }
    Ok(findings)
}

/// ConfigMaps and Secrets the app defines under a fixed name (not from a
/// hashing generator) and its pods consume: rolling back their data does
/// not restart the pods.
fn static_config(objects: &[Object]) -> Vec<Finding> {
    let mut consumed: BTreeSet<(&'static str, String)> = BTreeSet::new();
    for object in objects {
        collect_refs(&object.body, &mut consumed);
    }
    objects
        .iter()
        .filter(|o| matches!(o.kind(), "ConfigMap" | "Secret") && o.generated != Some(true))
        .filter(|o| {
            let kind = if o.kind() == "ConfigMap" { "ConfigMap" } else { "Secret" };
            consumed.contains(&(kind, o.name().to_string()))
        })
        .map(|o| {
            Finding::notice(
                FindingCode::StaticConfig,
                &o.source,
                format!(
                    "{} {} is consumed under a fixed name: rolling back its data does not restart the pods that read it (use a generator with a name hash)",
                    o.kind(),
                    o.name()
                ),
            )
        })
        .collect()
}

fn collect_refs(node: &Node, out: &mut BTreeSet<(&'static str, String)>) {
    match node {
        Node::Map(map) => {
            for (key, value) in map {
                let kind = match key.as_str() {
                    "configMapRef" | "configMapKeyRef" => Some(("ConfigMap", "name")),
                    "configMap" => Some(("ConfigMap", "name")),
                    "secretRef" | "secretKeyRef" => Some(("Secret", "name")),
                    "secret" => Some(("Secret", "secretName")),
                    _ => None,
                };
                if let Some((kind, field)) = kind
                    && let Some(name) = value.get(field).and_then(Node::as_str)
                {
                    out.insert((kind, name.to_string()));
                }
                collect_refs(value, out);
            }
        }
        Node::Seq(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}
