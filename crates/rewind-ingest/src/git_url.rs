//! Repository URL comparison. Argo CD apps name their repository as the user
//! typed it (`https://github.com/Org/Repo.git`, `git@github.com:Org/Repo`,
//! `ssh://git@github.com/Org/Repo`); rewind must recognise `git.url` in all
//! of those spellings to decide whether an app is rollbackable.

/// A canonical `host/path` form: scheme, user and port dropped, host
/// lowercased, leading and trailing `/` and a trailing `.git` removed. Paths
/// keep their case, because only some hosts ignore it.
pub fn normalize_git_url(url: &str) -> String {
    let url = url.trim();
    let (host, path) = if let Some((_scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        (host_of(authority), path)
    } else if let Some((user_host, path)) = url.split_once(':')
        && !user_host.contains('/')
        && !user_host.is_empty()
    {
        // scp-like syntax: `[user@]host:path`.
        (host_of(user_host), path)
    } else {
        // A local path: the same as `file://` with an empty host.
        ("", url)
    };
    let path = path.trim_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    format!("{}/{}", host.to_ascii_lowercase(), path)
}

/// Whether two repository URLs name the same repository.
pub fn same_repository(a: &str, b: &str) -> bool {
    !a.trim().is_empty() && normalize_git_url(a) == normalize_git_url(b)
}

fn host_of(authority: &str) -> &str {
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.starts_with('[') {
        // IPv6 literal: keep the brackets, drop a port after them.
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        host.split(':').next().unwrap_or(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_repository_are_equal() {
        let canonical = "https://github.com/acme/gitops";
        for other in [
            "https://github.com/acme/gitops.git",
            "https://github.com/acme/gitops/",
            "https://GitHub.com/acme/gitops.git/",
            "git@github.com:acme/gitops.git",
            "ssh://git@github.com/acme/gitops",
            "ssh://git@github.com:22/acme/gitops.git",
            "https://user:pass@github.com/acme/gitops",
        ] {
            assert!(same_repository(canonical, other), "{other}");
        }
        assert!(same_repository("file:///srv/gitops.git", "/srv/gitops"));
    }

    #[test]
    fn different_repositories_differ() {
        let canonical = "https://github.com/acme/gitops";
        for other in [
            "https://github.com/acme/gitops-infra",
            "https://gitlab.com/acme/gitops",
            "https://github.com/other/gitops",
            "git@github.com:acme/other.git",
            "",
        ] {
            assert!(!same_repository(canonical, other), "{other}");
        }
        assert!(!same_repository("", ""));
    }
}
