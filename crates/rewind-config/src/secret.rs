//! Values that must never be printed: tokens, keys, passwords in URLs.
//!
//! `Secret` hides its value in `Debug`, `Display` and `Serialize`; the only
//! way to read it is [`Secret::expose`], which makes every use greppable.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What secrets look like wherever they are shown.
pub const REDACTED: &str = "[redacted]";

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself: for comparing and sending, never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// A URL that may carry credentials (`postgres://user:pw@host/db`,
/// `https://token@host/repo.git`). Shown with the password replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(value: impl Into<String>) -> Self {
        SecretUrl(value.into())
    }

    /// The URL with its credentials, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password (or lone user token) replaced.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

/// Replaces the password of a URL, or its user name when there is no
/// password (a bare `https://<token>@host` carries the token there), and
/// the value of every query parameter that carries a credential.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        // Not a URL (a local path): nothing to hide.
        return raw.to_string();
    };
    let mut changed = false;
    if url.password().is_some() {
        let _ = url.set_password(Some(REDACTED));
        changed = true;
    } else if !url.username().is_empty() && matches!(url.scheme(), "http" | "https") {
        // A lone user name is a token only over HTTPS; a database or SSH
        // user name is not a secret.
        let _ = url.set_username(REDACTED);
        changed = true;
    }
    // `postgres://u@h/db?password=pw` (libpq and sqlx accept it), and
    // tokens some services take as query parameters.
    if url.query_pairs().any(|(key, _)| is_secret_parameter(&key)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if is_secret_parameter(&key) {
                    REDACTED.to_string()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed {
        url.to_string()
    } else {
        raw.to_string()
    }
}

/// Query parameters that carry credentials: `password`, `sslpassword`,
/// `token`, `access_token`, `secret`, `api_key`, ...
fn is_secret_parameter(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "passwd", "token", "secret", "key"]
        .iter()
        .any(|word| key.contains(word))
        && key != "sslkey"
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretUrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn urls_lose_their_credentials() {
        let cases = [
            (
                "postgres://rewind:pw@db:5432/rewind",
                "postgres://rewind:%5Bredacted%5D@db:5432/rewind",
            ),
            (
                "https://ghp_abc@github.com/acme/gitops.git",
                "https://%5Bredacted%5D@github.com/acme/gitops.git",
            ),
            ("sqlite://var/rewind.db", "sqlite://var/rewind.db"),
            (
                "postgres://rewind@db/rewind?password=pw&sslmode=require",
                "postgres://rewind@db/rewind?password=%5Bredacted%5D&sslmode=require",
            ),
            (
                "postgres://rewind:pw@db/rewind?sslpassword=pw",
                "postgres://rewind:%5Bredacted%5D@db/rewind?sslpassword=%5Bredacted%5D",
            ),
            (
                "postgres:///rewind?host=/run/postgresql&user=u&password=pw",
                "postgres:///rewind?host=%2Frun%2Fpostgresql&user=u&password=%5Bredacted%5D",
            ),
            ("var/gitops.git", "var/gitops.git"),
            (
                "ssh://git@github.com/acme/gitops.git",
                "ssh://git@github.com/acme/gitops.git",
            ),
        ];
        for (raw, shown) in cases {
            assert_eq!(redact_url(raw), shown, "{raw}");
            assert!(!format!("{:?}", SecretUrl::new(raw)).contains("pw@"));
        }
    }
}
