//! Membership decisions as pure functions of a store view and the raft members (voters and
//! learners): whether a manager may join (and what its Node then says), who the members are,
//! whom a leave removes. A learner is a member that is still catching up: a re-join of it is
//! a no-op, it is listed, and it can leave (it never holds the quorum, so even a one-voter
//! swarm may remove it).

use swarm_proto::{ManagerStatus, Node, NodeRole, RaftMember};

use crate::api::ApiError;
use crate::store::Tables;

/// What a join request leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum Join {
    /// The node is already this raft member, voter or learner (a retried join): nothing to
    /// change.
    AlreadyMember,
    /// Record the address in the node (this update first), then add the raft member.
    Add(Box<Node>),
}

/// Decides a join of `node_id` as raft member `raft_id` reachable at `addr`; `members` are
/// the raft voters and learners.
pub fn join(
    view: &Tables,
    members: &[u64],
    node_id: &str,
    raft_id: u64,
    addr: &str,
) -> Result<Join, ApiError> {
    if raft_id == 0 {
        return Err(ApiError::invalid("raft id 0 is not a valid member id"));
    }
    if addr.is_empty() {
        return Err(ApiError::invalid("a joining manager must give its address"));
    }
    let node = view.node(node_id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "node {node_id} is not in the swarm; join with a manager join token first"
        ))
    })?;
    if node.role != NodeRole::Manager as i32 {
        return Err(ApiError::FailedPrecondition(format!(
            "node {node_id} is a worker; only managers join raft (promote it first, or join with \
             a manager join token)"
        )));
    }
    let current = node.manager_status.as_ref().map_or(0, |s| s.raft_id);
    if members.contains(&raft_id) {
        return if current == raft_id {
            Ok(Join::AlreadyMember)
        } else {
            Err(ApiError::FailedPrecondition(format!(
                "raft id {raft_id:x} is taken by another manager"
            )))
        };
    }
    if current != 0 && members.contains(&current) {
        return Err(ApiError::FailedPrecondition(format!(
            "node {node_id} is already a manager (raft member {current:x}); remove it before it \
             joins again"
        )));
    }
    let mut updated = node.as_ref().clone();
    updated.manager_status = Some(ManagerStatus {
        raft_id,
        addr: addr.to_string(),
        leader: false,
        reachable: true,
        // Joined as a raft learner; promoted once caught up.
        catching_up: true,
    });
    Ok(Join::Add(Box::new(updated)))
}

/// The raft members `ids` (voters and learners) with the node and address the store has
/// for each.
pub fn members(view: &Tables, ids: &[u64]) -> Vec<RaftMember> {
    ids.iter()
        .map(|&raft_id| {
            let node = view.nodes().find(|n| {
                n.manager_status
                    .as_ref()
                    .is_some_and(|s| s.raft_id == raft_id)
            });
            RaftMember {
                raft_id,
                node_id: node.map(|n| n.id.clone()).unwrap_or_default(),
                addr: node
                    .and_then(|n| n.manager_status.as_ref())
                    .map(|s| s.addr.clone())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The raft member (voter or learner) that a leave of `node_id` removes. The last voter
/// cannot leave; a learner always can.
pub fn leave(
    view: &Tables,
    voters: &[u64],
    learners: &[u64],
    node_id: &str,
) -> Result<u64, ApiError> {
    let raft_id = view
        .node(node_id)
        .and_then(|n| n.manager_status.as_ref())
        .map(|s| s.raft_id)
        .filter(|id| voters.contains(id) || learners.contains(id))
        .ok_or_else(|| {
            ApiError::FailedPrecondition(format!("node {node_id} is not a raft member"))
        })?;
    if voters == [raft_id] {
        return Err(ApiError::FailedPrecondition(
            "the last manager cannot leave: the swarm would have no managers left".into(),
        ));
    }
    Ok(raft_id)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
