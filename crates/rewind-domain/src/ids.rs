//! Validated identifiers. Each is a newtype whose constructor checks the
//! contract's format, so code that holds one never re-validates it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// The key of an app: Argo CD's app name (`namespace/name` outside the
/// control-plane namespace) or Flux's `namespace/name`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct AppName(String);

impl AppName {
    /// Longest name accepted: a Kubernetes namespace (63) + `/` + a resource
    /// name (253).
    pub const MAX_LEN: usize = 317;

    pub fn new(name: impl Into<String>) -> Result<Self, DomainError> {
        let name = name.into();
        if name.is_empty() {
            return Err(DomainError::invalid("app name", &name, "must not be empty"));
        }
        if name.len() > Self::MAX_LEN {
            return Err(DomainError::invalid(
                "app name",
                &name,
                "longer than 317 bytes",
            ));
        }
        // `@` separates the name from the cluster in `NAME@CLUSTER`; it
        // cannot occur in a Kubernetes name either.
        if name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '@')
        {
            return Err(DomainError::invalid(
                "app name",
                &name,
                "must not contain `@`, whitespace or control characters",
            ));
        }
        if name.matches('/').count() > 1 || name.starts_with('/') || name.ends_with('/') {
            return Err(DomainError::invalid(
                "app name",
                &name,
                "must be `name` or `namespace/name`",
            ));
        }
        Ok(AppName(name))
    }

    /// Flux and namespaced Argo CD apps are keyed `namespace/name`.
    pub fn namespaced(namespace: &str, name: &str) -> Result<Self, DomainError> {
        Self::new(format!("{namespace}/{name}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AppName {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        AppName::new(value)
    }
}

impl From<AppName> for String {
    fn from(value: AppName) -> Self {
        value.0
    }
}

impl FromStr for AppName {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AppName::new(s)
    }
}

/// A full Git commit id: 40 lowercase hex digits (SHA-1 repositories).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct CommitId(String);

impl CommitId {
    pub fn new(sha: impl AsRef<str>) -> Result<Self, DomainError> {
        let sha = sha.as_ref();
        if sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(CommitId(sha.to_ascii_lowercase()))
        } else {
            Err(DomainError::invalid("commit", sha, "must be 40 hex digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 7-digit abbreviation used in messages (`Revert app to 1a2b3c4`).
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CommitId {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CommitId::new(value)
    }
}

impl From<CommitId> for String {
    fn from(value: CommitId) -> Self {
        value.0
    }
}

impl FromStr for CommitId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CommitId::new(s)
    }
}

/// `sha256:<64 hex>`: the app's config hash (see `docs/config-hash.md`).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct ConfigHash(String);

impl ConfigHash {
    pub const PREFIX: &'static str = "sha256:";

    pub fn new(value: impl AsRef<str>) -> Result<Self, DomainError> {
        let value = value.as_ref();
        match value.strip_prefix(Self::PREFIX) {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(ConfigHash(value.to_ascii_lowercase()))
            }
            _ => Err(DomainError::invalid(
                "config hash",
                value,
                "must be `sha256:` followed by 64 hex digits",
            )),
        }
    }

    /// Builds the hash from a raw 32-byte SHA-256 digest.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        let mut s = String::with_capacity(71);
        s.push_str(Self::PREFIX);
        for byte in digest {
            s.push_str(&format!("{byte:02x}"));
        }
        ConfigHash(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConfigHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ConfigHash {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ConfigHash::new(value)
    }
}

impl From<ConfigHash> for String {
    fn from(value: ConfigHash) -> Self {
        value.0
    }
}

impl FromStr for ConfigHash {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConfigHash::new(s)
    }
}

/// A rollback's id: a UUIDv7, so ids sort by creation time.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct RollbackId(uuid::Uuid);

impl RollbackId {
    /// A fresh id. Ids are made once, when a rollback is first recorded, and
    /// every later step reuses it: branch names derive from it.
    pub fn generate() -> Self {
        RollbackId(uuid::Uuid::now_v7())
    }

    pub fn from_uuid(id: uuid::Uuid) -> Self {
        RollbackId(id)
    }

    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for RollbackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RollbackId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(RollbackId)
            .map_err(|_| DomainError::invalid("rollback id", s, "must be a UUID"))
    }
}

/// The app part of a rollback branch `rewind/<slug>/<rollback-id>`:
/// lowercase `[a-z0-9-]`, no leading, trailing or doubled `-`, at most 48
/// characters, never empty. Anything else in the name becomes `-`.
pub fn branch_slug(app: &AppName) -> String {
    const MAX: usize = 48;
    let mut slug = String::with_capacity(app.as_str().len().min(MAX));
    for c in app.as_str().chars() {
        let c = c.to_ascii_lowercase();
        let keep = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if keep == '-' && (slug.is_empty() || slug.ends_with('-')) {
            continue;
        }
        slug.push(keep);
        if slug.len() >= MAX {
            break;
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() {
        slug.push_str("app");
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn app_names() {
        assert!(AppName::new("shop/checkout").is_ok());
        assert!(AppName::new("guestbook").is_ok());
        for bad in ["", "a/b/c", "/a", "a/", "has space", "tab\tname", "a@b"] {
            assert!(AppName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn commit_ids_are_normalized() {
        let id = CommitId::new("ABCDEF0123456789abcdef0123456789ABCDEF01").unwrap();
        assert_eq!(id.as_str(), "abcdef0123456789abcdef0123456789abcdef01");
        assert_eq!(id.short(), "abcdef0");
        assert!(CommitId::new("abc").is_err());
        assert!(CommitId::new("g".repeat(40)).is_err());
    }

    #[test]
    fn config_hash_format() {
        let h = ConfigHash::from_digest([0xab; 32]);
        assert_eq!(h.as_str().len(), 71);
        assert_eq!(ConfigHash::new(h.as_str()).unwrap(), h);
        assert!(ConfigHash::new("sha1:abcd").is_err());
    }

    #[test]
    fn slugs() {
        let slug = |s: &str| branch_slug(&AppName::new(s).unwrap());
        assert_eq!(slug("shop/checkout"), "shop-checkout");
        assert_eq!(slug("Shop/Check__Out"), "shop-check-out");
        assert_eq!(slug("__/__"), "app");
        assert_eq!(slug(&"a".repeat(300)).len(), 48);
    }

    proptest! {
        #[test]
        fn slug_is_always_a_safe_ref_component(name in "[^\\s/]{1,80}(/[^\\s/]{1,80})?") {
            if let Ok(app) = AppName::new(name) {
                let slug = branch_slug(&app);
                prop_assert!(!slug.is_empty() && slug.len() <= 48);
                prop_assert!(slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                prop_assert!(!slug.starts_with('-') && !slug.ends_with('-') && !slug.contains("--"));
            }
        }
    }
}
