//! Group commit for webhook deliveries: concurrent requests hand their
//! delivery to one writer task, which records everything waiting in one
//! transaction and answers each request. Every delivery is durable before
//! its 202; under load, many share one commit (one fsync on SQLite).

use std::sync::Arc;

use rewind_ledger::{Delivery, DeliveryOutcome, Ledger, LedgerError};
use tokio::sync::{mpsc, oneshot};

/// Most deliveries committed together.
const MAX_BATCH: usize = 128;

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
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
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
