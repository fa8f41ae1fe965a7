//! Pagination of every list endpoint: `?limit=N` and `?cursor=C`.
//!
//! The answer stays a JSON array in the list's own order (newest first,
//! apps by name). When more items follow, the answer names the next page
//! twice: `X-Next-Cursor: C` and `Link: <same query, cursor=C>;
//! rel="next"`. A cursor is opaque to clients: base64url of the list's
//! kind and the last item's key, so the next page starts strictly after
//! that item (keyset pagination: what was created meanwhile cannot shift
//! or repeat items). Without `limit` and `cursor` an endpoint answers what
//! it always answered.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::error::ApiError;

/// The largest page one request may ask for.
pub const MAX_LIMIT: u32 = 1000;

/// The header that carries the next page's cursor.
pub const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");

/// Which list a cursor belongs to: a cursor of one list is refused by
/// another instead of silently meaning something else there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Apps,
    History,
    Rollbacks,
    Audit,
    Tokens,
}

impl ListKind {
    fn tag(self) -> &'static str {
        match self {
            ListKind::Apps => "apps",
            ListKind::History => "history",
            ListKind::Rollbacks => "rollbacks",
            ListKind::Audit => "audit",
            ListKind::Tokens => "tokens",
        }
    }
}

/// What a request asked for: how many, and after which item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// The last item's key from the previous page.
    pub after: Option<String>,
    /// Whether the caller asked for a page at all (`limit` or `cursor`).
    pub paged: bool,
}

impl PageRequest {
    /// The previous page's last key as the list's key type; a cursor whose
    /// key does not parse is refused like any foreign cursor.
    pub fn after_key<K: std::str::FromStr>(&self) -> Result<Option<K>, ApiError> {
        self.after
            .as_deref()
            .map(|raw| {
                raw.parse::<K>()
                    .map_err(|_| ApiError::bad_request("cursor: not a cursor of this list"))
            })
            .transpose()
    }

    /// Parses `limit` and `cursor` as the query carried them; `default` is
    /// the limit when none is given.
    pub fn parse(
        kind: ListKind,
        limit: Option<&str>,
        cursor: Option<&str>,
        default: u32,
    ) -> Result<PageRequest, ApiError> {
        let limit = limit.filter(|l| !l.is_empty());
        let cursor = cursor.filter(|c| !c.is_empty());
        let parsed = match limit {
            None => default,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "limit: {:?} is not a whole number from 1 to {MAX_LIMIT}",
                        shorten(raw)
                    )));
                }
            },
        };
        let after = cursor.map(|c| decode_cursor(kind, c)).transpose()?;
        Ok(PageRequest {
            limit: parsed,
            after,
            paged: limit.is_some() || cursor.is_some(),
        })
    }

    /// How many items to fetch: one more than the page, to learn whether
    /// another page follows.
    pub fn fetch(&self) -> u32 {
        self.limit.saturating_add(1)
    }
}

fn shorten(raw: &str) -> String {
    raw.chars().take(40).collect()
}

/// The cursor that starts after the item whose key is `key`.
pub fn encode_cursor(kind: ListKind, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{key}", kind.tag()))
}

fn decode_cursor(kind: ListKind, raw: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "cursor: {:?} is not a cursor of this list; pass the X-Next-Cursor value of a previous \
             answer of the same endpoint",
            shorten(raw)
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (tag, key) = text.split_once(':').ok_or_else(bad)?;
    if tag != kind.tag() || key.is_empty() {
        return Err(bad());
    }
    Ok(key.to_string())
}

/// One page of a list, ready to answer.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
    /// The request's path and query, for the `Link` header.
    pub uri: Uri,
}

impl<T> Page<T> {
    /// Cuts `fetched` (up to `request.fetch()` items) to the page and
    /// names the next one when there is more.
    pub fn cut(
        kind: ListKind,
        request: &PageRequest,
        mut fetched: Vec<T>,
        uri: Uri,
        key: impl Fn(&T) -> String,
    ) -> Page<T> {
        let limit = request.limit as usize;
        let next = if fetched.len() > limit {
            fetched.truncate(limit);
            fetched.last().map(|last| encode_cursor(kind, &key(last)))
        } else {
            None
        };
        Page {
            items: fetched,
            next,
            uri,
        }
    }
}

impl<T> Page<T> {
    /// The same page with every item made into what the answer shows.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
            uri: self.uri,
        }
    }
}

/// The request's URI with `cursor` set to `next`, every other parameter
/// kept as it was.
fn next_link(uri: &Uri, next: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(raw) = uri.query() {
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            if k != "cursor" {
                query.append_pair(&k, &v);
            }
        }
    }
    query.append_pair("cursor", next);
    format!("<{}?{}>; rel=\"next\"", uri.path(), query.finish())
}

impl<T: Serialize> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.items).into_response();
        if let Some(next) = &self.next {
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(next) {
                headers.insert(NEXT_CURSOR, value);
            }
            if let Ok(value) = HeaderValue::from_str(&next_link(&self.uri, next)) {
                headers.insert(header::LINK, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_range_are_refused_naming_the_parameter() {
        for bad in ["0", "-1", "abc", "1001", "1.5"] {
            let e = PageRequest::parse(ListKind::Rollbacks, Some(bad), None, 100).unwrap_err();
            assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
            assert!(e.detail.starts_with("limit: "), "{e:?}");
        }
        let ok = PageRequest::parse(ListKind::Rollbacks, Some("1000"), None, 100).unwrap();
        assert_eq!((ok.limit, ok.paged, ok.fetch()), (1000, true, 1001));
        let default = PageRequest::parse(ListKind::Rollbacks, None, Some(""), 100).unwrap();
        assert_eq!((default.limit, default.paged), (100, false));
    }

    #[test]
    fn cursors_round_trip_and_belong_to_one_list() {
        let cursor = encode_cursor(ListKind::Audit, "42");
        let request = PageRequest::parse(ListKind::Audit, None, Some(&cursor), 100).unwrap();
        assert_eq!(request.after.as_deref(), Some("42"));
        assert!(request.paged);
        for bad in [cursor.as_str(), "!!", "bm90LWEtY3Vyc29y"] {
            let e = PageRequest::parse(ListKind::Rollbacks, None, Some(bad), 100).unwrap_err();
            assert!(e.detail.starts_with("cursor: "), "{e:?}");
        }
    }

    #[test]
    fn the_next_link_keeps_the_query_and_replaces_the_cursor() {
        let uri: Uri = "/api/v1/rollbacks?app=shop%40eu&cursor=old&limit=2"
            .parse()
            .unwrap();
        assert_eq!(
            next_link(&uri, "abc"),
            "</api/v1/rollbacks?app=shop%40eu&limit=2&cursor=abc>; rel=\"next\""
        );
    }
}
