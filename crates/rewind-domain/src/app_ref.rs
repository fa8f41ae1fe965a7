//! An app's identity: its name *and* its cluster. The same Argo CD or Flux
//! name on two clusters (one instance per cluster is the common layout) is
//! two apps with two histories, so everything rewind keys by app (ledger
//! rows, jobs, locks, the breaker, alert matches, URLs) uses an [`AppRef`].
//!
//! The textual form is `NAME@CLUSTER`. `@` cannot occur in a Kubernetes name
//! and [`AppName`] and [`ClusterName`] both refuse it, so the form is
//! unambiguous: the first `@` separates the two.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{AppName, DomainError};

/// A cluster as rewind names it: Argo CD's `spec.destination.name`, a
/// `[[clusters]]` entry's name, the `{cluster}` of a webhook path, a Flux
/// event's `cluster` metadata, or `[[apps]].cluster`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct ClusterName(String);

impl ClusterName {
    /// The cluster an Argo CD or Flux instance runs on, when nothing names it.
    pub const IN_CLUSTER: &'static str = "in-cluster";
    /// Longest name accepted: a DNS name (253).
    pub const MAX_LEN: usize = 253;

    pub fn new(name: impl Into<String>) -> Result<Self, DomainError> {
        let name = name.into();
        if name.is_empty() {
            return Err(DomainError::invalid(
                "cluster name",
                &name,
                "must not be empty",
            ));
        }
        if name.len() > Self::MAX_LEN {
            return Err(DomainError::invalid(
                "cluster name",
                &name,
                "longer than 253 bytes",
            ));
        }
        if name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '@')
        {
            return Err(DomainError::invalid(
                "cluster name",
                &name,
                "must not contain `@`, whitespace or control characters",
            ));
        }
        Ok(ClusterName(name))
    }

    /// `in-cluster`: the cluster of the instance that sent the event.
    pub fn in_cluster() -> Self {
        ClusterName(Self::IN_CLUSTER.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ClusterName {
    fn default() -> Self {
        Self::in_cluster()
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ClusterName {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ClusterName::new(value)
    }
}

impl From<ClusterName> for String {
    fn from(value: ClusterName) -> Self {
        value.0
    }
}

impl FromStr for ClusterName {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClusterName::new(s)
    }
}

/// An app's identity: `NAME@CLUSTER`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppRef {
    pub name: AppName,
    pub cluster: ClusterName,
}

impl AppRef {
    pub fn new(name: AppName, cluster: ClusterName) -> Self {
        AppRef { name, cluster }
    }

    /// A reference as users type it: `NAME@CLUSTER`, or a plain `NAME`
    /// (the cluster is then `None`, to be resolved against the apps the
    /// ledger knows).
    pub fn parse_reference(s: &str) -> Result<(AppName, Option<ClusterName>), DomainError> {
        match s.split_once('@') {
            Some((name, cluster)) => Ok((AppName::new(name)?, Some(ClusterName::new(cluster)?))),
            None => Ok((AppName::new(s)?, None)),
        }
    }
}

impl fmt::Display for AppRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.cluster)
    }
}

impl FromStr for AppRef {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match AppRef::parse_reference(s)? {
            (name, Some(cluster)) => Ok(AppRef { name, cluster }),
            (_, None) => Err(DomainError::invalid(
                "app reference",
                s,
                "must be `NAME@CLUSTER`",
            )),
        }
    }
}

impl TryFrom<String> for AppRef {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<AppRef> for String {
    fn from(value: AppRef) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn references_parse_and_print() {
        let r: AppRef = "shop/checkout@prod-eu".parse().unwrap();
        assert_eq!(r.name.as_str(), "shop/checkout");
        assert_eq!(r.cluster.as_str(), "prod-eu");
        assert_eq!(r.to_string(), "shop/checkout@prod-eu");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            "\"shop/checkout@prod-eu\""
        );
        let (name, cluster) = AppRef::parse_reference("checkout").unwrap();
        assert_eq!((name.as_str(), cluster), ("checkout", None));
        for bad in ["checkout", "@prod", "checkout@", "a@b@c", "a b@c", "a@b c"] {
            assert!(bad.parse::<AppRef>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(ClusterName::default().as_str(), "in-cluster");
        // Unnamed Argo CD destinations keep their server URL as the name.
        assert!(ClusterName::new("https://10.0.0.1:6443").is_ok());
    }

    proptest! {
        #[test]
        fn display_and_parse_are_inverse(
            name in "[a-z0-9-]{1,20}(/[a-z0-9.-]{1,20})?",
            cluster in "[a-zA-Z0-9:/._-]{1,40}",
        ) {
            let r = AppRef::new(AppName::new(name).unwrap(), ClusterName::new(cluster).unwrap());
            prop_assert_eq!(r.to_string().parse::<AppRef>().unwrap(), r);
        }
    }
}
