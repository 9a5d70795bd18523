//! The updater's view of a service: which slots (nodes, for a global service) run an
//! out-of-date spec, and the atomic write that moves one of them to the current spec.
//!
//! A slot's *current* tasks are its runnable ones, or — when it has none — its latest task if
//! that one is finished for good (desired COMPLETE): a task that stopped under its restart
//! policy is still updated when the spec changes, as SwarmKit does. A slot is *dirty* when
//! it has current tasks and none of them is up to date. Empty slots are the orchestrators'
//! business; slots of a global service on nodes that should not get new tasks (paused,
//! drained, down, constraints) are left alone.
//!
//! Moving a slot (one atomic write, so a concurrent restart of the same slot makes one of the
//! two writes fail rather than leaving two replacements):
//! - **stop-first**: old tasks desired SHUTDOWN, new task created desired READY (the restart
//!   supervisor's delayed start promotes it to RUNNING once the old tasks stopped); desired
//!   RUNNING at once when nothing old is still running.
//! - **start-first**: new task created desired RUNNING, guarded by rewriting the old tasks
//!   unchanged (the write fails if anyone touched them since the view). Once the new task is
//!   RUNNING, [`finish_start_first`] shuts the old ones down.

use std::collections::BTreeMap;
use std::sync::Arc;

use swarm_proto::{Service, StoreAction, Task, TaskState, UpdateOrder};

use crate::orchestrator::global::eligibility::{Constraints, Placement, placement};
use crate::orchestrator::task::{
    self as tasks, is_global, is_runnable, is_up_to_date, new_task, set_desired,
};
use crate::store::{self, Tables};

/// A slot of a replicated service, or a node of a global one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlotKey {
    Slot(u64),
    Node(String),
}

/// An out-of-date slot and its current (old) tasks.
#[derive(Debug, Clone)]
pub struct DirtySlot<'a> {
    pub key: SlotKey,
    pub old: Vec<&'a Arc<Task>>,
}

/// The service's tasks grouped by slot (node, for a global service), in key order.
fn groups<'a>(view: &'a Tables, service: &Service) -> BTreeMap<SlotKey, Vec<&'a Arc<Task>>> {
    let global = is_global(service);
    let mut groups: BTreeMap<SlotKey, Vec<&'a Arc<Task>>> = BTreeMap::new();
    for t in view.tasks_by_service(&service.id) {
        let key = if global {
            if t.node_id.is_empty() {
                continue;
            }
            SlotKey::Node(t.node_id.clone())
        } else {
            if t.slot == 0 {
                continue;
            }
            SlotKey::Slot(t.slot)
        };
        groups.entry(key).or_default().push(t);
    }
    groups
}

/// The slot's current tasks (see the module docs).
fn current<'a>(group: &[&'a Arc<Task>]) -> Vec<&'a Arc<Task>> {
    let runnable: Vec<_> = group.iter().copied().filter(|t| is_runnable(t)).collect();
    if !runnable.is_empty() {
        return runnable;
    }
    tasks::latest(group.iter().copied())
        .filter(|t| tasks::is_finished_for_good(t))
        .into_iter()
        .collect()
}

/// The out-of-date slots of `service`, in slot (node id) order.
pub fn dirty_slots<'a>(view: &'a Tables, service: &Service) -> Vec<DirtySlot<'a>> {
    let global = is_global(service);
    let constraints = global.then(|| Constraints::of(service));
    groups(view, service)
        .into_iter()
        .filter(|(key, _)| match (key, &constraints) {
            (SlotKey::Node(n), Some(c)) => view
                .node(n)
                .is_some_and(|n| placement(n, c) == Placement::Run),
            _ => true,
        })
        .filter_map(|(key, group)| {
            let old = current(&group);
            (!old.is_empty() && !old.iter().any(|t| is_up_to_date(t, service)))
                .then_some(DirtySlot { key, old })
        })
        .collect()
}

/// The atomic actions that move `slot` to `service`'s spec, and the new task's id.
pub fn update_slot(
    service: &Service,
    slot: &DirtySlot,
    order: UpdateOrder,
) -> (Vec<StoreAction>, String) {
    let (number, node) = match &slot.key {
        SlotKey::Slot(n) => (*n, None),
        SlotKey::Node(n) => (0, Some(n.as_str())),
    };
    let mut new = new_task(service, number, node);
    let id = new.id.clone();
    let live = |t: &Task| {
        let s = tasks::state(t);
        s >= TaskState::Assigned && !s.is_terminal()
    };
    let any_live = slot.old.iter().any(|t| live(t));
    let mut actions = Vec::with_capacity(slot.old.len() + 1);
    if order == UpdateOrder::StartFirst && any_live {
        actions.extend(slot.old.iter().map(|t| store::update((***t).clone())));
    } else {
        if any_live {
            new.desired_state = TaskState::Ready as i32;
        }
        actions.extend(
            slot.old
                .iter()
                .filter(|t| t.desired_state < TaskState::Shutdown as i32)
                .map(|t| set_desired(&t.id, TaskState::Shutdown)),
        );
    }
    actions.push(store::create(new));
    (actions, id)
}

