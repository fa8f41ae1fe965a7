//! A token issuer for a registry configured with `auth: token:`, per the
//! distribution token spec: `GET /token?service=…&scope=…` with HTTP basic
//! credentials answers `{"token": <JWT>}`, the JWT signed RS256 by a key
//! whose self-signed certificate (made with the `openssl` CLI) is the
//! registry's `rootcertbundle`, the certificate in the header's `x5c`.
//! Grants what the scope asks to the one known user; counts the tokens it
//! issued, so a test can tell the bearer flow ran.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

/// `iss` of the tokens; the registry's `auth.token.issuer`.
pub const ISSUER: &str = "rewind-test-issuer";
/// `aud` of the tokens; the registry's `auth.token.service`.
pub const SERVICE: &str = "rewind-test-registry";

/// A running issuer.
#[derive(Debug)]
pub struct TokenIssuer {
    /// `http://127.0.0.1:PORT/token`: the registry's `auth.token.realm`.
    pub realm: String,
    /// PEM certificate of the signing key: the registry's `rootcertbundle`.
    pub cert_path: PathBuf,
    issued: Arc<AtomicUsize>,
    key: Arc<Signer>,
}

#[derive(Debug)]
struct Signer {
    key_pem: Vec<u8>,
    cert_der_base64: String,
    user: String,
    password: String,
}

impl TokenIssuer {
    /// Makes a key and certificate in `dir` and serves the token endpoint
    /// for `user`/`password`.
    pub async fn start(dir: &Path, user: &str, password: &str) -> TokenIssuer {
        let key_path = dir.join("token-key.pem");
        let cert_path = dir.join("token-cert.pem");
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=rewind-test-issuer", "-keyout"])
            .arg(&key_path)
            .arg("-out")
            .arg(&cert_path)
            .output()
            .expect("openssl");
        assert!(
            made.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let cert_pem = std::fs::read_to_string(&cert_path).expect("certificate");
        // A PEM body is the base64 of the DER: `x5c` wants exactly that.
        let cert_der_base64: String = cert_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let key = Arc::new(Signer {
            key_pem: std::fs::read(&key_path).expect("key"),
            cert_der_base64,
            user: user.to_string(),
            password: password.to_string(),
        });
        let issued = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/token", axum::routing::get(token))
            .with_state((key.clone(), issued.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        TokenIssuer {
            realm,
            cert_path,
            issued,
            key,
        }
    }

    /// How many tokens were issued so far.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }

    /// A token for `scope` (`repository:NAME:pull,push`), as the issuer
    /// would grant it: for the test's own pushes.
    pub fn token_for(&self, scope: &str) -> String {
        self.key.sign(scope)
    }
}

impl Signer {
    fn sign(&self, scope: &str) -> String {
        let access: Vec<serde_json::Value> = scope
            .split(' ')
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "iss": ISSUER,
            "sub": self.user,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", rand_suffix()),
            "access": access,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.x5c = Some(vec![self.cert_der_base64.clone()]);
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&self.key_pem).expect("RSA key");
        jsonwebtoken::encode(&header, &claims, &key).expect("sign")
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    service: Option<String>,
    scope: Option<String>,
}

async fn token(
    State((key, issued)): State<(Arc<Signer>, Arc<AtomicUsize>)>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", key.user, key.password))
    );
    let authorized = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str());
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
    }
    if query.service.as_deref() != Some(SERVICE) {
        return (StatusCode::BAD_REQUEST, "unknown service").into_response();
    }
    let token = key.sign(query.scope.as_deref().unwrap_or_default());
    issued.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"token": token, "access_token": token, "expires_in": 300})).into_response()
}
