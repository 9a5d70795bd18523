//! What a session message tells an agent besides its session id: the managers it may open
//! its next session with, and the role the swarm gives its node. The first message carries
//! both; the session stream sends a new message whenever either changes (a manager joined or
//! left, the node was promoted or demoted), so agents learn new managers without
//! reconnecting and renew their certificate into their new role (SwarmKit's session
//! `nodeUpdates`).

use swarm_proto::{NodeRole, WeightedPeer};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::{Object, Store, Tables, WatchFilter};

/// The managers an agent may open its next session with: every manager with an address
/// (any of them forwards to the leader), or this one while the store names none.
pub(super) fn manager_list(view: &Tables, node_id: &str, addr: &str) -> Vec<WeightedPeer> {
    let mut managers: Vec<WeightedPeer> = view
        .nodes()
        .filter_map(|n| {
            let status = n.manager_status.as_ref().filter(|s| !s.addr.is_empty())?;
            Some(WeightedPeer {
                node_id: n.id.clone(),
                addr: status.addr.clone(),
                weight: 1,
            })
        })
        .collect();
    if managers.is_empty() {
        managers.push(WeightedPeer {
            node_id: node_id.to_string(),
            addr: addr.to_string(),
            weight: 1,
        });
    }
    managers
}

/// The role the store gives `node_id` (a worker when it has no node yet).
pub(super) fn role_of(view: &Tables, node_id: &str) -> NodeRole {
    view.node(node_id)
        .and_then(|n| NodeRole::try_from(n.role).ok())
        .unwrap_or(NodeRole::Worker)
}

/// Keeps `tx` equal to [`manager_list`] until `token` is cancelled: one task per leadership
/// follows the node events, so sessions only wait on the watch.
pub(super) async fn follow_managers(
    store: Store,
    tx: watch::Sender<Vec<WeightedPeer>>,
    node_id: String,
    addr: String,
    token: CancellationToken,
) {
    loop {
        let (view, mut events) = store.watch(WatchFilter::All);
        tx.send_if_modified(|list| replace(list, manager_list(&view, &node_id, &addr)));
        drop(view);
        loop {
            let batch = tokio::select! {
                _ = token.cancelled() => return,
                b = events.recv() => b,
            };
            // A closed watch (the store was restored) starts over from a fresh view.
            let Some(batch) = batch else { break };
            if batch
                .events
                .iter()
                .any(|e| matches!(e.object(), Object::Node(_)))
            {
                let list = manager_list(&store.view(), &node_id, &addr);
                tx.send_if_modified(|old| replace(old, list));
            }
        }
    }
}

/// Replaces `old` with `new` when they differ; whether it did.
fn replace(old: &mut Vec<WeightedPeer>, new: Vec<WeightedPeer>) -> bool {
    let changed = *old != new;
    if changed {
        *old = new;
    }
    changed
}
