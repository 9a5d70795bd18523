//! The task reaper (SwarmKit `manager/orchestrator/taskreaper`): deletes tasks nobody needs
//! any more, so the store does not grow with every restart.
//!
//! A task is *finished* when it can no longer change: it reached a terminal state, it never
//! got past PENDING (no agent ever had it), or its node was removed from the cluster.
//!
//! - **History**: per slot of a replicated service (per node, for a global service) keep at
//!   most `task_history_retention_limit` old tasks (desired past RUNNING and finished),
//!   deleting the oldest (by status time) first. A slot's latest task that is finished for
//!   good (desired COMPLETE) is not history: it holds the slot. The limit counts only old tasks: the
//!   slot's current task comes on top (SwarmKit counts the current task too, so its limit 5
//!   shows one fewer dead task). A negative limit keeps everything; no cluster object or no
//!   orchestration config means 5.
//! - **Removal**: a task desired REMOVE (scaled away, service removed) is deleted once
//!   finished.
//! - **Orphans**: a task whose service is gone is marked desired REMOVE if nobody did, and
//!   deleted once finished.
//!
//! ```text
//!  task desired past RUNNING ─▶ its slot/node ─┐
//!  task desired REMOVE ───────▶ the task ──────┤
//!  service / node removed ────▶ their tasks ───┼─▶ dirty ─(250 ms, or 1,000 dirty)─▶ reap(view) ─▶ store
//!  retention limit changed ───▶ everything ────┘
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use swarm_proto::{StoreAction, Task, TaskState};
use tokio_util::sync::CancellationToken;

use super::actor::{self, Reconciler};
use super::task::{self as tasks, set_desired};
use crate::store::{self, Event, EventBatch, Object, Store, Tables};

/// The retention limit when the cluster does not set one (SwarmKit's default).
pub const DEFAULT_RETENTION: i64 = 5;
/// Reap at once when this many things are dirty, rather than after the tick.
const MAX_DIRTY: usize = 1_000;

/// Something the reaper must look at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dirty {
    /// The history of one slot of a replicated service.
    Slot { service: String, slot: u64 },
    /// The history of one global service on one node.
    Node { service: String, node: String },
    /// One task that may be deletable (desired REMOVE, or its service is gone).
    Task(String),
}

impl Dirty {
    /// Where `task`'s history is kept.
    pub fn history_of(task: &Task) -> Option<Self> {
        if task.slot > 0 {
            Some(Dirty::Slot {
                service: task.service_id.clone(),
                slot: task.slot,
            })
        } else if !task.node_id.is_empty() {
            Some(Dirty::Node {
                service: task.service_id.clone(),
                node: task.node_id.clone(),
            })
        } else {
            None
        }
    }
}

/// The cluster's `task_history_retention_limit`.
pub fn retention_limit(view: &Tables) -> i64 {
    view.the_cluster()
        .and_then(|c| c.spec.as_ref())
        .and_then(|s| s.orchestration.as_ref())
        .map_or(DEFAULT_RETENTION, |o| o.task_history_retention_limit)
}

/// True when the task can no longer change: terminal, never assigned, or its node is gone.
pub fn is_finished(view: &Tables, task: &Task) -> bool {
    let s = tasks::state(task);
    s.is_terminal()
        || s < TaskState::Assigned
        || (!task.node_id.is_empty() && view.node(&task.node_id).is_none())
}

/// The actions that reap everything in `dirty`, keeping `limit` old tasks per slot/node.
pub fn reap<'a>(
    view: &Tables,
    dirty: impl IntoIterator<Item = &'a Dirty>,
    limit: i64,
) -> Vec<StoreAction> {
    let mut delete: BTreeSet<&str> = BTreeSet::new();
    let mut mark: BTreeSet<&str> = BTreeSet::new();
    for d in dirty {
        match d {
            Dirty::Task(id) => {
                let Some(t) = view.task(id) else { continue };
                let orphan = view.service(&t.service_id).is_none();
                let removing = t.desired_state == TaskState::Remove as i32;
                if (orphan || removing) && is_finished(view, t) {
                    delete.insert(&t.id);
                } else if orphan && t.desired_state < TaskState::Remove as i32 {
                    mark.insert(&t.id);
                }
            }
            Dirty::Slot { service, slot } => {
                prune(view, view.tasks_by_slot(service, *slot), limit, &mut delete);
            }
            Dirty::Node { service, node } => {
                let on_node = view
                    .tasks_by_node(node)
                    .filter(|t| t.service_id == *service && t.slot == 0);
                prune(view, on_node, limit, &mut delete);
            }
        }
    }
    let mut actions: Vec<StoreAction> = mark
        .into_iter()
        .filter(|id| !delete.contains(id))
        .map(|id| set_desired(id, TaskState::Remove))
        .collect();
    actions.extend(delete.into_iter().map(|id| {
        store::remove(Task {
            id: id.to_string(),
            ..Default::default()
        })
    }));
    actions
}

