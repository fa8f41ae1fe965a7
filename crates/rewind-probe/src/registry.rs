//! Image pre-flight: is a target image still served by its registry? One
//! `HEAD /v2/<repository>/manifests/<tag or digest>` over the OCI
//! distribution API, anonymous first, then the credentials a Docker
//! `config.json` holds for that registry: HTTP basic, or a bearer token
//! fetched from the realm the registry names (`WWW-Authenticate`).
//!
//! Loopback registries (`127.0.0.1`, `localhost`, `[::1]`) are spoken to
//! over plain HTTP, as Docker does; every other registry over HTTPS.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;

use crate::ProbeError;

/// What the registry said about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLookup {
    Found,
    /// The registry answered and has no such tag or digest.
    Missing(String),
    /// No answer either way (network, credentials, server error): a
    /// warning, not a refusal.
    Unreachable(String),
}

/// `registry/repository:tag` or `registry/repository@sha256:...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The host (and port) the API is on.
    pub registry: String,
    pub repository: String,
    /// A tag or a digest.
    pub reference: String,
}

impl ImageRef {
    /// Parses an image as Kubernetes manifests write it. Docker Hub names
    /// (`nginx`, `bitnami/redis`) resolve to `registry-1.docker.io`.
    pub fn parse(image: &str) -> Option<ImageRef> {
        let image = image.trim();
        if image.is_empty() || image.contains(char::is_whitespace) {
            return None;
        }
        let (name, reference) = match image.split_once('@') {
            Some((name, digest)) => (name, digest.to_string()),
            None => match image.rsplit_once(':') {
                Some((name, tag)) if !tag.contains('/') => (name, tag.to_string()),
                _ => (image, "latest".to_string()),
            },
        };
        let (first, rest) = name.split_once('/').unwrap_or(("", name));
        let explicit_host = !first.is_empty()
            && (first.contains('.') || first.contains(':') || first == "localhost");
        let (registry, repository) = if explicit_host {
            (first.to_string(), rest.to_string())
        } else if name.contains('/') {
            ("registry-1.docker.io".to_string(), name.to_string())
        } else {
            (
                "registry-1.docker.io".to_string(),
                format!("library/{name}"),
            )
        };
        if repository.is_empty() || reference.is_empty() {
            return None;
        }
        Some(ImageRef {
            registry,
            repository,
            reference,
        })
    }

    fn scheme(&self) -> &'static str {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        if host == "localhost" || host.starts_with("127.") || host == "[::1]" {
            "http"
        } else {
            "https"
        }
    }
}

/// The registries' credentials, by host (`auths` of a Docker config.json).
#[derive(Clone, Default)]
pub struct RegistryAuth {
    basic: HashMap<String, (String, String)>,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("hosts", &self.basic.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RegistryAuth {
    /// Reads a Docker `config.json` (`auths.<host>.auth` = base64
    /// `user:password`, or `username` and `password`).
    pub fn from_docker_config(path: &Path) -> Result<RegistryAuth, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        let mut basic = HashMap::new();
        for (host, entry) in doc["auths"].as_object().into_iter().flatten() {
            let pair = if let Some(auth) = entry["auth"].as_str() {
                base64::engine::general_purpose::STANDARD
                    .decode(auth)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| {
                        s.split_once(':')
                            .map(|(u, p)| (u.to_string(), p.to_string()))
                    })
            } else {
                entry["username"]
                    .as_str()
                    .zip(entry["password"].as_str())
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            };
            if let Some(pair) = pair {
                let host = host
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .trim_end_matches("/v1")
                    .to_string();
                // Docker writes Hub credentials under its v1 index name.
                let host = if host == "index.docker.io" || host == "docker.io" {
                    "registry-1.docker.io".to_string()
                } else {
                    host
                };
                basic.insert(host, pair);
            }
        }
        Ok(RegistryAuth { basic })
    }
}

