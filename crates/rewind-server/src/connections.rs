//! The accept loop of `rewind serve`: what a slow, stalled or flooding
//! client cannot do to the service.
//!
//! `axum::serve` has no header-read timeout, no idle timeout and no limit on
//! open connections, so a few hundred clients that send one header line and
//! wait used to exhaust the file descriptors (`accept error: Too many open
//! files`) until they left. Here:
//!
//! - at most `server.max_connections` connections are open: past it the loop
//!   stops accepting, and new clients wait in the kernel's listen backlog
//!   (which costs rewind no descriptor) until a slot frees;
//! - hyper closes a connection whose request header has not arrived within
//!   `server.header_read_timeout` (first request or a later keep-alive one);
//! - a keep-alive connection with no request in flight for
//!   `server.idle_timeout` is closed;
//! - on shutdown the loop stops accepting and every connection finishes its
//!   current request, then closes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rewind_config::settings::ServerSettings;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long clients may take and how many may be connected at once.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl ConnectionLimits {
    pub fn from_settings(server: &ServerSettings) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: server.header_read_timeout.get(),
            idle_timeout: server.idle_timeout.get(),
            max_connections: server.max_connections.max(1),
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves,
/// then waits for the open connections to finish their current request.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let at_cap = AtomicBool::new(false);
    let stop = CancellationToken::new();
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        if slots.available_permits() == 0 && !at_cap.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                server.max_connections = limits.max_connections,
                "connection limit reached: new clients wait until a connection closes"
            );
        }
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors (EMFILE) or a connection reset
                    // before it was accepted: not fatal. A short pause keeps
                    // a full descriptor table from spinning the loop.
                    tracing::warn!(error = %error, "accepting a connection failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if slots.available_permits() > 0 {
            at_cap.store(false, Ordering::Relaxed);
        }
        connections.spawn(serve_one(
            stream,
            peer,
            router.clone(),
            limits,
            stop.clone(),
            permit,
        ));
    }
    drop(listener);
    stop.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}

/// One connection, holding its slot until it closes.
async fn serve_one(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    metrics::gauge!("rewind_http_connections_open").increment(1.0);
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            // What `into_make_service_with_connect_info` would add: the web
            // UI's sign-in rate limit is per client address.
            request.extensions_mut().insert(ConnectInfo(peer));
            let in_flight = activity.begin();
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(in_flight);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        let idle_check = activity.idle_deadline(limits.idle_timeout);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    // Header timeouts, resets, garbage: the client's problem.
                    tracing::debug!(error = %error, client.addr = %peer, "connection closed with an error");
                }
                break;
            }
            () = stop.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(idle_check), if !closing => {
                if activity.idle_for(limits.idle_timeout) {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
    metrics::gauge!("rewind_http_connections_open").decrement(1.0);
}

/// Requests in flight on one connection and when the last one ended.
#[derive(Debug)]
struct Activity(Mutex<(usize, Instant)>);

impl Activity {
    fn new() -> Activity {
        Activity(Mutex::new((0, Instant::now())))
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.0.lock().expect("activity lock").0 += 1;
        InFlight(self.clone())
    }

    /// When to look again: a busy connection is never idle.
    fn idle_deadline(&self, idle: Duration) -> Instant {
        let (in_flight, last) = *self.0.lock().expect("activity lock");
        if in_flight > 0 {
            Instant::now() + idle
        } else {
            last + idle
        }
    }

    fn idle_for(&self, idle: Duration) -> bool {
        let (in_flight, last) = *self.0.lock().expect("activity lock");
        in_flight == 0 && last.elapsed() >= idle
    }
}

/// Marks a request in flight until dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.0.lock().expect("activity lock");
        state.0 -= 1;
        state.1 = Instant::now();
    }
}
