//! What a check is, as plain data, and which apps it applies to.

use std::path::PathBuf;

/// One `[[verify.checks]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
    /// App references (`checkout`, `shop/checkout`, `checkout@prod-eu`);
    /// empty: every app.
    pub apps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    Query(QueryCheck),
    Http(HttpCheck),
}

/// A PromQL instant query and its bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryCheck {
    /// Templated PromQL; it must answer one number (a scalar or a vector of
    /// one sample).
    pub query: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// `no_worse_than = "known-good"`: the value may exceed the known-good
    /// window's value by at most this much (lower is better).
    pub max_delta_from_known_good: Option<f64>,
    /// Templated PromQL that answers nothing when there is too little
    /// evidence (for example `sum(increase(requests[2m])) >= 100`).
    pub min_evidence: Option<String>,
}

/// Where a header's value comes from. Secrets never live in the
/// configuration text: they are read from the environment or a file at each
/// evaluation, and never logged.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValueSource {
    /// A value that is not a secret (`Accept: application/json`).
    Plain(String),
    /// The named environment variable.
    Env(String),
    /// The file's contents, trailing newline removed (a mounted Secret).
    File(PathBuf),
}

/// An HTTP smoke check: the core path of the app, called for real.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Templated URL.
    pub url: String,
    pub headers: Vec<(String, HeaderValueSource)>,
    /// Templated body.
    pub body: Option<String>,
    pub expect_status: u16,
    /// A substring the body must contain.
    pub expect_body: Option<String>,
    /// A JSON pointer (`/order/id`) that must exist in the body and not be
    /// null.
    pub expect_json_pointer: Option<String>,
}

/// The app a check is evaluated for: what templates see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The app's name without its namespace (`checkout`).
    pub app: String,
    /// The namespace part of `shop/checkout`; empty when the name has none.
    pub namespace: String,
    pub cluster: String,
    /// `NAME@CLUSTER`, or the name alone when the cluster is unknown.
    pub reference: String,
}

impl Target {
    /// From the full app name (`shop/checkout` or `checkout`) and cluster.
    pub fn new(full_name: &str, cluster: &str) -> Target {
        let (namespace, app) = full_name.rsplit_once('/').unwrap_or(("", full_name));
        let reference = if cluster.is_empty() {
            full_name.to_string()
        } else {
            format!("{full_name}@{cluster}")
        };
        Target {
            app: app.to_string(),
            namespace: namespace.to_string(),
            cluster: cluster.to_string(),
            reference,
        }
    }

    fn full_name(&self) -> String {
        if self.namespace.is_empty() {
            self.app.clone()
        } else {
            format!("{}/{}", self.namespace, self.app)
        }
    }
}

impl Check {
    /// Whether the check applies to `target`: `apps` is empty, or one entry
    /// names the app (with or without its namespace) and, when it says
    /// `@CLUSTER`, its cluster.
    pub fn applies_to(&self, target: &Target) -> bool {
        if self.apps.is_empty() {
            return true;
        }
        let full = target.full_name();
        self.apps.iter().any(|entry| {
            let (name, cluster) = match entry.rsplit_once('@') {
                Some((name, cluster)) => (name, Some(cluster)),
                None => (entry.as_str(), None),
            };
            (name == full || name == target.app) && cluster.is_none_or(|c| c == target.cluster)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(apps: &[&str]) -> Check {
        Check {
            name: "c".into(),
            kind: CheckKind::Query(QueryCheck {
                query: "up".into(),
                min: None,
                max: Some(1.0),
                max_delta_from_known_good: None,
                min_evidence: None,
            }),
            apps: apps.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn targets_split_namespace_and_reference() {
        let t = Target::new("shop/checkout", "prod-eu");
        assert_eq!(
            (t.app.as_str(), t.namespace.as_str(), t.reference.as_str()),
            ("checkout", "shop", "shop/checkout@prod-eu")
        );
        assert_eq!(Target::new("checkout", "").reference, "checkout");
    }

    #[test]
    fn apps_select_by_name_namespace_and_cluster() {
        let eu = Target::new("shop/checkout", "prod-eu");
        let us = Target::new("shop/checkout", "prod-us");
        assert!(check(&[]).applies_to(&eu));
        assert!(check(&["checkout"]).applies_to(&us));
        assert!(check(&["shop/checkout"]).applies_to(&us));
        assert!(check(&["checkout@prod-eu"]).applies_to(&eu));
        assert!(!check(&["checkout@prod-eu"]).applies_to(&us));
        assert!(!check(&["payments"]).applies_to(&eu));
    }
}
