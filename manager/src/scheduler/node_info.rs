//! [`NodeInfo`]: what the scheduler knows about one node — the node object and the tasks
//! that occupy it (how many in total and per service, and what they reserve).
//!
//! A task *occupies* its node while it is placed (state ASSIGNED or later), not finished
//! (state before COMPLETE) and still wanted (desired state RUNNING or before). A PENDING task
//! pre-assigned to a node (global services) does not occupy it until the scheduler assigns
//! it, so checking that task against its node does not count the task twice.

use std::collections::HashMap;
use std::sync::Arc;

use swarm_proto::{Node, NodeAvailability, NodeState, Task, TaskState};

/// CPU and memory, in the units of [`swarm_proto::Resources`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub nano_cpus: i64,
    pub memory_bytes: i64,
}

impl Usage {
    /// What `task` reserves (zero where it reserves nothing).
    pub fn reserved_by(task: &Task) -> Usage {
        task.spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.reservations.as_ref())
            .map_or_else(Usage::default, |r| Usage {
                nano_cpus: r.nano_cpus.max(0),
                memory_bytes: r.memory_bytes.max(0),
            })
    }

    pub fn is_zero(&self) -> bool {
        self.nano_cpus == 0 && self.memory_bytes == 0
    }
}

/// One task occupying a node.
#[derive(Debug, Clone)]
struct Occupant {
    service_id: String,
    reserved: Usage,
}

/// One node and the tasks that occupy it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    id: String,
    /// `None` while tasks name a node the scheduler has not seen (yet); such a node is
    /// never a candidate.
    node: Option<Arc<Node>>,
    tasks: HashMap<String, Occupant>,
    by_service: HashMap<String, usize>,
    reserved: Usage,
}

impl NodeInfo {
    /// A node that nothing occupies yet.
    pub fn new(id: &str, node: Option<Arc<Node>>) -> Self {
        NodeInfo {
            id: id.to_string(),
            node,
            tasks: HashMap::new(),
            by_service: HashMap::new(),
            reserved: Usage::default(),
        }
    }

