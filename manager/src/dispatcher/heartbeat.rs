//! The heartbeat monitor: marks nodes DOWN when their session misses its deadline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarm_proto::{NodeState, NodeStatus};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::sessions::{DispatcherConfig, Sessions};
use crate::store::{self, Store};

/// Runs until `shutdown`: every tick, expires sessions and writes the DOWN nodes.
pub(super) async fn monitor(
    store: Store,
    sessions: Arc<Mutex<Sessions>>,
    config: DispatcherConfig,
    shutdown: CancellationToken,
) {
    let tick =
        (config.heartbeat_period / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    let mut pending: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let expired = sessions
            .lock()
            .expect("sessions lock")
            .expire(Instant::now());
        pending.extend(expired);
        if pending.is_empty() {
            continue;
        }
        pending.sort();
        pending.dedup();
        match mark_down(&store, &pending).await {
            Ok(()) => pending.clear(),
            Err(e) => tracing::warn!(error = %e, "marking nodes down failed; retrying"),
        }
    }
}

/// Writes DOWN for each node that is not DOWN already (and still exists).
async fn mark_down(store: &Store, nodes: &[String]) -> Result<(), store::StoreError> {
    let view = store.view();
    let actions: Vec<_> = nodes
        .iter()
        .filter_map(|id| view.node(id))
        .filter(|n| n.status.as_ref().map(|s| s.state) != Some(NodeState::NodeDown as i32))
        .map(|n| {
            tracing::info!(node = %n.id, "node missed its heartbeats; marking it down");
            let mut n = (**n).clone();
            let addr = n.status.take().map(|s| s.addr).unwrap_or_default();
            n.status = Some(NodeStatus {
                state: NodeState::NodeDown as i32,
                message: "heartbeat failure".into(),
                addr,
            });
            if let Some(m) = n.meta.as_mut() {
                m.updated_at_ns = swarm_proto::ext::now_ns();
            }
            store::update(n)
        })
        .collect();
    if actions.is_empty() {
        return Ok(());
    }
    let outcome = store.write(actions).await?;
    if outcome.is_clean() {
        Ok(())
    } else {
        // Someone updated the node meanwhile; the next tick re-reads it.
        Err(store::StoreError::Conflict(outcome.rejected[0].1.clone()))
    }
}
