//! The broker's decisions, without I/O: which nodes a selector concerns and which of their
//! tasks ([`resolve`]), and when a subscription is complete ([`Progress`]).

use std::collections::{BTreeMap, BTreeSet};

use swarm_proto::{LogSelector, Task};
use tokio::time::{Duration, Instant};

use crate::store::{LookupError, Tables};

/// A selector with every reference resolved to a full id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Full service ids (asked for directly).
    pub service_ids: Vec<String>,
    /// Node id → that node's matching task ids.
    pub tasks_by_node: BTreeMap<String, BTreeSet<String>>,
}

/// Why a selector cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("select at least one service, task or node to read logs from")]
    Empty,
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

/// Resolves services (id, name or unique prefix), tasks (id or prefix) and nodes (id,
/// hostname or prefix) in `view` to the tasks they cover, grouped by node. Tasks that have
/// (or had) a node are included whatever their state: a finished task's logs are still on
/// its node. Tasks never scheduled have no logs and are left out.
pub fn resolve(view: &Tables, selector: &LogSelector) -> Result<Resolved, SelectorError> {
    if selector.service_ids.is_empty()
        && selector.task_ids.is_empty()
        && selector.node_ids.is_empty()
    {
        return Err(SelectorError::Empty);
    }
    let mut out = Resolved::default();
    let mut add = |t: &Task| {
        if !t.node_id.is_empty() {
            out.tasks_by_node
                .entry(t.node_id.clone())
                .or_default()
                .insert(t.id.clone());
        }
    };
    let mut service_ids = Vec::new();
    for s in &selector.service_ids {
        let service = view.find_service(s)?;
        view.tasks_by_service(&service.id).for_each(|t| add(t));
        service_ids.push(service.id.clone());
    }
    for t in &selector.task_ids {
        let task = view.find_task(t)?;
        add(&task);
    }
    for n in &selector.node_ids {
        let node = view.find_node(n)?;
        view.tasks_by_node(&node.id).for_each(|t| add(t));
    }
    out.service_ids = service_ids;
    Ok(out)
}

/// Where one node stands in a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Not connected; a following subscription is sent when it connects.
    Unreachable,
    /// Sent at the given time; no PublishLogs stream yet.
    Sent(Instant),
    /// Its PublishLogs stream is open.
    Publishing,
    /// It sent everything (or its stream ended).
    Closed,
    /// It went away, or never answered in time: its logs are missing.
    Missing,
}

/// The progress of one subscription over its nodes.
#[derive(Debug, Clone)]
pub struct Progress {
    follow: bool,
    nodes: BTreeMap<String, NodeState>,
}

impl Progress {
    /// A subscription over no nodes yet.
    pub fn new(follow: bool) -> Self {
        Self {
            follow,
            nodes: BTreeMap::new(),
        }
    }

    /// Adds a node if new: `Sent(now)` if it is connected, else `Unreachable` (for a
    /// subscription that does not follow, an unreachable node is `Missing` at once: it would
    /// only make the subscriber wait). Returns whether the node was new.
    pub fn add(&mut self, node: &str, connected: bool, now: Instant) -> bool {
        if self.nodes.contains_key(node) {
            return false;
        }
        let state = match (connected, self.follow) {
            (true, _) => NodeState::Sent(now),
            (false, true) => NodeState::Unreachable,
            (false, false) => NodeState::Missing,
        };
        self.nodes.insert(node.to_string(), state);
        true
    }

    /// The node's state, if it is part of the subscription.
    pub fn state(&self, node: &str) -> Option<NodeState> {
        self.nodes.get(node).copied()
    }

    /// The node (re)connected and was sent the subscription.
    pub fn sent(&mut self, node: &str, now: Instant) {
        self.set(node, NodeState::Sent(now));
    }

    /// The node opened its PublishLogs stream.
    pub fn publishing(&mut self, node: &str) {
        self.set(node, NodeState::Publishing);
    }

    /// The node has sent everything.
    pub fn closed(&mut self, node: &str) {
        self.set(node, NodeState::Closed);
    }

    /// The node's session ended. A following subscription waits for it to come back.
    pub fn disconnected(&mut self, node: &str) {
        if let Some(s) = self.nodes.get_mut(node)
            && *s != NodeState::Closed
        {
            *s = if self.follow {
                NodeState::Unreachable
            } else {
                NodeState::Missing
            };
        }
    }

    /// Nodes sent the subscription more than `timeout` ago that never opened a stream are
    /// given up on (only when not following: a follower may answer late).
    pub fn expire(&mut self, now: Instant, timeout: Duration) {
        if self.follow {
            return;
        }
        for s in self.nodes.values_mut() {
            if matches!(*s, NodeState::Sent(at) if now.duration_since(at) >= timeout) {
                *s = NodeState::Missing;
            }
        }
    }

    /// A non-following subscription is complete once no node is still to answer.
    pub fn is_complete(&self) -> bool {
        !self.follow
            && self
                .nodes
                .values()
                .all(|s| matches!(s, NodeState::Closed | NodeState::Missing))
    }

    /// Nodes whose logs are missing, in id order.
    pub fn missing(&self) -> Vec<&str> {
        self.in_state(|s| s == NodeState::Missing)
    }

    /// Nodes that may still be sending (they should be told when the subscription ends).
    pub fn active(&self) -> Vec<&str> {
        self.in_state(|s| matches!(s, NodeState::Sent(_) | NodeState::Publishing))
    }

    fn in_state(&self, pick: impl Fn(NodeState) -> bool) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|(_, s)| pick(**s))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    fn set(&mut self, node: &str, state: NodeState) {
        if let Some(s) = self.nodes.get_mut(node) {
            *s = state;
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
