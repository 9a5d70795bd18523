//! [`NodeSet`]: every node's [`NodeInfo`], kept up to date from the store's events.
//!
//! Infos live in a dense `Vec` (a *slot* per node) so that the placement heap in
//! [`decide`](super::decide) orders plain integers; slots are only stable between two
//! changes of the node list.

use std::collections::HashMap;
use std::sync::Arc;

use swarm_proto::{Node, Task};

use super::node_info::NodeInfo;
use crate::store::Tables;

/// Every known node and the tasks occupying it.
#[derive(Debug, Clone, Default)]
pub struct NodeSet {
    infos: Vec<NodeInfo>,
    slots: HashMap<String, usize>,
}

impl NodeSet {
    /// The nodes of a store view and the tasks occupying them.
    pub fn from_tables(tables: &Tables) -> Self {
        let mut set = NodeSet::default();
        for n in tables.nodes() {
            set.upsert_node(n.clone());
        }
        for t in tables.tasks() {
            set.observe_task(t);
        }
        set
    }

    /// Builds a set from nodes and tasks (tests, benchmarks).
    pub fn new(nodes: impl IntoIterator<Item = Arc<Node>>, tasks: &[Arc<Task>]) -> Self {
        let mut set = NodeSet::default();
        for n in nodes {
            set.upsert_node(n);
        }
        for t in tasks {
            set.observe_task(t);
        }
        set
    }

    /// How many nodes (known or only named by tasks) the set holds.
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&NodeInfo> {
        self.slots.get(id).map(|&s| &self.infos[s])
    }

    pub(super) fn slot(&self, id: &str) -> Option<usize> {
        self.slots.get(id).copied()
    }

    pub(super) fn at(&self, slot: usize) -> &NodeInfo {
        &self.infos[slot]
    }

    pub(super) fn at_mut(&mut self, slot: usize) -> &mut NodeInfo {
        &mut self.infos[slot]
    }

    /// Slots of the nodes that exist in the store, in node id order.
    pub(super) fn known_slots_by_id(&self) -> Vec<usize> {
        let mut slots: Vec<usize> = (0..self.infos.len())
            .filter(|&s| self.infos[s].node().is_some())
            .collect();
        slots.sort_unstable_by(|&a, &b| self.infos[a].id().cmp(self.infos[b].id()));
        slots
    }

    fn slot_or_insert(&mut self, id: &str) -> usize {
        if let Some(&s) = self.slots.get(id) {
            return s;
        }
        let s = self.infos.len();
        self.infos.push(NodeInfo::new(id, None));
        self.slots.insert(id.to_string(), s);
        s
    }

    /// Adds a node or replaces its object, keeping its tasks.
    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let s = self.slot_or_insert(&node.id);
        self.infos[s].set_node(Some(node));
    }

    /// Forgets a removed node. Tasks still naming it keep an (unknown, never eligible) entry.
    pub fn remove_node(&mut self, id: &str) {
        let Some(&s) = self.slots.get(id) else {
            return;
        };
        if self.infos[s].is_empty() {
            self.slots.remove(id);
            self.infos.swap_remove(s);
            if let Some(moved) = self.infos.get(s) {
                self.slots.insert(moved.id().to_string(), s);
            }
        } else {
            self.infos[s].set_node(None);
        }
    }

    /// Brings the bookkeeping of `task` in line with its current state: it occupies its node
    /// or it does not. Returns true when this freed capacity on a node.
    pub fn observe_task(&mut self, task: &Task) -> bool {
        if NodeInfo::occupies(task) {
            let s = self.slot_or_insert(&task.node_id);
            self.infos[s].add(task);
            false
        } else {
            self.forget_task(task)
        }
    }

    /// Forgets a removed (or no longer occupying) task; true when this freed capacity.
    pub fn forget_task(&mut self, task: &Task) -> bool {
        if task.node_id.is_empty() {
            return false;
        }
        self.unassign(&task.node_id, &task.id)
    }

    /// Forgets that `task_id` occupies `node_id` (a placement that did not commit).
    pub fn unassign(&mut self, node_id: &str, task_id: &str) -> bool {
        let Some(&s) = self.slots.get(node_id) else {
            return false;
        };
        let freed = self.infos[s].remove(task_id);
        if freed && self.infos[s].node().is_none() && self.infos[s].is_empty() {
            self.remove_node(node_id);
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::fixtures::{NodeBuilder, TaskBuilder};
    use swarm_proto::TaskState;

    #[test]
    fn tracks_tasks_through_their_states() {
        let mut set = NodeSet::new([NodeBuilder::new("n1").arc()], &[]);
        let running = TaskBuilder::new("t1", "s")
            .on("n1", TaskState::Running)
            .build();
        assert!(!set.observe_task(&running));
        assert_eq!(set.get("n1").unwrap().task_count(), 1);
        let done = TaskBuilder::new("t1", "s")
            .on("n1", TaskState::Complete)
            .build();
        assert!(set.observe_task(&done), "finishing frees capacity");
        assert!(!set.observe_task(&done));
        assert_eq!(set.get("n1").unwrap().task_count(), 0);
    }

    #[test]
    fn unknown_nodes_are_placeholders_until_created() {
        let mut set = NodeSet::default();
        let t = TaskBuilder::new("t1", "s")
            .on("n9", TaskState::Running)
            .build();
        set.observe_task(&t);
        assert!(set.get("n9").unwrap().node().is_none());
        assert!(set.known_slots_by_id().is_empty());
        set.upsert_node(NodeBuilder::new("n9").arc());
        assert_eq!(set.known_slots_by_id().len(), 1);
        assert_eq!(set.get("n9").unwrap().task_count(), 1);
        set.remove_node("n9");
        assert!(set.get("n9").is_some(), "kept while a task names it");
        assert!(set.forget_task(&t));
        assert!(set.get("n9").is_none());
    }

    #[test]
    fn removing_a_node_keeps_the_other_slots_consistent() {
        let mut set = NodeSet::new(
            ["a", "b", "c"].map(|id| NodeBuilder::new(id).arc()),
            &[TaskBuilder::new("t", "s").on("c", TaskState::Running).arc()],
        );
        set.remove_node("a");
        assert!(set.get("a").is_none());
        assert_eq!(set.get("c").unwrap().task_count(), 1);
        let ids: Vec<_> = set
            .known_slots_by_id()
            .into_iter()
            .map(|s| set.at(s).id().to_string())
            .collect();
        assert_eq!(ids, ["b", "c"]);
    }
}
