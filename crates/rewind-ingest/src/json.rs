//! JSON decoding that names the field that broke. Errors carry the JSON path
//! (`app.status.history[2].id`) from `serde_path_to_error`, so a sender's
//! operator sees which part of the payload to fix.

use serde::de::DeserializeOwned;

use crate::IngestError;

/// Longest error detail echoed back: serde messages quote the offending
/// value, and even an authenticated sender is untrusted input.
const MAX_DETAIL: usize = 300;

/// Decodes `bytes` as one JSON document of type `T`. Invalid UTF-8, bad
/// syntax, truncation, wrong types, nesting deeper than serde_json's
/// recursion limit and trailing garbage all become [`IngestError::Malformed`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, IngestError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = field_name(&error.path().to_string());
        IngestError::malformed(field, bounded(error.into_inner().to_string()))
    })?;
    deserializer
        .end()
        .map_err(|error| IngestError::malformed("body", bounded(error.to_string())))?;
    Ok(value)
}

/// `serde_path_to_error` prints the root as `.`; the response says `body`.
fn field_name(path: &str) -> String {
    if path.is_empty() || path == "." {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

fn bounded(detail: String) -> String {
    if detail.chars().count() <= MAX_DETAIL {
        detail
    } else {
        let mut short: String = detail.chars().take(MAX_DETAIL).collect();
        short.push('…');
        short
    }
}
