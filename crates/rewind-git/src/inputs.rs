//! Which paths an app reads, and its config hash: the manifest crate's
//! answer, adapted to this crate's errors and path sets.

use std::collections::BTreeSet;

use rewind_domain::{CommitId, ConfigHash};

use crate::{GitError, GitTree};

/// A repository path as the manifest layer and Git both accept it:
/// `/`-separated, relative, no `.` or `..` or empty components.
pub(crate) fn normalize_path(path: &str) -> Result<String, GitError> {
    let invalid = |reason| GitError::InvalidPath {
        path: path.chars().take(200).collect(),
        reason,
    };
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Err(invalid("must name a directory or file below the root"));
    }
    if trimmed.contains('\\') || trimmed.chars().any(char::is_control) {
        return Err(invalid(
            "must not contain backslashes or control characters",
        ));
    }
    if trimmed
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == ".." || part == ".git")
    {
        return Err(invalid(
            "must not contain empty, `.`, `..` or `.git` components",
        ));
    }
    Ok(trimmed.to_string())
}

/// What an app reads at one tree.
#[derive(Debug)]
pub(crate) struct ViewInputs {
    /// The app path and every directory and file it reads.
    pub(crate) paths: BTreeSet<String>,
    /// The manifest layer's answer; `None` when the app does not exist in
    /// this tree.
    pub(crate) manifest: Option<rewind_manifest::AppInputs>,
}

/// Every path the app at `app_path` reads at this tree: its own directory
/// and the local directories and files its kustomizations reference,
/// recursively (`rewind_manifest::app_inputs`). An app missing at this
/// commit reads only its own (absent) path, so a restore removes or adds
/// it whole.
pub(crate) fn app_inputs(
    tree: &GitTree<'_>,
    commit: &CommitId,
    app_path: &str,
) -> Result<ViewInputs, GitError> {
    let mut paths = BTreeSet::from([app_path.to_string()]);
    // An escaping reference is skipped (it names nothing in the
    // repository), so a broken commit can still be rolled away from.
    match rewind_manifest::app_inputs_with(tree, app_path, rewind_manifest::Escapes::Report) {
        Ok(inputs) => {
            // Paths the manifest layer returns are already normalised; a
            // malformed one is skipped rather than trusted.
            paths.extend(
                inputs
                    .dirs
                    .iter()
                    .chain(inputs.files.iter())
                    .filter_map(|p| normalize_path(p).ok()),
            );
            Ok(ViewInputs {
                paths,
                manifest: Some(inputs),
            })
        }
        Err(rewind_manifest::ManifestError::AppNotFound { .. }) => Ok(ViewInputs {
            paths,
            manifest: None,
        }),
        Err(e) => Err(manifest_error(commit, app_path, &e)),
    }
}

/// The app's config hash at this tree, from inputs already computed on the
/// same tree; `None` when the app does not exist there.
pub(crate) fn config_hash(
    tree: &GitTree<'_>,
    commit: &CommitId,
    app_path: &str,
    inputs: &ViewInputs,
) -> Result<Option<ConfigHash>, GitError> {
    match &inputs.manifest {
        // The hash of an app with an escaping reference is undefined
        // (docs/config-hash.md): unknown, not wrong.
        Some(manifest)
            if manifest
                .warnings
                .iter()
                .any(|w| w.code == rewind_manifest::FindingCode::Escape) =>
        {
            Ok(None)
        }
        Some(manifest) => rewind_manifest::hash_inputs(tree, manifest)
            .map(Some)
            .map_err(|e| manifest_error(commit, app_path, &e)),
        None => Ok(None),
    }
}

fn manifest_error(
    commit: &CommitId,
    app_path: &str,
    e: &rewind_manifest::ManifestError,
) -> GitError {
    GitError::Manifest {
        app_path: app_path.to_string(),
        commit: commit.clone(),
        message: e.to_string(),
    }
}

/// Drops paths that lie inside another path of the set: restoring the
/// outer directory already restores them.
pub(crate) fn outermost(paths: BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    // Sorted order puts `a` before `a/b`; a `/` sorts before any name
    // character that could make `a-b` sit between them, except `-` and
    // `.`, so check every kept prefix rather than only the last.
    for path in paths {
        if !out.iter().any(|kept| is_within(&path, kept)) {
            out.push(path);
        }
    }
    out
}

/// `path` is `dir` or lies below it.
pub(crate) fn is_within(path: &str, dir: &str) -> bool {
    path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_or_refused() {
        assert_eq!(normalize_path("/apps/a/").unwrap(), "apps/a");
        for bad in [
            "",
            "/",
            "apps/../x",
            "apps//x",
            "./apps",
            "a/.git/config",
            "a\\b",
        ] {
            assert!(normalize_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn outermost_keeps_only_enclosing_paths() {
        let set: BTreeSet<String> = [
            "apps/a",
            "apps/a/base",
            "apps/a-b",
            "apps/ab",
            "bases/x/k.yaml",
            "bases/x",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(
            outermost(set),
            vec!["apps/a", "apps/a-b", "apps/ab", "bases/x"]
        );
        assert!(is_within("apps/a/b", "apps/a"));
        assert!(!is_within("apps/ab", "apps/a"));
    }
}
