//! The placement decision, pure: pending tasks + node bookkeeping → [`Decision`]s.
//!
//! ```text
//!  tasks ──group by (service, spec_version)──▶ one Pipeline per group
//!                                                  │
//!     pre-assigned tasks: check their own node ────┤
//!                                                  ▼
//!     other tasks: filter every node once ─▶ min-heap of (tasks of this service,
//!                                              tasks in total, node id rank)
//!                                              pop → re-check capacity → assign → push back
//! ```
//!
//! A group is filtered once against every node (O(nodes)); each task then costs one heap
//! pop and push (O(log nodes)), so 100,000 tasks of one service onto 1,000 nodes is a
//! thousand filter runs plus 200,000 heap operations. Placing a task only ever *adds* load,
//! so a node that fails the capacity re-check when popped (Resources, MaxReplicas) is
//! dropped for the rest of the group. Ties between equally loaded nodes go to the smaller
//! node id, so decisions are deterministic.
//!
//! Tasks are grouped by `(service_id, spec_version)`; tasks with the same key but different
//! placement or reservations (which a well-behaved orchestrator never creates) get their
//! own group rather than a wrong pipeline. Groups are processed in key order, and tasks in
//! input order within a group.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use swarm_proto::Task;

use super::filter::{Pipeline, Tally};
use super::node_set::NodeSet;

/// What the scheduler decided for one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Place the task on the node.
    Assign { task_id: String, node_id: String },
    /// No node can take the task now; `reason` is for the task's `status.err`.
    Unschedulable { task_id: String, reason: String },
}

impl Decision {
    pub fn task_id(&self) -> &str {
        match self {
            Decision::Assign { task_id, .. } | Decision::Unschedulable { task_id, .. } => task_id,
        }
    }
}

/// Decides where each of `tasks` (all PENDING) goes. Every assignment is recorded in
/// `nodes` as it is made, so later decisions (and later calls) see the load; a caller whose
/// write of an assignment fails must [`NodeSet::unassign`] it.
pub fn schedule(nodes: &mut NodeSet, tasks: &[Arc<Task>]) -> Vec<Decision> {
    let mut out = Vec::with_capacity(tasks.len());
    let by_id = nodes.known_slots_by_id();
    for group in group(tasks) {
        let first = &tasks[group[0]];
        let pipeline = match Pipeline::new(first) {
            Ok(p) => p,
            Err(e) => {
                let reason = e.to_string();
                out.extend(group.iter().map(|&i| Decision::Unschedulable {
                    task_id: tasks[i].id.clone(),
                    reason: reason.clone(),
                }));
                continue;
            }
        };
        let (pre, free): (Vec<usize>, Vec<usize>) =
            group.iter().partition(|&&i| !tasks[i].node_id.is_empty());
        for i in pre {
            out.push(place_preassigned(nodes, &pipeline, &tasks[i]));
        }
        if !free.is_empty() {
            place_group(
                nodes,
                &by_id,
                &pipeline,
                free.iter().map(|&i| &tasks[i]),
                &mut out,
            );
        }
    }
    out
}

/// Groups task indexes by (service, spec version, placement, reservations), in key order.
fn group(tasks: &[Arc<Task>]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_key: HashMap<(&str, u64), Vec<usize>> = HashMap::new();
    for (i, t) in tasks.iter().enumerate() {
        let candidates = by_key.entry((&t.service_id, t.spec_version)).or_default();
        let same = candidates
            .iter()
            .copied()
            .find(|&g| same_requirements(&tasks[groups[g][0]], t));
        match same {
            Some(g) => groups[g].push(i),
            None => {
                candidates.push(groups.len());
                groups.push(vec![i]);
            }
        }
    }
    groups.sort_by(|a, b| {
        let (x, y) = (&tasks[a[0]], &tasks[b[0]]);
        (&x.service_id, x.spec_version, a[0]).cmp(&(&y.service_id, y.spec_version, b[0]))
    });
    groups
}

/// True when two tasks are filtered the same way.
fn same_requirements(a: &Task, b: &Task) -> bool {
    let (a, b) = (a.spec.as_ref(), b.spec.as_ref());
    a.map(|s| &s.placement) == b.map(|s| &s.placement)
        && a.map(|s| &s.resources) == b.map(|s| &s.resources)
}

/// A task whose node was chosen by its orchestrator: that node or nothing.
fn place_preassigned(nodes: &mut NodeSet, pipeline: &Pipeline, task: &Task) -> Decision {
    let Some(slot) = nodes
        .slot(&task.node_id)
        .filter(|&s| nodes.at(s).node().is_some())
    else {
        return Decision::Unschedulable {
            task_id: task.id.clone(),
            reason: format!(
                "no suitable node (node {} is not in the cluster)",
                task.node_id
            ),
        };
    };
    match pipeline.check(nodes.at(slot)) {
        Ok(()) => {
            nodes.at_mut(slot).add(task);
            Decision::Assign {
                task_id: task.id.clone(),
                node_id: task.node_id.clone(),
            }
        }
        Err(r) => Decision::Unschedulable {
            task_id: task.id.clone(),
            reason: pipeline.explain_preassigned(nodes.at(slot), r),
        },
    }
}

/// Spreads one group's free tasks over the nodes that pass its pipeline.
fn place_group<'t>(
    nodes: &mut NodeSet,
    by_id: &[usize],
    pipeline: &Pipeline,
    tasks: impl Iterator<Item = &'t Arc<Task>>,
    out: &mut Vec<Decision>,
) {
    let service = pipeline.service_id();
    let mut tally = Tally::default();
    // (tasks of this service, tasks in total, rank in id order, slot), smallest first.
    let mut heap = BinaryHeap::with_capacity(by_id.len());
    for (rank, &slot) in by_id.iter().enumerate() {
        let info = nodes.at(slot);
        match pipeline.check(info) {
            Ok(()) => heap.push(Reverse((
                info.service_count(service),
                info.task_count(),
                rank,
                slot,
            ))),
            Err(r) => tally.add(r),
        }
    }
    let mut exhausted: Option<String> = None;
    for task in tasks {
        if let Some(reason) = &exhausted {
            out.push(Decision::Unschedulable {
                task_id: task.id.clone(),
                reason: reason.clone(),
            });
            continue;
        }
        loop {
            let Some(Reverse((_, _, rank, slot))) = heap.pop() else {
                let reason = tally.reason(pipeline);
                out.push(Decision::Unschedulable {
                    task_id: task.id.clone(),
                    reason: reason.clone(),
                });
                exhausted = Some(reason);
                break;
            };
            if let Err(r) = pipeline.check_capacity(nodes.at(slot)) {
                tally.add(r);
                continue;
            }
            let info = nodes.at_mut(slot);
            info.add(task);
            out.push(Decision::Assign {
                task_id: task.id.clone(),
                node_id: info.id().to_string(),
            });
            heap.push(Reverse((
                info.service_count(&task.service_id),
                info.task_count(),
                rank,
                slot,
            )));
            break;
        }
    }
}