/// Shuts down out-of-date runnable tasks in every slot where an up-to-date task is RUNNING
/// (the second half of a start-first update; also tidies up after a leader change).
pub fn finish_start_first(view: &Tables, service: &Service) -> Vec<StoreAction> {
    let mut actions = Vec::new();
    for group in groups(view, service).values() {
        let replaced = group.iter().any(|t| {
            is_runnable(t) && is_up_to_date(t, service) && tasks::state(t) == TaskState::Running
        });
        if replaced {
            actions.extend(
                group
                    .iter()
                    .filter(|t| is_runnable(t) && !is_up_to_date(t, service))
                    .map(|t| set_desired(&t.id, TaskState::Shutdown)),
            );
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::task::desired as desired_of;
    use crate::orchestrator::testutil::{
        applied, desired, global, node, node_with, replicated, tables, task, tasks_of,
    };
    use swarm_proto::NodeAvailability;

    /// `s` at version 9 with a changed task spec.
    fn changed(mut s: Service) -> Service {
        s.meta.as_mut().unwrap().version = 9;
        s.spec.as_mut().unwrap().task.as_mut().unwrap().force_update += 1;
        s
    }

    #[test]
    fn t10_dirty_slots_are_those_without_an_up_to_date_task() {
        let v1 = replicated("svc", 3);
        let v2 = changed(v1.clone());
        let ts = [
            task(&v1, 1, "n1", TaskState::Running, 1),
            task(&v2, 2, "n1", TaskState::Running, 1),
            desired(
                task(&v1, 3, "n1", TaskState::Complete, 1),
                TaskState::Complete,
            ),
            desired(
                task(&v1, 4, "n1", TaskState::Failed, 1),
                TaskState::Shutdown,
            ),
        ];
        let view = tables(std::slice::from_ref(&v2), &[node("n1")], &ts);
        let dirty: Vec<SlotKey> = dirty_slots(&view, &v2).into_iter().map(|d| d.key).collect();
        assert_eq!(
            dirty,
            [SlotKey::Slot(1), SlotKey::Slot(3)],
            "slot 4 is empty, slot 2 current"
        );
    }

    #[test]
    fn t11_scaling_does_not_make_slots_dirty() {
        let v1 = replicated("svc", 1);
        let mut scaled = v1.clone();
        scaled.meta.as_mut().unwrap().version = 9;
        let ts = [task(&v1, 1, "n1", TaskState::Running, 1)];
        let view = tables(std::slice::from_ref(&scaled), &[node("n1")], &ts);
        assert!(dirty_slots(&view, &scaled).is_empty());
    }

    #[test]
    fn t12_stop_first_stops_the_old_task_and_starts_the_new_one_waiting() {
        let v1 = replicated("svc", 1);
        let v2 = changed(v1.clone());
        let old = task(&v1, 1, "n1", TaskState::Running, 1);
        let view = tables(
            std::slice::from_ref(&v2),
            &[node("n1")],
            std::slice::from_ref(&old),
        );
        let dirty = dirty_slots(&view, &v2);
        let (actions, new_id) = update_slot(&v2, &dirty[0], UpdateOrder::StopFirst);
        let after = applied(&view, actions);
        assert_eq!(
            desired_of(after.task(&old.id).unwrap()),
            TaskState::Shutdown
        );
        let new = after.task(&new_id).unwrap();
        assert_eq!(
            (new.slot, desired_of(new), new.spec_version),
            (1, TaskState::Ready, 9)
        );
        assert!(dirty_slots(&after, &v2).is_empty());
    }

    #[test]
    fn t13_start_first_keeps_the_old_task_until_the_new_one_runs() {
        let v1 = replicated("svc", 1);
        let v2 = changed(v1.clone());
        let old = task(&v1, 1, "n1", TaskState::Running, 1);
        let view = tables(
            std::slice::from_ref(&v2),
            &[node("n1")],
            std::slice::from_ref(&old),
        );
        let dirty = dirty_slots(&view, &v2);
        let (actions, new_id) = update_slot(&v2, &dirty[0], UpdateOrder::StartFirst);
        let after = applied(&view, actions);
        assert_eq!(desired_of(after.task(&old.id).unwrap()), TaskState::Running);
        assert_eq!(desired_of(after.task(&new_id).unwrap()), TaskState::Running);
        assert!(
            finish_start_first(&after, &v2).is_empty(),
            "the new task does not run yet"
        );
        let mut running = (**after.task(&new_id).unwrap()).clone();
        running.status.as_mut().unwrap().state = TaskState::Running as i32;
        let after = applied(&after, vec![store::update(running)]);
        let done = applied(&after, finish_start_first(&after, &v2));
        assert_eq!(desired_of(done.task(&old.id).unwrap()), TaskState::Shutdown);
    }

    #[test]
    fn t14_global_updates_only_on_nodes_that_take_new_tasks() {
        let v1 = global("g");
        let v2 = changed(v1.clone());
        let ts = [
            task(&v1, 0, "a", TaskState::Running, 1),
            task(&v1, 0, "p", TaskState::Running, 1),
        ];
        let nodes = [node("a"), node_with("p", NodeAvailability::Pause)];
        let view = tables(std::slice::from_ref(&v2), &nodes, &ts);
        let dirty = dirty_slots(&view, &v2);
        assert_eq!(dirty.len(), 1);
        assert_eq!(dirty[0].key, SlotKey::Node("a".into()));
        let (actions, _) = update_slot(&v2, &dirty[0], UpdateOrder::StopFirst);
        let after = applied(&view, actions);
        let on_a: Vec<_> = tasks_of(&after, "g")
            .into_iter()
            .filter(|t| t.node_id == "a")
            .collect();
        assert_eq!(on_a.len(), 2);
    }
}
