//! What the caller tells the crate about the GitOps repository, and how the
//! remote's URL is checked and shown.
//!
//! The config crate is someone else's: callers copy `[git]` into
//! [`GitSettings`], a plain struct, so this crate does not depend on it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::GitError;

/// The `[git]` section of the configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct GitSettings {
    /// The repository Argo CD or Flux syncs from: `file://`, `https://`,
    /// `ssh://`, scp-like `git@host:path`, or a local path.
    pub url: String,
    /// The branch the cluster follows (`main`).
    pub branch: String,
    /// Where the local bare cache lives; several remotes may share it.
    pub cache_dir: PathBuf,
    pub author_name: String,
    pub author_email: String,
    /// HTTPS token, given to the remote through the credentials callback,
    /// never written to disk.
    pub token: Option<String>,
    /// SSH private key for `ssh://` and scp-like URLs.
    pub ssh_key: Option<PathBuf>,
}

impl fmt::Debug for GitSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets never reach logs, not even through `{:?}`.
        f.debug_struct("GitSettings")
            .field("url", &redact_url(&self.url))
            .field("branch", &self.branch)
            .field("cache_dir", &self.cache_dir)
            .field("author_name", &self.author_name)
            .field("author_email", &self.author_email)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("ssh_key", &self.ssh_key)
            .finish()
    }
}

impl GitSettings {
    /// Settings for a remote with rewind's default author and no
    /// credentials.
    pub fn new(
        url: impl Into<String>,
        branch: impl Into<String>,
        cache_dir: impl Into<PathBuf>,
    ) -> Self {
        GitSettings {
            url: url.into(),
            branch: branch.into(),
            cache_dir: cache_dir.into(),
            author_name: "rewind".to_string(),
            author_email: "rewind@localhost".to_string(),
            token: None,
            ssh_key: None,
        }
    }

    /// Checks the URL and branch before any I/O, so a bad config fails at
    /// start-up with a message that names the field.
    pub fn validate(&self) -> Result<(), GitError> {
        check_url(&self.url)?;
        check_branch(&self.branch)?;
        if self.author_name.trim().is_empty() || self.author_email.trim().is_empty() {
            return Err(GitError::InvalidUrl {
                url: redact_url(&self.url),
                reason: "git.author_name and git.author_email must not be empty",
            });
        }
        Ok(())
    }

    /// The bare repository inside `cache_dir` that caches this remote:
    /// `<name>-<hash of the URL>.git`, so two remotes never share one.
    pub fn repo_dir(&self) -> PathBuf {
        self.cache_dir.join(cache_name(&self.url))
    }
}

/// Accepts the remote kinds libgit2 can talk to here.
fn check_url(url: &str) -> Result<(), GitError> {
    let invalid = |reason| GitError::InvalidUrl {
        url: redact_url(url),
        reason,
    };
    if url.trim().is_empty() {
        return Err(invalid("must not be empty"));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid("must not contain whitespace or control characters"));
    }
    if url.contains("://") {
        let parsed = url::Url::parse(url).map_err(|_| invalid("is not a valid URL"))?;
        return match parsed.scheme() {
            "file" | "http" | "https" | "ssh" | "git" => Ok(()),
            _ => Err(invalid("scheme must be file, https, http, ssh or git")),
        };
    }
    if Path::new(url).is_absolute() || is_scp_like(url) {
        return Ok(());
    }
    Err(invalid(
        "must be a URL (file://, https://, ssh://), user@host:path or an absolute path",
    ))
}

/// `git@github.com:acme/gitops.git`: a host part without `/` before the
/// first `:`.
fn is_scp_like(url: &str) -> bool {
    match url.split_once(':') {
        Some((host, path)) => !host.is_empty() && !host.contains('/') && !path.is_empty(),
        None => false,
    }
}

pub(crate) fn check_branch(branch: &str) -> Result<(), GitError> {
    let valid = !branch.is_empty()
        && git2::Branch::name_is_valid(branch).unwrap_or(false)
        && git2::Reference::is_valid_name(&format!("refs/heads/{branch}"));
    if !valid {
        return Err(GitError::InvalidBranch {
            name: branch.chars().take(120).collect(),
            reason: "not a valid Git branch name",
        });
    }
    Ok(())
}

