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

/// Every path the app at `app_path` reads at this tree: its own directory
/// and the local directories and files its kustomizations reference,
/// recursively.
///
/// Until `rewind_manifest::app_inputs` lands this is the app path alone.
pub(crate) fn app_inputs(
    _tree: &GitTree<'_>,
    _commit: &CommitId,
    app_path: &str,
) -> Result<BTreeSet<String>, GitError> {
    Ok(BTreeSet::from([app_path.to_string()]))
}

/// The app's config hash at this tree, when the manifest layer can tell.
pub(crate) fn config_hash(
    _tree: &GitTree<'_>,
    _commit: &CommitId,
    _app_path: &str,
) -> Result<Option<ConfigHash>, GitError> {
    Ok(None)
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
