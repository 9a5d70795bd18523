//! The replicated orchestrator's decision: from a view and one service, the actions that give
//! the service exactly `replicas` occupied slots.
//!
//! A slot is occupied when it holds a runnable task (desired ≤ RUNNING) or its latest task is
//! finished for good (desired COMPLETE: its restart policy said not to run it again). Slots
//! are numbered from 1 and need not stay contiguous after a scale-down.
//!
//! - Too few occupied slots: new tasks fill the lowest free slot numbers.
//! - Too many: whole slots are removed (every task in them desired REMOVE), chosen in this
//!   order: slots with nothing running first (SwarmKit's preference), then slots not yet on a
//!   node, then the slots whose node runs the most copies of the service (so what remains is
//!   balanced over nodes, as SwarmKit does), then the highest slot number. Ties are broken by
//!   slot number, so the outcome is deterministic.
//! - Slots that are not occupied (only shut-down history) are left to the reaper.
//!
//! Restarting tasks that ended is not this module's job (see `restart`), nor is replacing
//! tasks whose spec is out of date (see `update`).
//!
//! Cost: one pass over the service's tasks (by the service index) plus one pass over slot
//! numbers, so a 100,000-replica service is linear.

use std::collections::HashMap;
use std::sync::Arc;

use swarm_proto::{Service, StoreAction, Task, TaskState};

use crate::orchestrator::task::{
    self as tasks, is_finished_for_good, is_runnable, new_task, set_desired,
};
use crate::store::{self, Tables};

/// What one slot holds.
#[derive(Debug, Default)]
struct Slot<'a> {
    tasks: Vec<&'a Arc<Task>>,
    runnable: usize,
    running: bool,
    /// The node of the slot's only runnable task, when it has one and it is assigned.
    node: Option<&'a str>,
}

impl Slot<'_> {
    fn occupied(&self) -> bool {
        self.runnable > 0
            || tasks::latest(self.tasks.iter().copied()).is_some_and(|t| is_finished_for_good(t))
    }
}

/// The actions that bring `service` (replicated) to its replica count in `view`.
pub fn reconcile(view: &Tables, service: &Service) -> Vec<StoreAction> {
    let Some(replicas) = tasks::replicas(service) else {
        return Vec::new();
    };
    let slots = slots_of(view, &service.id);
    let mut occupied: Vec<(u64, &Slot)> = slots
        .iter()
        .filter(|(_, s)| s.occupied())
        .map(|(n, s)| (*n, s))
        .collect();
    let want = usize::try_from(replicas).unwrap_or(usize::MAX);
    let mut actions = Vec::new();
    if occupied.len() < want {
        let mut missing = want - occupied.len();
        actions.reserve(missing);
        let mut slot = 0u64;
        while missing > 0 {
            slot += 1;
            if slots.get(&slot).is_some_and(|s| s.occupied()) {
                continue;
            }
            actions.push(store::create(new_task(service, slot, None)));
            missing -= 1;
        }
    } else if occupied.len() > want {
        let surplus = occupied.len() - want;
        occupied.sort_unstable_by_key(|(n, _)| *n);
        let copy_index = copies_on_node(&occupied);
        occupied.sort_unstable_by(|(a, sa), (b, sb)| {
            let key = |n: &u64, s: &Slot| {
                (
                    s.running,
                    s.node.is_some(),
                    std::cmp::Reverse(copy_index.get(n).copied().unwrap_or(0)),
                    std::cmp::Reverse(*n),
                )
            };
            key(a, sa).cmp(&key(b, sb))
        });
        for (_, slot) in occupied.iter().take(surplus) {
            actions.extend(
                slot.tasks
                    .iter()
                    .filter(|t| t.desired_state < TaskState::Remove as i32)
                    .map(|t| set_desired(&t.id, TaskState::Remove)),
            );
        }
    }
    actions
}

/// The service's tasks grouped by slot (slot 0, which replicated tasks never use, is skipped).
fn slots_of<'a>(view: &'a Tables, service_id: &str) -> HashMap<u64, Slot<'a>> {
    let mut slots: HashMap<u64, Slot<'a>> = HashMap::new();
    for t in view.tasks_by_service(service_id) {
        if t.slot == 0 {
            continue;
        }
        let slot = slots.entry(t.slot).or_default();
        slot.tasks.push(t);
        if is_runnable(t) {
            slot.runnable += 1;
            slot.running |= tasks::state(t) == TaskState::Running;
            slot.node = (!t.node_id.is_empty()).then_some(t.node_id.as_str());
        }
    }
    for slot in slots.values_mut() {
        if slot.runnable != 1 {
            slot.node = None;
        }
    }
    slots
}

/// For each slot (in slot order) on a node: it is the n-th copy of the service on that node.
fn copies_on_node(occupied: &[(u64, &Slot)]) -> HashMap<u64, usize> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    let mut index = HashMap::new();
    for (n, s) in occupied {
        if let Some(node) = s.node {
            let c = per_node.entry(node).or_default();
            *c += 1;
            index.insert(*n, *c);
        }
    }
    index
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
