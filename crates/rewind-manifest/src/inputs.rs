//! An app's inputs at a commit: every file Argo CD or Flux reads to render
//! it. The app's directory, plus whatever its kustomizations reference,
//! followed recursively without loops. Remote references are recorded, not
//! fetched; a local reference that leaves the repository is an error.

use std::collections::{BTreeSet, VecDeque};

use serde::Serialize;

use crate::error::ManifestError;
use crate::finding::{Finding, FindingCode};
use crate::kustomization::{self, Kustomization};
use crate::path;
use crate::source::{CachedTree, EntryKind, TreeSource};

/// Directory depth beyond which a walk stops (a finding says so).
const MAX_WALK_DEPTH: usize = 64;

/// What an app reads at one commit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppInputs {
    pub app_path: String,
    /// Whole subtrees: the app's directory and referenced directories.
    pub dirs: BTreeSet<String>,
    /// Individual files outside those directories.
    pub files: BTreeSet<String>,
    /// Files whose bytes become ConfigMap/Secret data (generator inputs):
    /// hashed by bytes even when they are YAML.
    pub data_files: BTreeSet<String>,
    /// The subset of `data_files` that feed Secrets: diffs never show
    /// their content.
    pub secret_files: BTreeSet<String>,
    /// Remote references (URLs, `github.com/...?ref=`), not fetched.
    pub remote: Vec<String>,
    pub warnings: Vec<Finding>,
}

/// One concrete entry under an app's inputs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InputEntry {
    pub path: String,
    pub kind: EntryKind,
}