/// The URL without its userinfo (`https://***@host/path`), fit for logs and
/// errors. Scp-like user names (`git@`) are not secrets and stay.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    match authority.rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &url[..authority_start],
            &url[authority_start + at..]
        ),
        None => url.to_string(),
    }
}

/// A file name for the cache of `url`: readable, and unique per URL.
fn cache_name(url: &str) -> String {
    let redacted = redact_url(url);
    let last = redacted
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .trim_end_matches(".git");
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    if name.is_empty() {
        name.push_str("repo");
    }
    // The full URL (credentials included) decides identity, but only a hash
    // of it reaches the file system.
    let digest = git2::Oid::hash_object(git2::ObjectType::Blob, url.as_bytes())
        .map(|oid| oid.to_string())
        .unwrap_or_default();
    format!("{name}-{}.git", &digest[..digest.len().min(12)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redacts_userinfo_only() {
        assert_eq!(
            redact_url("https://x-access-token:ghp_secret@github.com/acme/gitops.git"),
            "https://***@github.com/acme/gitops.git"
        );
        assert_eq!(redact_url("https://tok@h/p?q=1"), "https://***@h/p?q=1");
        assert_eq!(
            redact_url("https://github.com/a/b.git"),
            "https://github.com/a/b.git"
        );
        assert_eq!(
            redact_url("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
        assert_eq!(
            redact_url("file:///srv/gitops.git"),
            "file:///srv/gitops.git"
        );
    }

    #[test]
    fn accepts_supported_remotes_and_names_the_problem_otherwise() {
        for good in [
            "file:///srv/gitops.git",
            "https://github.com/acme/gitops.git",
            "ssh://git@host/acme/gitops.git",
            "git@github.com:acme/gitops.git",
            "/srv/gitops.git",
        ] {
            assert!(check_url(good).is_ok(), "{good} refused");
        }
        for bad in [
            "",
            "ftp://host/x",
            "relative/path",
            "https://host/with space",
        ] {
            let err = check_url(bad).expect_err(bad).to_string();
            assert!(err.contains("git.url"), "{err}");
        }
        let err = check_url("ftp://user:hunter2@host/x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn debug_hides_the_token() {
        let mut s = GitSettings::new("https://u:pw@host/r.git", "main", "/tmp/c");
        s.token = Some("tok-123".into());
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("tok-123") && !shown.contains("pw"),
            "{shown}"
        );
    }

    #[test]
    fn branch_names_are_checked() {
        assert!(check_branch("main").is_ok());
        assert!(check_branch("release/2024").is_ok());
        for bad in ["", "a..b", "-x", "a b", "x.lock", "a~1"] {
            assert!(check_branch(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cache_names_differ_per_remote_and_hide_credentials() {
        let a = cache_name("https://tok@host/acme/gitops.git");
        let b = cache_name("https://host/acme/gitops.git");
        assert_ne!(a, b);
        assert!(a.starts_with("gitops-") && a.ends_with(".git"), "{a}");
        assert!(!a.contains("tok"));
    }

    proptest! {
        #[test]
        fn redaction_never_leaks_a_password(user in "[a-z]{1,8}", pw in "[A-Za-z0-9_]{6,20}", host in "[a-z]{1,10}", path in "[a-z/]{0,20}") {
            let url = format!("https://{user}:{pw}@{host}.example/{path}");
            let red = redact_url(&url);
            prop_assert!(!red.contains(&pw));
            let expected_suffix = format!("@{host}.example/{path}");
            prop_assert!(red.ends_with(&expected_suffix));
        }

        #[test]
        fn cache_name_is_a_safe_file_name(url in "\\PC{0,80}") {
            let name = cache_name(&url);
            prop_assert!(name.ends_with(".git"));
            prop_assert!(!name.contains('/') && !name.contains(".."));
        }
    }
}
