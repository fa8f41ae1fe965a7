//! Group commit for webhook deliveries: concurrent requests hand their
//! delivery to one writer task, which records everything waiting in one
//! transaction and answers each request. Every delivery is durable before
//! its 202; under load, many share one commit (one fsync on SQLite).
//!
//! A commit costs about the same whatever its size (a dozen round trips
//! to the database: ~5 ms on SQLite under load, ~10 ms on PostgreSQL).
//! Taking only what waits split a steady load into two half batches that
//! alternate: the senders answered by one commit come back while the next
//! is already running, so each request waited for two commits. Under load
//! the writer therefore lingers briefly for more before it commits, as
//! PostgreSQL's `commit_delay` / `commit_siblings` do: only when the last
//! batch was big enough to show concurrent senders, at most [`LINGER`],
//! and never past [`MAX_BATCH`]. A lone sender never waits.

use std::sync::Arc;
use std::time::Duration;

use rewind_ledger::{Delivery, DeliveryOutcome, Ledger, LedgerError};
use tokio::sync::{mpsc, oneshot};

/// Most deliveries committed together.
const MAX_BATCH: usize = 128;

/// The last batch held at least this many deliveries: senders are
/// concurrent, and the next commit waits up to [`LINGER`] to fill.
const SIBLINGS: usize = 8;

/// The longest a delivery waits for others to share its commit; a fifth of
/// what the commit itself costs under load (tokio's timer resolution).
const LINGER: Duration = Duration::from_millis(1);

type Reply = oneshot::Sender<Result<DeliveryOutcome, LedgerError>>;

#[derive(Debug, Clone)]
pub struct DeliveryBatcher {
    tx: mpsc::Sender<(Delivery, Reply)>,
}

impl DeliveryBatcher {
    /// Spawns the writer task; it ends when the last handle is dropped.
    pub fn start(ledger: Arc<dyn Ledger>) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Delivery, Reply)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            let mut last = 0;
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                if last >= SIBLINGS {
                    linger(&mut rx, &mut batch).await;
                }
                last = batch.len();
                let (deliveries, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                let results = ledger.record_deliveries(deliveries).await;
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
        });
        DeliveryBatcher { tx }
    }

    /// Records `delivery`, durably, before answering. `None` as the error:
    /// the writer has stopped (shutdown), nothing was recorded.
    pub async fn record(&self, delivery: Delivery) -> Result<DeliveryOutcome, Option<LedgerError>> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send((delivery, reply)).await.is_err() {
            return Err(None);
        }
        match answer.await {
            Ok(result) => result.map_err(Some),
            Err(_) => Err(None),
        }
    }
}

/// Adds what arrives within [`LINGER`] to `batch`, up to [`MAX_BATCH`].
async fn linger(rx: &mut mpsc::Receiver<(Delivery, Reply)>, batch: &mut Vec<(Delivery, Reply)>) {
    let deadline = tokio::time::Instant::now() + LINGER;
    while batch.len() < MAX_BATCH {
        let room = MAX_BATCH - batch.len();
        match tokio::time::timeout_at(deadline, rx.recv_many(batch, room)).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
