//! Credentials for fetch and push, and scrubbing of secrets from libgit2's
//! messages.
//!
//! The token and key are handed to libgit2 only through the credentials
//! callback; the remote is always used anonymously (never saved in the
//! cache's config), so no secret is written to disk.

use std::cell::Cell;

use git2::{Cred, CredentialType, RemoteCallbacks};

use crate::GitSettings;
use crate::settings::redact_url;

/// Username sent with a token over HTTPS when the URL names none. GitHub
/// and Gitea accept any name with a token; this one is GitHub's documented
/// choice.
const TOKEN_USER: &str = "x-access-token";

/// How many times libgit2 may ask for credentials in one operation. It asks
/// again after a refusal; without a bound a wrong token loops forever.
const MAX_CREDENTIAL_ATTEMPTS: u32 = 3;

/// Callbacks that answer libgit2's credential requests from the settings.
pub(crate) fn callbacks(settings: &GitSettings) -> RemoteCallbacks<'_> {
    let mut callbacks = RemoteCallbacks::new();
    let attempts = Cell::new(0u32);
    callbacks.credentials(move |_url, username_from_url, allowed| {
        attempts.set(attempts.get() + 1);
        if attempts.get() > MAX_CREDENTIAL_ATTEMPTS {
            return Err(git2::Error::from_str(
                "the remote refused the configured credentials",
            ));
        }
        if allowed.contains(CredentialType::SSH_KEY)
            && let Some(key) = &settings.ssh_key
        {
            return Cred::ssh_key(username_from_url.unwrap_or("git"), None, key, None);
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if let Some(token) = &settings.token {
                return Cred::userpass_plaintext(username_from_url.unwrap_or(TOKEN_USER), token);
            }
            // `https://user:token@host/...` in git.url: the password part.
            if let Some((user, password)) = url_userinfo(&settings.url) {
                return Cred::userpass_plaintext(&user, &password);
            }
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(username_from_url.unwrap_or("git"));
        }
        Err(git2::Error::from_str(
            "the remote asks for credentials and none are configured (git.token or git.ssh_key)",
        ))
    });
    callbacks
}

/// The user name and password written in an HTTP(S) URL, percent-decoded.
fn url_userinfo(url: &str) -> Option<(String, String)> {
    let parsed = url::Url::parse(url).ok()?;
    let password = parsed.password()?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((decode(parsed.username()), decode(password)))
}

/// Removes every secret of the settings from a message.
#[derive(Clone)]
pub(crate) struct Redactor {
    secrets: Vec<(String, String)>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor")
    }
}

impl Redactor {
    pub(crate) fn new(settings: &GitSettings) -> Self {
        let mut secrets = Vec::new();
        // The full URL first, so it is replaced by its redacted form rather
        // than piecemeal.
        let redacted = redact_url(&settings.url);
        if redacted != settings.url {
            secrets.push((settings.url.clone(), redacted));
            if let Ok(url) = url::Url::parse(&settings.url) {
                if let Some(password) = url.password().filter(|p| p.len() >= 4) {
                    secrets.push((password.to_string(), "***".to_string()));
                }
                if url.username().len() >= 8 {
                    // Tokens are often passed as the user name.
                    secrets.push((url.username().to_string(), "***".to_string()));
                }
            }
        }
        if let Some(token) = settings.token.as_ref().filter(|t| !t.is_empty()) {
            secrets.push((token.clone(), "***".to_string()));
        }
        Redactor { secrets }
    }

    pub(crate) fn clean(&self, message: &str) -> String {
        let mut out = message.to_string();
        for (secret, replacement) in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), replacement);
            }
        }
        out
    }

    pub(crate) fn git(&self, e: &git2::Error) -> String {
        self.clean(e.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_url_password_and_token() {
        let mut settings = GitSettings::new(
            "https://bot:s3cr3t-pass@git.example/acme/gitops.git",
            "main",
            "/tmp/x",
        );
        settings.token = Some("ghp_abcdefgh".into());
        let r = Redactor::new(&settings);
        let msg = "failed https://bot:s3cr3t-pass@git.example/acme/gitops.git; token ghp_abcdefgh; pass s3cr3t-pass";
        let clean = r.clean(msg);
        assert!(
            !clean.contains("s3cr3t") && !clean.contains("ghp_"),
            "{clean}"
        );
        assert!(
            clean.contains("https://***@git.example/acme/gitops.git"),
            "{clean}"
        );
    }

    #[test]
    fn userinfo_is_decoded_for_the_credentials_callback() {
        assert_eq!(
            url_userinfo("https://bot:p%40ss%2Fword@host/r.git"),
            Some(("bot".to_string(), "p@ss/word".to_string()))
        );
        assert_eq!(url_userinfo("https://host/r.git"), None);
        assert_eq!(url_userinfo("git@host:r.git"), None);
    }
}
