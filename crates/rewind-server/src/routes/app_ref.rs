//! App references in URLs and query strings: `NAME@CLUSTER` (percent-encoded
//! in a path: `shop%2Fcheckout@prod-eu`), or a plain `NAME` when only one
//! cluster runs an app of that name. A plain name several clusters run is a
//! `409` naming the clusters, never a guess.

use rewind_domain::{AppRef, DomainError};

use crate::error::ApiError;
use crate::state::AppState;

/// Resolves a reference as the caller wrote it. An unknown plain name is a
/// `404`; an explicit `NAME@CLUSTER` is returned as is (callers that need
/// the app to exist look it up and answer `404` themselves).
pub(crate) async fn resolve(state: &AppState, raw: &str) -> Result<AppRef, ApiError> {
    let (name, cluster) = AppRef::parse_reference(raw).map_err(|e| bad_reference(raw, e))?;
    if let Some(cluster) = cluster {
        return Ok(AppRef::new(name, cluster));
    }
    let clusters = state.ledger().app_clusters(&name).await?;
    match clusters.as_slice() {
        [] => Err(ApiError::not_found(format!("no app named {name}"))),
        [only] => Ok(AppRef::new(name, only.clone())),
        several => {
            let names: Vec<&str> = several.iter().map(|c| c.as_str()).collect();
            Err(ApiError::conflict(format!(
                "app {name} is ambiguous: it runs on clusters {}; name one as {name}@CLUSTER \
                 (for example {name}@{})",
                names.join(", "),
                names[0]
            )))
        }
    }
}

/// The `404` for a reference that names no app.
pub(crate) fn no_such_app(app: &AppRef) -> ApiError {
    ApiError::not_found(format!("no app {app}"))
}

fn bad_reference(raw: &str, e: DomainError) -> ApiError {
    let shown: String = raw.chars().take(120).collect();
    ApiError::bad_request(format!(
        "{e}; an app is named NAME or NAME@CLUSTER (got {shown:?})"
    ))
}

/// `value` as JSON with `ref` (`NAME@CLUSTER`) beside its `name`/`app` and
/// `cluster`: every API object that carries an app says it the way URLs,
/// the CLI and alerts take it (contract, Words).
pub(crate) fn with_ref(value: &impl serde::Serialize, app: &AppRef) -> serde_json::Value {
    let mut json = serde_json::to_value(value).unwrap_or_default();
    if let Some(object) = json.as_object_mut() {
        object.insert("ref".into(), app.to_string().into());
    }
    json
}

/// A rollback as the API answers it: with its app's `ref`.
pub(crate) fn rollback_json(rollback: &rewind_domain::Rollback) -> serde_json::Value {
    with_ref(rollback, &rollback.app_ref())
}
