//! Hostile clients against the real `rewind serve`: hundreds of sockets
//! that send one header line and wait (slowloris) while the process may
//! hold only 256 file descriptors, bodies that trickle, bodies over the
//! limit, keep-alive connections left idle. rewind keeps answering
//! `/healthz` and webhooks, closes the stalled sockets after
//! `server.header_read_timeout`, and answers every refusal as JSON.

mod served;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use served::{closed_within, exchange, read_answer, serve};

const ARGOCD_TOKEN: &str = "flood-argocd-token";

fn write_config(dir: &Path, server: &str) -> PathBuf {
    let remote = dir.join("gitops.git");
    git2::Repository::init_bare(&remote).unwrap();
    let config = dir.join("rewind.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{server}\n\
             [database]\nurl = \"sqlite://data/rewind.db\"\n\
             [git]\nurl = \"{}\"\ncache_dir = \"cache\"\n\
             [webhooks]\nargocd_token = \"{ARGOCD_TOKEN}\"\n",
            remote.display()
        ),
    )
    .unwrap();
    config
}

fn argocd_webhook(addr: &str, app: &str) -> Vec<u8> {
    let body = serde_json::to_vec(&rewind_ingest::samples::argocd_notification(
        "on-deployed",
        app,
        "file:///srv/gitops.git",
        "apps/checkout",
        &[rewind_ingest::samples::HistoryEntry {
            id: 1,
            revision: "0123456789abcdef0123456789abcdef01234567".into(),
            deployed_at: chrono::Utc::now(),
        }],
        "Healthy",
    ))
    .unwrap();
    let mut request = format!(
        "POST /webhooks/argocd HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ARGOCD_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

fn healthz(addr: &str) -> Vec<u8> {
    format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// 300 stalled sockets against a process allowed 256 descriptors: without
/// a cap it runs out (`accept error: Too many open files`) and stops
/// answering; with `max_connections = 100` the extra clients wait in the
/// listen backlog, the header-read timeout frees the slots, and `/healthz`
/// and a webhook get through.
#[test]
fn hundreds_of_stalled_sockets_neither_exhaust_descriptors_nor_block_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "header_read_timeout = \"1s\"\nidle_timeout = \"1s\"\nmax_connections = 100",
    );
    let mut served = serve(
        &config,
        dir.path(),
        &["prlimit", "--nofile=256:256", "--"],
        &[],
    );

    let mut held: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut stream = TcpStream::connect(&served.addr).expect("connect");
            stream
                .write_all(b"POST /webhooks/argocd HTTP/1.1\r\n")
                .expect("one header line");
            stream
        })
        .collect();

    // Queued behind the stalled clients, still answered.
    let answer = exchange(
        &served.addr,
        &healthz(&served.addr),
        Duration::from_secs(30),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = exchange(
        &served.addr,
        &argocd_webhook(&served.addr, "checkout"),
        Duration::from_secs(30),
    );
    assert_eq!(answer.status, 202, "{answer:?}");

    // Every stalled socket is closed by the server, none left hanging.
    let mut still_open = 0;
    for stream in &mut held {
        if !closed_within(stream, Duration::from_secs(20)) {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "stalled sockets the server never closed");

    // And it still answers, with its descriptors intact.
    let answer = exchange(
        &served.addr,
        &healthz(&served.addr),
        Duration::from_secs(10),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(served.is_running());
    let log = served.stop();
    let exhausted: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("Too many open files"))
        .collect();
    assert!(exhausted.is_empty(), "{exhausted:#?}");
    assert!(
        log.iter()
            .any(|line| line.contains("connection limit reached")),
        "the cap was never reached, so the test proved nothing: {log:#?}"
    );
}

/// A body that trickles is cut off with a JSON `408` after
/// `server.body_read_timeout`; a body over `server.max_body_bytes` is a
/// JSON `413`, declared or chunked; an idle keep-alive connection is closed
/// after `server.idle_timeout` although the header-read timeout is far off.
#[test]
fn slow_bodies_oversized_bodies_and_idle_connections_are_refused_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "header_read_timeout = \"30s\"\nbody_read_timeout = \"1s\"\nidle_timeout = \"1s\"\nmax_body_bytes = 4096",
    );
    let served = serve(&config, dir.path(), &[], &[]);
    let addr = served.addr.clone();

    // Slow body: the header promises 100 bytes, 10 arrive, then nothing.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(
            format!(
                "POST /webhooks/argocd HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ARGOCD_TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"event\":"
            )
            .as_bytes(),
        )
        .unwrap();
    let answer = read_answer(&mut stream, Duration::from_secs(20));
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.body["error"], "request timeout", "{answer:?}");
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("server.body_read_timeout"),
        "{answer:?}"
    );
    assert!(closed_within(&mut stream, Duration::from_secs(5)));

    // Declared too large: refused before a byte of the body is read.
    let answer = exchange(
        &addr,
        format!(
            "POST /webhooks/argocd HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ARGOCD_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
        Duration::from_secs(10),
    );
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.body["error"], "payload too large", "{answer:?}");

    // Chunked, no length: counted as it arrives.
    let chunk = "x".repeat(3000);
    let answer = exchange(
        &addr,
        format!(
            "POST /webhooks/argocd HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ARGOCD_TOKEN}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
            len = chunk.len()
        )
        .as_bytes(),
        Duration::from_secs(10),
    );
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.body["error"], "payload too large", "{answer:?}");

    // Idle keep-alive: one answered request, then silence.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let answer = read_answer(&mut stream, Duration::from_secs(10));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        closed_within(&mut stream, Duration::from_secs(15)),
        "an idle keep-alive connection stayed open"
    );

    let log = served.stop();
    let server_errors: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("ERROR") || line.contains("status=5"))
        .collect();
    assert!(server_errors.is_empty(), "{server_errors:#?}");
}
