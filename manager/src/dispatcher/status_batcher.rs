//! Group commit of task status updates: whatever arrives while the raft writes in flight
//! commit goes into the next one, so many agents' reports cost one write per round trip.

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use swarm_proto::StoreAction;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

/// Largest number of status patches in one raft entry.
const MAX_BATCH: usize = 10_000;
/// Writes proposed at once. With two, the next batch is already proposed while one commits,
/// so a report waits for at most one commit behind it rather than two. Order between
/// batches does not matter: an agent sends its next report only after the last one is
/// acknowledged, and the store only applies a status that moves its task forward.
const IN_FLIGHT: usize = 2;

type Item = (Vec<StoreAction>, oneshot::Sender<Result<(), StoreError>>);

/// Handle to the batcher actor.
#[derive(Clone)]
pub(super) struct StatusBatcher {
    tx: mpsc::Sender<Item>,
}

impl StatusBatcher {
    pub fn spawn(store: Store, shutdown: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel(16_384);
        tokio::spawn(run(store, rx, shutdown));
        Self { tx }
    }

    /// Queues patches and waits until they are committed (or rejected as not forward,
    /// which is success for a status report: a newer state is already stored).
    pub async fn commit(&self, actions: Vec<StoreAction>) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((actions, reply))
            .await
            .map_err(|_| StoreError::Dropped("dispatcher is stopping".into()))?;
        rx.await
            .map_err(|_| StoreError::Dropped("dispatcher is stopping".into()))?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Item>, shutdown: CancellationToken) {
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            item = rx.recv(), if in_flight.len() < IN_FLIGHT => {
                let Some((mut actions, reply)) = item else { break };
                let mut replies = vec![reply];
                while actions.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok((a, r)) => {
                            actions.extend(a);
                            replies.push(r);
                        }
                        Err(_) => break,
                    }
                }
                let store = store.clone();
                in_flight.push(async move {
                    let result = store.write(actions).await.map(|_| ());
                    for r in replies {
                        let _ = r.send(result.clone());
                    }
                });
            }
        }
    }
    // The channel closed: answer what is already proposed.
    while in_flight.next().await.is_some() {}
}
