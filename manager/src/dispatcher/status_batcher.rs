//! Group commit of task status updates: whatever arrives while one raft write is in flight
//! goes into the next one, so many agents' reports cost one write per round trip.

use swarm_proto::StoreAction;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

/// Largest number of status patches in one raft entry.
const MAX_BATCH: usize = 10_000;

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
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            item = rx.recv() => match item { Some(i) => i, None => return },
        };
        let mut actions = first.0;
        let mut replies = vec![first.1];
        while actions.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((a, r)) => {
                    actions.extend(a);
                    replies.push(r);
                }
                Err(_) => break,
            }
        }
        let result = store.write(actions).await.map(|_| ());
        for r in replies {
            let _ = r.send(result.clone());
        }
    }
}
