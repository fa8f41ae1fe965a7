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
    if let Some(field) = nul_field(bytes) {
        return Err(IngestError::malformed(
            field,
            "contains a NUL character (\\u0000), which rewind cannot record",
        ));
    }
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

/// The JSON path of the first string or key holding a NUL character, so
/// the delivery is refused with a 400 naming it before anything reaches a
/// database (PostgreSQL cannot store NUL in text; a sender would retry a 503
/// forever). JSON can only carry NUL as the escape `\u0000`, so bodies
/// without one (all real ones) pay a byte scan and nothing more.
pub fn nul_field(bytes: &[u8]) -> Option<String> {
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    // Not JSON: `decode` reports that itself.
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut path = String::new();
    find_nul(&value, &mut path).then(|| field_name(&path))
}

fn find_nul(value: &serde_json::Value, path: &mut String) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = find_nul(item, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        serde_json::Value::Object(map) => map.iter().any(|(key, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            // A NUL in a key is named by the key, made printable.
            path.push_str(&key.replace('\0', "\\u0000"));
            let found = key.contains('\0') || find_nul(item, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_anywhere_is_refused_naming_its_field() {
        let body = br#"{"app":{"labels":{"team":"a\u0000b"}},"list":["ok"]}"#;
        let error = decode::<serde_json::Value>(body).unwrap_err();
        assert_eq!(
            error,
            IngestError::malformed(
                "app.labels.team",
                "contains a NUL character (\\u0000), which rewind cannot record"
            )
        );
        let error = decode::<serde_json::Value>(br#"{"a":[1,{"b\u0000":2}]}"#).unwrap_err();
        assert!(matches!(error, IngestError::Malformed { field, .. } if field == "a[1].b\\u0000"));
        // An escaped backslash followed by `u0000` is text, not a NUL.
        assert!(decode::<serde_json::Value>(br#"{"a":"\\u0000"}"#).is_ok());
    }
}
