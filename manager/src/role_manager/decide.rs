//! What the role manager does about one node whose desired role differs from its role, as a
//! pure function of the node and raft's status on the leader (SwarmKit's
//! `manager/role_manager.go`).
//!
//! ```text
//! promote (desired manager, role worker) ─▶ role = manager; the node renews its certificate
//!                                            and joins raft by itself
//! demote  (desired worker, role manager)
//!   not a raft member ───────────────────▶ role = worker
//!   this leader itself ──────────────────▶ hand leadership to a reachable manager first
//!   removal would lose quorum ───────────▶ wait (and say why)
//!   otherwise ───────────────────────────▶ remove the raft member, then role = worker
//! ```

use swarm_proto::{Node, NodeRole};

use crate::raft::RaftStatus;

/// The next step for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Role and desired role agree.
    Nothing,
    /// Write this role (and, for a worker, no manager status).
    SetRole(NodeRole),
    /// Remove this raft member, then write the worker role.
    RemoveMember(u64),
    /// The node to demote is this leader: hand leadership to this member; the next leader
    /// removes it.
    TransferLeadership(u64),
    /// Not now; retried later.
    Wait(String),
}

fn role(n: &Node) -> NodeRole {
    NodeRole::try_from(n.role).unwrap_or(NodeRole::Worker)
}

fn desired(n: &Node) -> NodeRole {
    n.spec
        .as_ref()
        .and_then(|s| NodeRole::try_from(s.desired_role).ok())
        .unwrap_or(NodeRole::Worker)
}

/// The raft member `node` is, if it is one of `status.voters` or `status.learners`.
pub fn member_of(node: &Node, status: &RaftStatus) -> Option<u64> {
    node.manager_status
        .as_ref()
        .map(|s| s.raft_id)
        .filter(|id| *id != 0 && (status.voters.contains(id) || status.learners.contains(id)))
}

/// Whether removing `raft_id` leaves a reachable majority of the remaining members, as
/// this leader sees them (SwarmKit's `CanRemoveMember`).
///
/// # Errors
/// Why not, in words for the user.
/// A learner never holds the quorum, so it can always be removed.
pub fn can_remove(status: &RaftStatus, raft_id: u64) -> Result<(), String> {
    if status.learners.contains(&raft_id) {
        return Ok(());
    }
    let remaining: Vec<u64> = status
        .voters
        .iter()
        .copied()
        .filter(|v| *v != raft_id)
        .collect();
    if remaining.is_empty() {
        return Err("it is the last manager: the swarm would have no managers left".into());
    }
    let reachable = remaining
        .iter()
        .filter(|v| status.active.contains(v))
        .count();
    let quorum = remaining.len() / 2 + 1;
    if reachable < quorum {
        return Err(format!(
            "removing it would lose quorum: only {reachable} of the {} remaining managers are \
             reachable and {quorum} are needed",
            remaining.len()
        ));
    }
    Ok(())
}

/// The next step for `node`, decided on the leader whose raft status is `status`.
pub fn step(node: &Node, status: &RaftStatus) -> Step {
    match (desired(node), role(node)) {
        (d, r) if d == r => Step::Nothing,
        (NodeRole::Manager, _) => Step::SetRole(NodeRole::Manager),
        (NodeRole::Worker, _) => {
            let Some(raft_id) = member_of(node, status) else {
                return Step::SetRole(NodeRole::Worker);
            };
            if let Err(why) = can_remove(status, raft_id) {
                return Step::Wait(format!("can't demote node {} yet: {why}", node.id));
            }
            if raft_id != status.id {
                return Step::RemoveMember(raft_id);
            }
            let successor = status
                .active
                .iter()
                .copied()
                .find(|v| *v != raft_id && status.voters.contains(v));
            match successor {
                Some(to) => Step::TransferLeadership(to),
                None => Step::Wait(format!(
                    "can't demote node {} yet: it leads and no other manager is reachable to \
                     take over",
                    node.id
                )),
            }
        }
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