/// Looks images up in their registries.
#[derive(Debug, Clone)]
pub struct Registry {
    client: reqwest::Client,
    auth: RegistryAuth,
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

impl Registry {
    pub fn new(timeout: Duration, auth: RegistryAuth) -> Result<Registry, ProbeError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| ProbeError::Client(e.to_string()))?;
        Ok(Registry { client, auth })
    }

    pub async fn lookup(&self, image: &str) -> ImageLookup {
        let Some(r) = ImageRef::parse(image) else {
            return ImageLookup::Unreachable(format!("{image:?} is not an image reference"));
        };
        let url = format!(
            "{}://{}/v2/{}/manifests/{}",
            r.scheme(),
            r.registry,
            r.repository,
            r.reference
        );
        let first = match self.head(&url, None).await {
            Ok(response) => response,
            Err(why) => return ImageLookup::Unreachable(format!("{}: {why}", r.registry)),
        };
        let response = if first.status() == reqwest::StatusCode::UNAUTHORIZED {
            let challenge = first
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let authorization = match self.authorization(&r, &challenge).await {
                Ok(a) => a,
                Err(why) => return ImageLookup::Unreachable(format!("{}: {why}", r.registry)),
            };
            match self.head(&url, Some(authorization)).await {
                Ok(response) => response,
                Err(why) => return ImageLookup::Unreachable(format!("{}: {why}", r.registry)),
            }
        } else {
            first
        };
        match response.status().as_u16() {
            200..=299 => ImageLookup::Found,
            404 => ImageLookup::Missing(format!(
                "{image}: {} serves no manifest for {}",
                r.registry, r.reference
            )),
            status => ImageLookup::Unreachable(format!("{} answered {status}", r.registry)),
        }
    }

    async fn head(
        &self,
        url: &str,
        authorization: Option<String>,
    ) -> Result<reqwest::Response, String> {
        let mut request = self
            .client
            .head(url)
            .header(reqwest::header::ACCEPT, ACCEPT);
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        request.send().await.map_err(|e| {
            if e.is_timeout() {
                "no answer in time".to_string()
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else {
                "request failed".to_string()
            }
        })
    }

    /// The `Authorization` value answering `challenge`.
    async fn authorization(&self, r: &ImageRef, challenge: &str) -> Result<String, String> {
        let credentials = self.auth.basic.get(&r.registry);
        let basic = |(user, password): &(String, String)| {
            let raw = format!("{user}:{password}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        };
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return credentials
                .map(basic)
                .ok_or_else(|| "needs credentials (none in the Docker config)".to_string());
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(format!("unsupported authentication {scheme:?}"));
        }
        let params = challenge_params(params);
        let realm = params
            .get("realm")
            .ok_or("the bearer challenge names no realm")?;
        let mut request = self.client.get(realm.as_str()).query(&[
            (
                "service",
                params.get("service").cloned().unwrap_or_default(),
            ),
            (
                "scope",
                params
                    .get("scope")
                    .cloned()
                    .unwrap_or_else(|| format!("repository:{}:pull", r.repository)),
            ),
        ]);
        if let Some(c) = credentials {
            request = request.header(reqwest::header::AUTHORIZATION, basic(c));
        }
        let answer: serde_json::Value = request
            .send()
            .await
            .map_err(|_| "the token service did not answer".to_string())?
            .error_for_status()
            .map_err(|e| {
                format!(
                    "the token service refused: {}",
                    e.status().map_or(0, |s| s.as_u16())
                )
            })?
            .json()
            .await
            .map_err(|_| "the token service answered no JSON".to_string())?;
        let token = answer["token"]
            .as_str()
            .or_else(|| answer["access_token"].as_str())
            .ok_or("the token service answered no token")?;
        Ok(format!("Bearer {token}"))
    }
}

/// `realm="https://auth",service="registry",scope="repository:x:pull"`.
fn challenge_params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((value, remaining)) => (value.to_string(), remaining),
                None => (quoted.to_string(), ""),
            },
            None => match after.split_once(',') {
                Some((value, remaining)) => (value.trim().to_string(), remaining),
                None => (after.trim().to_string(), ""),
            },
        };
        out.insert(key, value);
        rest = remaining.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_parse_as_docker_does() {
        let p = |s| ImageRef::parse(s).map(|r| (r.registry, r.repository, r.reference));
        let own = |a: &str, b: &str, c: &str| Some((a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(
            p("nginx"),
            own("registry-1.docker.io", "library/nginx", "latest")
        );
        assert_eq!(
            p("bitnami/redis:7"),
            own("registry-1.docker.io", "bitnami/redis", "7")
        );
        assert_eq!(
            p("127.0.0.1:5000/shop/checkout:v1.4.1"),
            own("127.0.0.1:5000", "shop/checkout", "v1.4.1")
        );
        assert_eq!(
            p("ghcr.io/acme/api@sha256:abc"),
            own("ghcr.io", "acme/api", "sha256:abc")
        );
        assert_eq!(p("localhost:5000/x"), own("localhost:5000", "x", "latest"));
        assert_eq!(p(""), None);
        assert_eq!(p("a b"), None);
    }

    #[test]
    fn bearer_challenges_are_read() {
        let params = challenge_params(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        );
        assert_eq!(params["realm"], "https://auth.example/token");
        assert_eq!(params["service"], "registry.example");
        assert_eq!(params["scope"], "repository:a/b:pull");
    }
}
