//! `rewind healthcheck [--url URL]`: exit 0 when `/readyz` answers 200, 1
//! otherwise. For container health checks (the image's `HEALTHCHECK`),
//! where neither curl nor a shell with `/dev/tcp` can be relied on.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::output::{Failure, Output};

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Base URL of the rewind to check (`/readyz` is appended unless the
    /// URL has a path). Default: `server.listen` of the configuration, on
    /// loopback when it listens on every address.
    #[arg(long)]
    url: Option<String>,
    /// Configuration file to read `server.listen` from.
    #[arg(long, env = "REWIND_CONFIG")]
    config: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

pub fn run(args: HealthcheckArgs, output: Output) -> anyhow::Result<ExitCode> {
    let url = match &args.url {
        Some(url) => readyz_url(url),
        None => readyz_url(&default_base(args.config.as_deref())?),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        // No proxy: the check is about this host, and an HTTP_PROXY in the
        // container's environment must not answer for it.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(args.timeout.max(1)))
            .no_proxy()
            .build()?;
        let response = client.get(&url).send().await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, body))
    });
    match outcome {
        Ok((status, _)) if status.is_success() => {
            output.print(
                &serde_json::json!({"url": url, "ready": true, "status": status.as_u16()}),
                || println!("ready: {url} answered {status}"),
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok((status, body)) => Err(Failure::error(
            "not_ready",
            format!("not ready: {url} answered {status}: {}", body.trim()),
        )
        .into()),
        Err(e) => {
            Err(Failure::error("not_ready", format!("not ready: cannot reach {url}: {e}")).into())
        }
    }
}

/// `http://<server.listen>`, with an unspecified address (`0.0.0.0`,
/// `[::]`) replaced by loopback: that is where this host reaches it.
fn default_base(config: Option<&std::path::Path>) -> anyhow::Result<String> {
    let settings = super::load_settings(config)?;
    Ok(local_url(settings.server.listen))
}

fn local_url(mut addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let loopback: std::net::IpAddr = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        addr.set_ip(loopback);
    }
    format!("http://{addr}")
}

fn readyz_url(base: &str) -> String {
    let has_path = base
        .split_once("://")
        .map_or(base, |(_, rest)| rest)
        .trim_end_matches('/')
        .contains('/');
    if has_path {
        base.to_string()
    } else {
        format!("{}/readyz", base.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::{local_url, readyz_url};

    #[test]
    fn an_unspecified_listen_address_is_asked_on_loopback() {
        assert_eq!(
            local_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(local_url("[::]:8080".parse().unwrap()), "http://[::1]:8080");
        assert_eq!(
            local_url("10.1.2.3:9000".parse().unwrap()),
            "http://10.1.2.3:9000"
        );
    }

    #[test]
    fn readyz_is_appended_to_a_base_url_only() {
        assert_eq!(
            readyz_url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/readyz"
        );
        assert_eq!(
            readyz_url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/readyz"
        );
        assert_eq!(
            readyz_url("http://rewind:8080/healthz"),
            "http://rewind:8080/healthz"
        );
    }
}
