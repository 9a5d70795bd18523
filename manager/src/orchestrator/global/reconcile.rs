//! The global orchestrator's decision: from a view and one global service, the actions that
//! leave one occupied task on every node that should run it and none elsewhere.
//!
//! Per node (see [`placement`]):
//! - `Run`: if nothing occupies the node (no runnable task, and the latest task is not
//!   finished for good), create a task with `node_id` set (slot 0). It still goes NEW →
//!   PENDING → ASSIGNED like any task; the scheduler only confirms the preset node.
//! - `Keep` (paused): leave what is there, create nothing.
//! - `Stop` (down, drained, constraints no longer match): runnable tasks desired SHUTDOWN.
//!   They stay as the node's history; when the node is eligible again the latest task is
//!   shut down, so a new one is created.
//!
//! Tasks on nodes that are no longer in the store (and any global task without a node) are
//! desired REMOVE: they will never report again, and the reaper deletes them.
//!
//! Restarting a task that ended on an eligible node is the restart supervisor's job; replacing
//! out-of-date tasks is the updater's.

use std::collections::HashMap;
use std::sync::Arc;

use swarm_proto::{Service, StoreAction, Task, TaskState};

use super::eligibility::{Constraints, Placement, placement};
use crate::orchestrator::task::{is_global, is_runnable, new_task, occupies, set_desired};
use crate::store::{self, Tables};

/// The actions that bring global `service` to one task per eligible node in `view`.
pub fn reconcile(view: &Tables, service: &Service) -> Vec<StoreAction> {
    if !is_global(service) {
        return Vec::new();
    }
    let constraints = Constraints::of(service);
    let mut by_node: HashMap<&str, Vec<&Arc<Task>>> = HashMap::new();
    for t in view.tasks_by_service(&service.id) {
        by_node.entry(t.node_id.as_str()).or_default().push(t);
    }
    let mut actions = Vec::new();
    for node in view.nodes() {
        let tasks = by_node.remove(node.id.as_str()).unwrap_or_default();
        match placement(node, &constraints) {
            Placement::Run => {
                if !occupies(tasks.iter().copied()) {
                    actions.push(store::create(new_task(service, 0, Some(&node.id))));
                }
            }
            Placement::Keep => {}
            Placement::Stop => actions.extend(
                tasks
                    .iter()
                    .filter(|t| is_runnable(t))
                    .map(|t| set_desired(&t.id, TaskState::Shutdown)),
            ),
        }
    }
    // What is left belongs to nodes that are gone (or to no node at all).
    for tasks in by_node.into_values() {
        actions.extend(
            tasks
                .iter()
                .filter(|t| t.desired_state < TaskState::Remove as i32)
                .map(|t| set_desired(&t.id, TaskState::Remove)),
        );
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::task::{desired as desired_of, state};
    use crate::orchestrator::testutil::{
        applied, desired, global, node, node_in, node_with, replicated, tables, task, tasks_of,
        with_constraints,
    };
    use swarm_proto::{Annotations, NodeAvailability, NodeState};

    fn runnable_nodes(view: &Tables, service: &str) -> Vec<String> {
        let mut v: Vec<String> = view
            .tasks_by_service(service)
            .filter(|t| is_runnable(t))
            .map(|t| t.node_id.clone())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn t10_one_task_per_eligible_node() {
        let s = global("g");
        let nodes = [
            node("a"),
            node("b"),
            node_in("down", NodeState::NodeDown),
            node_with("drained", NodeAvailability::Drain),
            node_with("paused", NodeAvailability::Pause),
        ];
        let view = tables(std::slice::from_ref(&s), &nodes, &[]);
        let actions = reconcile(&view, &s);
        assert_eq!(actions.len(), 2);
        let after = applied(&view, actions);
        assert_eq!(runnable_nodes(&after, "g"), ["a", "b"]);
        for t in tasks_of(&after, "g") {
            assert_eq!(t.slot, 0);
            assert_eq!(state(&t), TaskState::New);
        }
        assert!(reconcile(&after, &s).is_empty(), "converged");
    }

    #[test]
    fn t11_constraints_choose_the_nodes() {
        let s = with_constraints(global("g"), &["node.labels.gpu==yes"]);
        let mut gpu = node("gpu");
        gpu.spec.as_mut().unwrap().annotations = Some(Annotations {
            name: String::new(),
            labels: [("gpu".to_string(), "yes".to_string())].into(),
        });
        let view = tables(std::slice::from_ref(&s), &[gpu, node("plain")], &[]);
        let after = applied(&view, reconcile(&view, &s));
        assert_eq!(runnable_nodes(&after, "g"), ["gpu"]);
    }

    #[test]
    fn t20_drain_and_constraint_loss_shut_tasks_down() {
        let s = with_constraints(global("g"), &["node.hostname!=excluded"]);
        let tasks = [
            task(&s, 0, "drained", TaskState::Running, 1),
            task(&s, 0, "excluded", TaskState::Running, 1),
            task(&s, 0, "paused", TaskState::Running, 1),
            task(&s, 0, "ok", TaskState::Running, 1),
        ];
        let nodes = [
            node_with("drained", NodeAvailability::Drain),
            node("excluded"),
            node_with("paused", NodeAvailability::Pause),
            node("ok"),
        ];
        let view = tables(std::slice::from_ref(&s), &nodes, &tasks);
        let after = applied(&view, reconcile(&view, &s));
        for t in tasks_of(&after, "g") {
            let want = match t.node_id.as_str() {
                "drained" | "excluded" => TaskState::Shutdown,
                _ => TaskState::Running,
            };
            assert_eq!(desired_of(&t), want, "task on {}", t.node_id);
        }
        assert_eq!(after.task_count(), 4, "no new tasks");
    }

    #[test]
    fn t21_a_node_back_from_drain_gets_a_new_task() {
        let s = global("g");
        let old = desired(
            task(&s, 0, "a", TaskState::Shutdown, 1),
            TaskState::Shutdown,
        );
        let view = tables(std::slice::from_ref(&s), &[node("a")], &[old]);
        let after = applied(&view, reconcile(&view, &s));
        assert_eq!(runnable_nodes(&after, "g"), ["a"]);
        assert_eq!(after.task_count(), 2, "the old task stays as history");
    }

    #[test]
    fn t22_a_task_finished_for_good_occupies_its_node() {
        let s = global("g");
        let done = desired(
            task(&s, 0, "a", TaskState::Complete, 1),
            TaskState::Complete,
        );
        let view = tables(std::slice::from_ref(&s), &[node("a")], &[done]);
        assert!(reconcile(&view, &s).is_empty());
    }

    #[test]
    fn t23_tasks_of_removed_nodes_are_removed() {
        let s = global("g");
        let tasks = [
            task(&s, 0, "gone", TaskState::Running, 1),
            desired(
                task(&s, 0, "gone", TaskState::Failed, 0),
                TaskState::Shutdown,
            ),
        ];
        let view = tables(std::slice::from_ref(&s), &[], &tasks);
        let after = applied(&view, reconcile(&view, &s));
        assert!(
            tasks_of(&after, "g")
                .iter()
                .all(|t| desired_of(t) == TaskState::Remove)
        );
    }

    #[test]
    fn t30_replicated_services_are_ignored() {
        let s = replicated("r", 2);
        let view = tables(std::slice::from_ref(&s), &[node("a")], &[]);
        assert!(reconcile(&view, &s).is_empty());
    }
}
