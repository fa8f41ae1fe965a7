//! Findings: problems found in a tree, each with a stable code, a
//! severity, the app and file it concerns and a one-line detail.

use std::fmt;

use rewind_domain::RiskCode;
use serde::Serialize;

/// Stable finding codes. The first eight are the contract's risk codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    Migration,
    Stateful,
    Scale,
    MutableImage,
    SharedChange,
    Crd,
    HistoryLimit,
    /// A sync hook that runs no known migration tool (contract risk `hook`).
    Hook,
    /// A ConfigMap or Secret consumed by pods under a fixed name: rolling
    /// its data back does not restart the pods that read it.
    StaticConfig,
    /// A YAML or JSON file that does not parse.
    InvalidYaml,
    /// A file over the size cap, not parsed.
    TooLarge,
    /// A binary file where YAML was expected.
    Binary,
    /// A symbolic link inside an app's inputs (never followed).
    Symlink,
    /// A reference to a path that does not exist.
    MissingPath,
    /// A remote base or resource: recorded, not fetched.
    Remote,
    /// A kustomize or Helm feature the built-in renderer does not apply.
    Unsupported,
    /// A kustomization that references itself through a loop.
    Cycle,
    /// A local reference that leaves the repository (`../../../etc`): not
    /// followed.
    Escape,
}

impl FindingCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::Migration => "migration",
            FindingCode::Stateful => "stateful",
            FindingCode::Scale => "scale",
            FindingCode::MutableImage => "mutable-image",
            FindingCode::SharedChange => "shared-change",
            FindingCode::Crd => "crd",
            FindingCode::HistoryLimit => "history-limit",
            FindingCode::Hook => "hook",
            FindingCode::StaticConfig => "static-config",
            FindingCode::InvalidYaml => "invalid-yaml",
            FindingCode::TooLarge => "too-large",
            FindingCode::Binary => "binary",
            FindingCode::Symlink => "symlink",
            FindingCode::MissingPath => "missing-path",
            FindingCode::Remote => "remote",
            FindingCode::Unsupported => "unsupported",
            FindingCode::Cycle => "cycle",
            FindingCode::Escape => "escape",
        }
    }

    /// Whether the finding means rewind cannot render or trust the file it
    /// names: such findings in a rollback's target are the `unrenderable`
    /// risk. Remote references and features the built-in renderer skips
    /// are not: what Argo CD or Flux renders from them is still what Git
    /// says.
    pub fn is_unrenderable(self) -> bool {
        matches!(
            self,
            FindingCode::InvalidYaml
                | FindingCode::TooLarge
                | FindingCode::Binary
                | FindingCode::Symlink
                | FindingCode::MissingPath
                | FindingCode::Cycle
                | FindingCode::Escape
        )
    }

    /// The contract risk code this finding corresponds to, if any.
    pub fn risk_code(self) -> Option<RiskCode> {
        Some(match self {
            FindingCode::Migration => RiskCode::Migration,
            FindingCode::Stateful => RiskCode::Stateful,
            FindingCode::Scale => RiskCode::Scale,
            FindingCode::MutableImage => RiskCode::MutableImage,
            FindingCode::SharedChange => RiskCode::SharedChange,
            FindingCode::Crd => RiskCode::Crd,
            FindingCode::HistoryLimit => RiskCode::HistoryLimit,
            FindingCode::Hook => RiskCode::Hook,
            _ => return None,
        })
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `warning`s make `rewind doctor` fail; `notice`s are advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Notice,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    /// The app path the finding was made for, when there is one.
    pub app: Option<String>,
    /// The file (or directory) concerned.
    pub path: Option<String>,
    pub detail: String,
}

impl Finding {
    pub fn warning(code: FindingCode, path: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            code,
            severity: Severity::Warning,
            app: None,
            path: Some(path.into()),
            detail: detail.into(),
        }
    }

    pub fn notice(code: FindingCode, path: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Notice,
            ..Finding::warning(code, path, detail)
        }
    }

    pub fn for_app(mut self, app: &str) -> Self {
        self.app = Some(app.to_string());
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        };
        write!(f, "{severity}[{}]", self.code)?;
        if let Some(path) = &self.path {
            write!(f, " {path}")?;
        }
        write!(f, ": {}", self.detail)
    }
}
