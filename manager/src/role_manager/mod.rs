//! The role manager: a leader-only component that makes every node's role follow its
//! desired role (`swarmctl node promote|demote`, Docker's `node promote|demote`). The rules
//! are in [`decide`]; this loop reads the store and raft's status, and performs the steps:
//! writing roles, removing raft members (through [`MembershipApi`], one change at a time
//! with joins) and handing leadership over when the leader itself is demoted.
//!
//! The node does the rest: its dispatcher session names its new role, it renews its
//! certificate into it, and its supervisor starts (promotion) or stops (demotion) its manager.

pub mod decide;

use std::collections::HashMap;
use std::time::Duration;

use swarm_proto::{Node, NodeRole};
use tokio_util::sync::CancellationToken;

use self::decide::Step;
use crate::raft::{MembershipApi, RaftHandle};
use crate::store::{self, Object, Store, WatchFilter};

/// How soon a step that could not be taken (quorum, a conflicting write, a transfer under
/// way) is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Reconciles roles until `token` is cancelled (leadership lost).
pub async fn run(
    store: Store,
    raft: RaftHandle,
    membership: MembershipApi,
    token: CancellationToken,
) {
    let mut manager = RoleManager {
        store,
        raft,
        membership,
        said: HashMap::new(),
    };
    loop {
        let (_, mut events) = manager.store.watch(WatchFilter::All);
        let mut pending = manager.reconcile().await;
        loop {
            let batch = tokio::select! {
                _ = token.cancelled() => return,
                b = events.recv() => b,
                _ = tokio::time::sleep(RETRY), if pending => {
                    pending = manager.reconcile().await;
                    continue;
                }
            };
            // A closed watch (the store was restored) starts over.
            let Some(batch) = batch else { break };
            if batch
                .events
                .iter()
                .any(|e| matches!(e.object(), Object::Node(_)))
            {
                pending = manager.reconcile().await;
            }
        }
    }
}

struct RoleManager {
    store: Store,
    raft: RaftHandle,
    membership: MembershipApi,
    /// The last reason given per node for waiting, so each is logged once.
    said: HashMap<String, String>,
}

impl RoleManager {
    /// Takes the next step for every node whose role differs from its desired role; whether
    /// any is still pending.
    async fn reconcile(&mut self) -> bool {
        let view = self.store.view();
        let status = self.raft.status().borrow().clone();
        let mut pending = false;
        for node in view.nodes() {
            let step = decide::step(node, &status);
            if step != Step::Nothing {
                pending |= !self.take(node, step).await;
            }
        }
        pending
    }

    /// Takes `step` for `node`; whether the node is done.
    async fn take(&mut self, node: &Node, step: Step) -> bool {
        match step {
            Step::Nothing => true,
            Step::SetRole(role) => self.set_role(&node.id, role).await,
            Step::RemoveMember(raft_id) => match self.membership.leave(&node.id).await {
                Ok(()) => {
                    tracing::info!(node = %node.id, raft_id = format_args!("{raft_id:x}"), "demoted manager removed from raft");
                    self.set_role(&node.id, NodeRole::Worker).await
                }
                Err(e) => self.wait(&node.id, format!("removing it from raft failed: {e}")),
            },
            Step::TransferLeadership(to) => {
                self.raft.transfer_leader(to);
                self.wait(
                    &node.id,
                    format!(
                        "this leader is being demoted: handing leadership to raft member {to:x}"
                    ),
                )
            }
            Step::Wait(why) => self.wait(&node.id, why),
        }
    }

    /// Writes `role` into the node as it is now (a worker loses its manager status).
    async fn set_role(&mut self, node_id: &str, role: NodeRole) -> bool {
        let Some(current) = self.store.view().node(node_id).cloned() else {
            return true;
        };
        let mut node = (*current).clone();
        node.role = role as i32;
        if role == NodeRole::Worker {
            node.manager_status = None;
        }
        match self.store.write_atomic(vec![store::update(node)]).await {
            Ok(_) => {
                self.said.remove(node_id);
                tracing::info!(node = %node_id, ?role, "node role changed");
                true
            }
            Err(e) => self.wait(node_id, format!("writing its role failed: {e}")),
        }
    }

    /// Logs `why` (once per reason) and reports the node as not done.
    fn wait(&mut self, node_id: &str, why: String) -> bool {
        if self.said.get(node_id) != Some(&why) {
            tracing::info!(node = %node_id, "role change pending: {why}");
            self.said.insert(node_id.to_string(), why);
        }
        false
    }
}
