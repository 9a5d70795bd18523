//! Whether a node should run a global service's task: node state, availability and the
//! service's placement constraints. Constraint syntax and matching are the scheduler's
//! ([`crate::scheduler::constraint`]), so a global service runs exactly where the scheduler
//! would place its tasks.

use swarm_proto::{Node, NodeAvailability, NodeState, Service};

use crate::scheduler::constraint::{self, Constraint};

/// What a node should do with a global service's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Run one task: the node is up, active and satisfies the constraints.
    Run,
    /// Keep what runs, start nothing new: the node is paused.
    Keep,
    /// Stop the service's tasks: the node is down, drained or no longer satisfies the
    /// constraints.
    Stop,
}

/// Where a global service's tasks belong on `node`.
pub fn placement(node: &Node, constraints: &Constraints) -> Placement {
    let state = node.status.as_ref().map_or(0, |s| s.state);
    let availability = node.spec.as_ref().map_or(0, |s| s.availability);
    if state == NodeState::NodeDown as i32
        || availability == NodeAvailability::Drain as i32
        || !constraints.matches(node)
    {
        Placement::Stop
    } else if availability == NodeAvailability::Pause as i32 {
        Placement::Keep
    } else {
        Placement::Run
    }
}

/// A service's parsed placement constraints. Expressions that do not parse (the Control API
/// refuses them, so only an old or hand-written spec has one) match no node: such a service
/// runs nowhere rather than everywhere.
#[derive(Debug, Clone)]
pub struct Constraints(Option<Vec<Constraint>>);

impl Default for Constraints {
    fn default() -> Self {
        Self(Some(Vec::new()))
    }
}

impl Constraints {
    /// The constraints of `service`'s task spec.
    pub fn of(service: &Service) -> Self {
        let exprs = service
            .spec
            .as_ref()
            .and_then(|s| s.task.as_ref())
            .and_then(|t| t.placement.as_ref())
            .map(|p| p.constraints.as_slice())
            .unwrap_or_default();
        Self(constraint::parse_all(exprs).ok())
    }

    /// True when `node` satisfies every constraint.
    pub fn matches(&self, node: &Node) -> bool {
        self.0
            .as_deref()
            .is_some_and(|cs| constraint::first_unsatisfied(cs, node).is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::testutil::{global, node, node_in, node_with, with_constraints};
    use swarm_proto::{Annotations, NodeRole};

    fn labelled(id: &str, k: &str, v: &str) -> Node {
        let mut n = node(id);
        n.spec.as_mut().unwrap().annotations = Some(Annotations {
            name: String::new(),
            labels: [(k.to_string(), v.to_string())].into(),
        });
        n
    }

    #[test]
    fn node_state_and_availability() {
        let none = Constraints::default();
        assert_eq!(placement(&node("a"), &none), Placement::Run);
        assert_eq!(
            placement(&node_in("a", NodeState::NodeUnknown), &none),
            Placement::Run
        );
        assert_eq!(
            placement(&node_in("a", NodeState::NodeDown), &none),
            Placement::Stop
        );
        assert_eq!(
            placement(&node_with("a", NodeAvailability::Pause), &none),
            Placement::Keep
        );
        assert_eq!(
            placement(&node_with("a", NodeAvailability::Drain), &none),
            Placement::Stop
        );
    }

    #[test]
    fn constraints_match_labels_hostname_and_role() {
        let s = with_constraints(
            global("g"),
            &["node.labels.zone==eu", "node.role != manager"],
        );
        let c = Constraints::of(&s);
        assert!(c.matches(&labelled("a", "zone", "eu")));
        assert!(!c.matches(&labelled("a", "zone", "us")));
        assert!(!c.matches(&node("a")), "a missing label is not equal");
        let mut m = labelled("a", "zone", "eu");
        m.role = NodeRole::Manager as i32;
        assert!(!c.matches(&m));
        let h = Constraints::of(&with_constraints(global("g"), &["node.hostname==B"]));
        assert!(h.matches(&node("b")) && !h.matches(&node("a")));
        let ne = Constraints::of(&with_constraints(global("g"), &["node.labels.x!=1"]));
        assert!(
            ne.matches(&node("a")),
            "a missing label is not equal to anything"
        );
    }

    #[test]
    fn malformed_constraints_match_nothing() {
        let c = Constraints::of(&with_constraints(global("g"), &["node.hostname"]));
        assert!(!c.matches(&node("a")));
        assert_eq!(placement(&node("a"), &c), Placement::Stop);
    }
}
