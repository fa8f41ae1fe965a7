//! A notification receiver on loopback: answers 200 and keeps every JSON
//! body it was sent, in order.

use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The bodies a [`receiver`] was sent.
pub type Told = Arc<Mutex<Vec<Value>>>;

/// Starts the receiver; answers its URL (`http://127.0.0.1:<port>/hook`).
pub async fn receiver() -> (String, Told) {
    let told: Told = Arc::default();
    let log = told.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, told)
}

/// The bodies told about `event`.
pub fn told_about(told: &Told, event: &str) -> Vec<Value> {
    told.lock()
        .unwrap()
        .iter()
        .filter(|b| b["event"] == event)
        .cloned()
        .collect()
}