impl AppInputs {
    /// Whether `path` (a file or directory) is read by the app.
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains(path) || self.dirs.iter().any(|dir| path::is_within(path, dir))
    }

    /// Every concrete file (and symlink) of the inputs that exists in `src`.
    pub fn all_files(&self, src: &dyn TreeSource) -> Result<BTreeSet<String>, ManifestError> {
        Ok(self
            .entries(src)?
            .into_iter()
            .filter(|e| e.kind != EntryKind::Submodule)
            .map(|e| e.path)
            .collect())
    }

    /// A [`FindingCode::Symlink`] warning for every symbolic link among the
    /// inputs, naming where it points: rewind never follows links, so it
    /// cannot say what Argo CD or Flux would read through them.
    pub fn symlinks(&self, src: &dyn TreeSource) -> Result<Vec<Finding>, ManifestError> {
        let mut findings = Vec::new();
        for entry in self.entries(src)? {
            if entry.kind != EntryKind::Symlink {
                continue;
            }
            let target = src.read_file(&entry.path)?.unwrap_or_default();
            let target: String = String::from_utf8_lossy(&target).chars().take(200).collect();
            let outside = if path::link_escapes(&entry.path, &target) {
                ", outside the repository"
            } else {
                ""
            };
            findings.push(Finding::warning(
                FindingCode::Symlink,
                &entry.path,
                format!("symbolic link to {target:?}{outside}; never followed"),
            ));
        }
        Ok(findings)
    }

    /// Every concrete entry, sorted by path, with its kind.
    pub fn entries(&self, src: &dyn TreeSource) -> Result<Vec<InputEntry>, ManifestError> {
        let mut out = Vec::new();
        for dir in &self.dirs {
            walk(src, dir, 0, &mut out)?;
        }
        for file in &self.files {
            match src.kind(file)? {
                None | Some(EntryKind::Dir) => {}
                Some(kind) => out.push(InputEntry {
                    path: file.clone(),
                    kind,
                }),
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

fn walk(
    src: &dyn TreeSource,
    dir: &str,
    depth: usize,
    out: &mut Vec<InputEntry>,
) -> Result<(), ManifestError> {
    let Some(entries) = src.list_dir(dir)? else {
        return Ok(());
    };
    for entry in entries {
        let path = path::child(dir, &entry.name);
        match entry.kind {
            EntryKind::Dir if depth < MAX_WALK_DEPTH => walk(src, &path, depth + 1, out)?,
            EntryKind::Dir => {}
            kind => out.push(InputEntry { path, kind }),
        }
    }
    Ok(())
}

/// What to do with a local reference that leaves the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escapes {
    /// Fail with [`ManifestError::Escape`]: the config hash of such an app
    /// is undefined (`docs/config-hash.md`).
    Refuse,
    /// Skip the reference and record an [`FindingCode::Escape`] warning:
    /// for diffs, risks and doctor, which must describe a broken commit
    /// rather than fail on it.
    Report,
}

/// The inputs of the app at `app_path`.
pub fn app_inputs(src: &dyn TreeSource, app_path: &str) -> Result<AppInputs, ManifestError> {
    app_inputs_with(src, app_path, Escapes::Refuse)
}

/// [`app_inputs`], with escaping references handled as `escapes` says.
pub fn app_inputs_with(
    src: &dyn TreeSource,
    app_path: &str,
    escapes: Escapes,
) -> Result<AppInputs, ManifestError> {
    let cached = CachedTree::new(src);
    let src = &cached;
    let app_path = normalize_app_path(app_path)?;
    if src.kind(&app_path)? != Some(EntryKind::Dir) {
        return Err(ManifestError::AppNotFound { path: app_path });
    }
    let mut inputs = AppInputs {
        app_path: app_path.clone(),
        ..AppInputs::default()
    };
    inputs.dirs.insert(app_path.clone());
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([app_path.clone()]);
    seen.insert(app_path.clone());
    while let Some(dir) = queue.pop_front() {
        let Some(k) = kustomization::load(src, &dir, &mut inputs.warnings)? else {
            continue;
        };
        follow(src, &k, escapes, &mut inputs, &mut seen, &mut queue)?;
    }
    // Keep the sets minimal: no file inside a listed directory, no
    // directory inside another.
    let dirs: Vec<String> = inputs.dirs.iter().cloned().collect();
    inputs.dirs.retain(|d| {
        !dirs
            .iter()
            .any(|other| other != d && path::is_within(d, other))
    });
    let dirs = inputs.dirs.clone();
    inputs
        .files
        .retain(|f| !dirs.iter().any(|d| path::is_within(f, d)));
    inputs.remote.sort();
    inputs.remote.dedup();
    inputs.warnings.sort();
    inputs.warnings.dedup();
    Ok(inputs)
}

/// Checks and normalises an app path given by a caller.
pub fn normalize_app_path(app_path: &str) -> Result<String, ManifestError> {
    path::normalize(app_path).ok_or_else(|| ManifestError::InvalidPath {
        path: app_path.to_string(),
        reason: "leaves the repository",
    })
}

/// Records everything `k` references and queues referenced directories.
fn follow(
    src: &dyn TreeSource,
    k: &Kustomization,
    escapes: Escapes,
    inputs: &mut AppInputs,
    seen: &mut BTreeSet<String>,
    queue: &mut VecDeque<String>,
) -> Result<(), ManifestError> {
    // `None`: an escaping reference, reported and skipped.
    let resolve = |reference: &str, warnings: &mut Vec<Finding>| {
        resolve_reference(k, reference, escapes, warnings)
    };
    let mut dir_refs: Vec<&str> = k.resources();
    dir_refs.extend(k.components());
    for reference in dir_refs {
        if path::is_remote(reference) {
            inputs.remote.push(reference.to_string());
            continue;
        }
        let Some(target) = resolve(reference, &mut inputs.warnings)? else {
            continue;
        };
        if src.kind(&target)? == Some(EntryKind::Dir) {
            inputs.dirs.insert(target.clone());
            if seen.insert(target.clone()) {
                queue.push_back(target);
            }
        } else {
            note_file(src, k, &target, reference, inputs)?;
        }
    }
    let mut file_refs = k.patch_files();
    file_refs.extend(k.other_files());
    for reference in file_refs {
        if path::is_remote(reference) {
            inputs.remote.push(reference.to_string());
            continue;
        }
        if let Some(target) = resolve(reference, &mut inputs.warnings)? {
            note_file(src, k, &target, reference, inputs)?;
        }
    }
    for reference in k.data_files() {
        if let Some(target) = resolve(reference, &mut inputs.warnings)? {
            note_file(src, k, &target, reference, inputs)?;
            inputs.data_files.insert(target);
        }
    }
    for reference in k.generator_files("secretGenerator") {
        if let Some(target) = resolve(reference, &mut inputs.warnings)? {
            inputs.secret_files.insert(target);
        }
    }
    if let Some(home) = k.chart_home()
        && let Some(target) = resolve(home, &mut inputs.warnings)?
        && src.kind(&target)? == Some(EntryKind::Dir)
    {
        inputs.dirs.insert(target);
    }
    Ok(())
}

/// `reference` joined onto `k`'s directory; `Ok(None)` for one that
/// escapes the repository when `escapes` is [`Escapes::Report`] (a warning
/// names it).
pub(crate) fn resolve_reference(
    k: &Kustomization,
    reference: &str,
    escapes: Escapes,
    warnings: &mut Vec<Finding>,
) -> Result<Option<String>, ManifestError> {
    if let Some(target) = path::join(&k.dir, reference) {
        return Ok(Some(target));
    }
    match escapes {
        Escapes::Refuse => Err(ManifestError::Escape {
            kustomization: k.file.clone(),
            reference: reference.to_string(),
        }),
        Escapes::Report => {
            warnings.push(Finding::warning(
                FindingCode::Escape,
                &k.file,
                format!(
                    "reference {:?} escapes the repository; not followed",
                    reference.chars().take(200).collect::<String>()
                ),
            ));
            Ok(None)
        }
    }
}

fn note_file(
    src: &dyn TreeSource,
    k: &Kustomization,
    target: &str,
    reference: &str,
    inputs: &mut AppInputs,
) -> Result<(), ManifestError> {
    if src.kind(target)?.is_none() {
        inputs.warnings.push(Finding::warning(
            FindingCode::MissingPath,
            &k.file,
            format!("references {reference:?}, which does not exist"),
        ));
    }
    // Recorded even when missing: if it appears later it is an input.
    inputs.files.insert(target.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryTree;

    fn repo() -> MemoryTree {
        MemoryTree::new()
            .with("apps/a/overlays/prod/kustomization.yaml", "resources: [../../base]\npatches:\n- path: patch.yaml\n")
            .with("apps/a/overlays/prod/patch.yaml", "kind: Deployment\n")
            .with("apps/a/base/kustomization.yaml", "resources:\n- deploy.yaml\n- ../../../bases/redis\n- ../../../crds/thing.yaml\n- github.com/org/repo/x?ref=v1\nconfigMapGenerator:\n- name: c\n  files: [conf=../../../shared/app.conf]\n  envs: [../../../shared/app.env]\n")
            .with("apps/a/base/deploy.yaml", "kind: Deployment\n")
            .with("bases/redis/kustomization.yaml", "resources: [d.yaml, ../redis]\n")
            .with("bases/redis/d.yaml", "kind: Deployment\n")
            .with("crds/thing.yaml", "kind: CustomResourceDefinition\n")
            .with("shared/app.conf", "x=1\n")
            .with("shared/app.env", "A=1\n")
            .with("unrelated/x.yaml", "a: 1\n")
    }

    #[test]
    fn follows_references_recursively_without_loops() {
        let inputs = app_inputs(&repo(), "apps/a/overlays/prod/").unwrap();
        assert_eq!(
            inputs.dirs.iter().map(String::as_str).collect::<Vec<_>>(),
            ["apps/a/base", "apps/a/overlays/prod", "bases/redis"]
        );
        assert_eq!(
            inputs.files.iter().map(String::as_str).collect::<Vec<_>>(),
            ["crds/thing.yaml", "shared/app.conf", "shared/app.env"]
        );
        assert_eq!(inputs.remote, ["github.com/org/repo/x?ref=v1"]);
        assert!(inputs.contains("apps/a/base/deploy.yaml"));
        assert!(!inputs.contains("unrelated/x.yaml"));
        assert!(inputs.data_files.contains("shared/app.conf"));
        let all = inputs.all_files(&repo()).unwrap();
        assert_eq!(all.len(), 9);
    }

    #[test]
    fn escaping_reference_is_an_error_and_missing_one_a_finding() {
        let src = MemoryTree::new().with("app/kustomization.yaml", "resources: [../../../etc]\n");
        assert!(matches!(
            app_inputs(&src, "app"),
            Err(ManifestError::Escape { .. })
        ));
        let inputs = app_inputs_with(&src, "app", Escapes::Report).unwrap();
        assert_eq!(inputs.warnings[0].code, FindingCode::Escape);
        assert_eq!(
            inputs.warnings[0].path.as_deref(),
            Some("app/kustomization.yaml")
        );
        let src = MemoryTree::new().with("app/kustomization.yaml", "resources: [gone.yaml]\n");
        let inputs = app_inputs(&src, "app").unwrap();
        assert_eq!(inputs.warnings[0].code, FindingCode::MissingPath);
        assert!(matches!(
            app_inputs(&src, "nope"),
            Err(ManifestError::AppNotFound { .. })
        ));
    }
}