/// Adds to `delete` the finished tasks past the retention limit among `history`, oldest
/// first, and every finished task desired REMOVE.
fn prune<'a>(
    view: &Tables,
    history: impl Iterator<Item = &'a Arc<Task>>,
    limit: i64,
    delete: &mut BTreeSet<&'a str>,
) {
    let history: Vec<&Arc<Task>> = history.collect();
    // A slot's latest task, finished for good, still holds the slot: it is not history.
    let holder = tasks::latest(history.iter().copied())
        .filter(|t| tasks::is_finished_for_good(t))
        .map(|t| t.id.as_str());
    let mut old: Vec<&Arc<Task>> = history
        .into_iter()
        .filter(|t| !tasks::is_runnable(t) && is_finished(view, t))
        .filter(|t| Some(t.id.as_str()) != holder)
        .collect();
    old.retain(|t| {
        if t.desired_state == TaskState::Remove as i32 {
            delete.insert(&t.id);
            false
        } else {
            true
        }
    });
    let Ok(limit) = usize::try_from(limit) else {
        return; // negative: keep everything
    };
    if old.len() <= limit {
        return;
    }
    old.sort_by_key(|t| {
        let at = t.status.as_ref().map_or(0, |s| s.timestamp_ns);
        (at, tasks::age_key(t))
    });
    let excess = old.len() - limit;
    delete.extend(old.into_iter().take(excess).map(|t| t.id.as_str()));
}

/// Runs the task reaper until `shutdown` is cancelled. Leader-only.
pub async fn run(store: Store, shutdown: CancellationToken) {
    actor::run(store, shutdown, Reaper::default()).await;
}

#[derive(Default)]
struct Reaper {
    limit: i64,
    dirty: BTreeSet<Dirty>,
    removed_services: BTreeSet<String>,
    removed_nodes: BTreeSet<String>,
    /// Look at everything (start, or the retention limit changed).
    all: bool,
}

impl Reconciler for Reaper {
    const NAME: &'static str = "task reaper";
    const DEBOUNCE: Duration = Duration::from_millis(250);

    fn reset(&mut self, view: &Tables) {
        self.limit = retention_limit(view);
        self.all = true;
    }

    fn observe(&mut self, batch: &EventBatch) {
        for ev in &batch.events {
            match ev {
                Event::Created(Object::Task(t))
                | Event::Updated {
                    new: Object::Task(t),
                    ..
                } => {
                    if t.desired_state > TaskState::Running as i32
                        && let Some(h) = Dirty::history_of(t)
                    {
                        self.dirty.insert(h);
                    }
                    if t.desired_state == TaskState::Remove as i32 {
                        self.dirty.insert(Dirty::Task(t.id.clone()));
                    }
                }
                Event::Removed(Object::Service(s)) => {
                    self.removed_services.insert(s.id.clone());
                }
                Event::Removed(Object::Node(n)) => {
                    self.removed_nodes.insert(n.id.clone());
                }
                Event::Created(Object::Cluster(c))
                | Event::Updated {
                    new: Object::Cluster(c),
                    ..
                } => {
                    let limit = c
                        .spec
                        .as_ref()
                        .and_then(|s| s.orchestration.as_ref())
                        .map_or(DEFAULT_RETENTION, |o| o.task_history_retention_limit);
                    if limit != self.limit {
                        self.limit = limit;
                        self.all = true;
                    }
                }
                _ => {}
            }
        }
    }

    fn is_dirty(&self) -> bool {
        self.all
            || !self.dirty.is_empty()
            || !self.removed_services.is_empty()
            || !self.removed_nodes.is_empty()
    }

    fn is_urgent(&self) -> bool {
        self.dirty.len() + self.removed_services.len() + self.removed_nodes.len() > MAX_DIRTY
    }

    fn plan(&mut self, view: &Tables) -> Vec<StoreAction> {
        let mut dirty = std::mem::take(&mut self.dirty);
        if self.all {
            for t in view.tasks() {
                if let Some(h) = Dirty::history_of(t) {
                    dirty.insert(h);
                }
                if t.desired_state == TaskState::Remove as i32
                    || view.service(&t.service_id).is_none()
                {
                    dirty.insert(Dirty::Task(t.id.clone()));
                }
            }
        }
        for s in &self.removed_services {
            dirty.extend(view.tasks_by_service(s).map(|t| Dirty::Task(t.id.clone())));
        }
        for n in &self.removed_nodes {
            for t in view.tasks_by_node(n) {
                dirty.insert(Dirty::Task(t.id.clone()));
                dirty.extend(Dirty::history_of(t));
            }
        }
        let actions = reap(view, &dirty, self.limit);
        // Kept until written: a failed write retries the same work.
        self.dirty = dirty;
        actions
    }

    fn written(&mut self) {
        self.all = false;
        self.dirty.clear();
        self.removed_services.clear();
        self.removed_nodes.clear();
    }
}

#[cfg(test)]
#[path = "reaper_tests.rs"]
mod tests;