    /// True when `task` occupies the node it names (see the module docs).
    pub fn occupies(task: &Task) -> bool {
        let state = task.status.as_ref().map_or(0, |s| s.state);
        !task.node_id.is_empty()
            && state >= TaskState::Assigned as i32
            && !TaskState::of(state).is_terminal()
            && task.desired_state <= TaskState::Running as i32
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn node(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    pub fn set_node(&mut self, node: Option<Arc<Node>>) {
        self.node = node;
    }

    /// True when the node reports READY.
    pub fn is_ready(&self) -> bool {
        self.node
            .as_ref()
            .and_then(|n| n.status.as_ref())
            .is_some_and(|s| s.state == NodeState::NodeReady as i32)
    }

    /// True when the node takes new tasks (availability ACTIVE, the default).
    pub fn is_active(&self) -> bool {
        self.node.as_ref().is_some_and(|n| {
            n.spec
                .as_ref()
                .is_none_or(|s| s.availability == NodeAvailability::Active as i32)
        })
    }

    /// The node's capacity; a zero field means "unknown", i.e. not limited.
    pub fn capacity(&self) -> Usage {
        self.node
            .as_ref()
            .and_then(|n| n.description.as_ref())
            .and_then(|d| d.resources.as_ref())
            .map_or_else(Usage::default, |r| Usage {
                nano_cpus: r.nano_cpus,
                memory_bytes: r.memory_bytes,
            })
    }

    /// What the occupying tasks reserve.
    pub fn reserved(&self) -> Usage {
        self.reserved
    }

    /// How many tasks occupy the node.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// How many tasks of `service_id` occupy the node.
    pub fn service_count(&self, service_id: &str) -> usize {
        self.by_service.get(service_id).copied().unwrap_or(0)
    }

    /// True when nothing occupies the node.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Records `task` as occupying this node (whatever its state says: the scheduler calls
    /// this for a task it is about to assign). Idempotent per task id.
    pub fn add(&mut self, task: &Task) {
        if self.tasks.contains_key(&task.id) {
            return;
        }
        let reserved = Usage::reserved_by(task);
        self.reserved.nano_cpus += reserved.nano_cpus;
        self.reserved.memory_bytes += reserved.memory_bytes;
        match self.by_service.get_mut(&task.service_id) {
            Some(n) => *n += 1,
            None => {
                self.by_service.insert(task.service_id.clone(), 1);
            }
        }
        self.tasks.insert(
            task.id.clone(),
            Occupant {
                service_id: task.service_id.clone(),
                reserved,
            },
        );
    }

    /// Forgets the task `task_id`; true when it occupied the node (capacity was freed).
    pub fn remove(&mut self, task_id: &str) -> bool {
        let Some(o) = self.tasks.remove(task_id) else {
            return false;
        };
        self.reserved.nano_cpus -= o.reserved.nano_cpus;
        self.reserved.memory_bytes -= o.reserved.memory_bytes;
        if let Some(n) = self.by_service.get_mut(&o.service_id) {
            *n -= 1;
            if *n == 0 {
                self.by_service.remove(&o.service_id);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::fixtures::{MIB, NodeBuilder, TaskBuilder};

    #[test]
    fn occupying_tasks_are_placed_unfinished_and_wanted() {
        let t = |state, desired| {
            NodeInfo::occupies(
                &TaskBuilder::new("t", "s")
                    .on("n1", state)
                    .desired(desired)
                    .build(),
            )
        };
        assert!(t(TaskState::Assigned, TaskState::Running));
        assert!(t(TaskState::Running, TaskState::Running));
        assert!(t(TaskState::Preparing, TaskState::Ready));
        assert!(
            !t(TaskState::Pending, TaskState::Running),
            "pre-assigned only"
        );
        assert!(!t(TaskState::Complete, TaskState::Running), "finished");
        assert!(!t(TaskState::Failed, TaskState::Running), "finished");
        assert!(
            !t(TaskState::Running, TaskState::Shutdown),
            "being shut down"
        );
        assert!(
            !NodeInfo::occupies(&TaskBuilder::new("t", "s").build()),
            "no node"
        );
    }

    #[test]
    fn counts_per_service_and_reservations() {
        let mut n = NodeInfo::new("n1", Some(NodeBuilder::new("n1").arc()));
        let a1 = TaskBuilder::new("a1", "A").reserve(100, 10 * MIB).build();
        let a2 = TaskBuilder::new("a2", "A").reserve(200, 0).build();
        let b1 = TaskBuilder::new("b1", "B").build();
        n.add(&a1);
        n.add(&a2);
        n.add(&b1);
        n.add(&a1); // idempotent
        assert_eq!(n.task_count(), 3);
        assert_eq!(n.service_count("A"), 2);
        assert_eq!(n.service_count("B"), 1);
        assert_eq!(n.service_count("C"), 0);
        assert_eq!(
            n.reserved(),
            Usage {
                nano_cpus: 300,
                memory_bytes: 10 * MIB
            }
        );
        assert!(n.remove("a1"));
        assert!(!n.remove("a1"));
        assert_eq!(n.service_count("A"), 1);
        assert_eq!(n.reserved().nano_cpus, 200);
        assert_eq!(n.reserved().memory_bytes, 0);
        assert!(n.remove("a2") && n.remove("b1"));
        assert!(n.is_empty());
        assert_eq!(n.service_count("A"), 0);
    }

    #[test]
    fn readiness_and_availability_come_from_the_node() {
        use swarm_proto::{NodeAvailability as A, NodeState as S};
        let info = |b: NodeBuilder| NodeInfo::new("n", Some(b.arc()));
        assert!(info(NodeBuilder::new("n")).is_ready());
        assert!(info(NodeBuilder::new("n")).is_active());
        assert!(!info(NodeBuilder::new("n").state(S::NodeDown)).is_ready());
        assert!(!info(NodeBuilder::new("n").availability(A::Drain)).is_active());
        assert!(!info(NodeBuilder::new("n").availability(A::Pause)).is_active());
        let unknown = NodeInfo::new("n", None);
        assert!(!unknown.is_ready() && !unknown.is_active());
    }
}
