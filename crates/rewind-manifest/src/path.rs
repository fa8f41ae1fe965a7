//! Repository-relative paths: joining a kustomization's references onto its
//! directory, telling remote references from local ones, and refusing local
//! ones that leave the repository.

/// Joins `reference` onto `dir`, resolving `.` and `..`. `None` when the
/// result would leave the repository (or the reference is absolute).
pub fn join(dir: &str, reference: &str) -> Option<String> {
    if reference.starts_with('/') || reference.starts_with('\\') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in reference.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// Whether a symbolic link at `link` whose target text is `target` points
/// outside the repository: an absolute target, one that climbs above the
/// root, one into `.git`, or one no Git checkout resolves the same way on
/// every system (backslashes, control characters, empty).
pub fn link_escapes(link: &str, target: &str) -> bool {
    target.is_empty()
        || target.contains('\\')
        || target.chars().any(char::is_control)
        || target.split('/').any(|part| part == ".git")
        || join(parent(link), target).is_none()
}

/// The directory holding `path` (`""` for top-level entries).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The last component of `path`.
pub fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// Whether `path` is `dir` or lies below it (`""` is the repository root).
pub fn is_within(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// `parent/name`, or `name` at the root.
pub fn child(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Normalises a user-given app path: no leading `./` or `/`, no trailing `/`.
pub fn normalize(path: &str) -> Option<String> {
    join("", path.trim_start_matches('/'))
}

/// Whether a kustomization reference points outside the repository: a URL,
/// an scp-like Git address, or a `host/org/repo?ref=` remote base.
pub fn is_remote(reference: &str) -> bool {
    let r = reference.trim();
    r.contains("://")
        || r.starts_with("git@")
        || r.starts_with("git::")
        || r.contains("?ref=")
        || r.contains(".git//")
        || ["github.com/", "gitlab.com/", "bitbucket.org/"]
            .iter()
            .any(|host| r.starts_with(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_that_leave_the_repository() {
        assert!(link_escapes("apps/a/passwd.yaml", "/etc/passwd"));
        assert!(link_escapes("apps/a/x.yaml", "../../../x.yaml"));
        assert!(link_escapes("apps/a/x", "../../.git/config"));
        assert!(link_escapes("a", "C:\\x"));
        assert!(!link_escapes("apps/a/x.yaml", "../../shared/x.yaml"));
        assert!(!link_escapes("apps/a/x.yaml", "y.yaml"));
    }

    #[test]
    fn joins_and_refuses_escapes() {
        assert_eq!(
            join("apps/a/overlays/prod", "../../base").as_deref(),
            Some("apps/a/base")
        );
        assert_eq!(
            join("apps/a", "./x/../y.yaml").as_deref(),
            Some("apps/a/y.yaml")
        );
        assert_eq!(join("apps", "../../etc"), None);
        assert_eq!(join("apps", "/etc/passwd"), None);
        assert_eq!(join("", "..").as_deref(), None);
    }

    #[test]
    fn within_is_component_wise() {
        assert!(is_within("apps/a/x.yaml", "apps/a"));
        assert!(is_within("apps/a", "apps/a"));
        assert!(!is_within("apps/ab/x.yaml", "apps/a"));
        assert!(is_within("anything", ""));
    }

    #[test]
    fn remote_references() {
        assert!(is_remote("github.com/org/repo/deploy?ref=v1"));
        assert!(is_remote("https://example.com/x.yaml"));
        assert!(is_remote("git@github.com:org/repo.git"));
        assert!(!is_remote("../../base"));
    }
}
