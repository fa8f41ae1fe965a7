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
