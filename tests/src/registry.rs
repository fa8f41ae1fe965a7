//! A real image registry (Debian's `docker-registry` package, CNCF
//! distribution) on a free loopback port with HTTP basic auth (htpasswd,
//! bcrypt from `apache2-utils`), and a Docker `config.json` holding its
//! credentials. Images are pushed by the test through the registry API.
//! [`Registry::start_with_tokens`] configures it with `auth: token:`
//! instead, tokens from a [`TokenIssuer`] on loopback (the bearer flow).
//!
//! Without the binaries a test skips with the reason, except under `CI`,
//! where it fails (CI installs them).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::token_issuer::{ISSUER, SERVICE, TokenIssuer};

pub const USER: &str = "rewind";
pub const PASSWORD: &str = "registry-pass";

/// `true` when the registry can run here; else prints why the test skips,
/// or panics under `CI`.
pub fn available(test: &str) -> bool {
    let missing: Vec<&str> = ["/usr/bin/docker-registry", "/usr/bin/htpasswd"]
        .into_iter()
        .filter(|p| !std::path::Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test}: {} missing and CI is set: install docker-registry and apache2-utils",
            missing.join(", ")
        );
    }
    eprintln!("SKIP {test}: {} missing", missing.join(", "));
    false
}

/// A registry process; killed when dropped.
#[derive(Debug)]
pub struct Registry {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// A Docker config.json with this registry's credentials.
    pub auth_file: PathBuf,
    /// With `auth: token:`, the issuer of its tokens.
    pub issuer: Option<TokenIssuer>,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub async fn start() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let htpasswd = Command::new("/usr/bin/htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .expect("htpasswd");
        assert!(htpasswd.status.success(), "htpasswd failed");
        std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).expect("htpasswd file");
        let auth = format!(
            "  htpasswd:\n    realm: rewind-test\n    path: {}\n",
            dir.path().join("htpasswd").display()
        );
        Registry::serve(dir, &auth, None).await
    }

    /// The registry with `auth: token:`: every request needs a bearer
    /// token from the issuer, which wants the Docker config's credentials.
    pub async fn start_with_tokens() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer = TokenIssuer::start(dir.path(), USER, PASSWORD).await;
        let auth = format!(
            "  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            issuer.realm,
            issuer.cert_path.display()
        );
        Registry::serve(dir, &auth, Some(issuer)).await
    }

    async fn serve(dir: tempfile::TempDir, auth: &str, issuer: Option<TokenIssuer>) -> Registry {
        let port = crate::prometheus::free_port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\nauth:\n{auth}",
            dir.path().join("data").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("config");
        let auth = format!(
            "{{\"auths\": {{\"{host}\": {{\"username\": \"{USER}\", \"password\": \"{PASSWORD}\"}}}}}}"
        );
        let auth_file = dir.path().join("docker-config.json");
        std::fs::write(&auth_file, auth).expect("docker config");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            child: Some(child),
            host,
            auth_file,
            issuer,
            _dir: dir,
        };
        registry.wait_ready().await;
        registry
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Unauthenticated: 401 means it is up.
            if let Ok(r) = client.get(format!("http://{}/v2/", self.host)).send().await
                && r.status().as_u16() == 401
            {
                return;
            }
            assert!(Instant::now() < deadline, "the registry did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the test's own pushes authenticate with.
    fn push_authorization(&self, repository: &str) -> String {
        use base64::Engine as _;
        match &self.issuer {
            Some(issuer) => format!(
                "Bearer {}",
                issuer.token_for(&format!("repository:{repository}:pull,push"))
            ),
            None => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
            ),
        }
    }

    /// Pushes a one-layer image `repository:tag` through the API.
    pub async fn push(&self, repository: &str, tag: &str) {
        let client = reqwest::Client::new();
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"tag\":\"{tag}\"}}");
        let layer = format!("layer of {repository}:{tag}");
        let config_digest = self.blob(&client, repository, config.as_bytes()).await;
        let layer_digest = self.blob(&client, repository, layer.as_bytes()).await;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": config_digest},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": layer_digest}],
        });
        let r = client
            .put(format!(
                "http://{}/v2/{repository}/manifests/{tag}",
                self.host
            ))
            .header("authorization", self.push_authorization(repository))
            .header(
                "content-type",
                "application/vnd.docker.distribution.manifest.v2+json",
            )
            .body(serde_json::to_vec(&manifest).expect("json"))
            .send()
            .await
            .expect("put manifest");
        assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    }

    async fn blob(&self, client: &reqwest::Client, repository: &str, bytes: &[u8]) -> String {
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        let start = client
            .post(format!(
                "http://{}/v2/{repository}/blobs/uploads/",
                self.host
            ))
            .header("authorization", self.push_authorization(repository))
            .send()
            .await
            .expect("start upload");
        assert_eq!(start.status().as_u16(), 202);
        let location = start
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("upload location")
            .to_string();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("http://{}{location}", self.host)
        };
        let separator = if url.contains('?') { '&' } else { '?' };
        let done = client
            .put(format!("{url}{separator}digest={digest}"))
            .header("authorization", self.push_authorization(repository))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("upload");
        assert_eq!(done.status().as_u16(), 201, "{:?}", done.text().await);
        digest
    }

    /// Stops the registry (an outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
