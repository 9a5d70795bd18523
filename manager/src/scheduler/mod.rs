//! The scheduler: assigns PENDING tasks to nodes (leader only).
//!
//! ```text
//!   store.watch(All) ──events──▶ Scheduler ── NodeSet (node infos: load, reservations)
//!                                   │          pending / parked (unschedulable) tasks
//!                                   │ pass (debounced)
//!                                   ▼
//!                       decide::schedule (pure) ──▶ Vec<Decision>
//!                                   │
//!       store.write(≤ 2,000 task patches) ◀── ASSIGNED + node, or PENDING + err
//! ```
//!
//! * **Decisions** are pure ([`decide::schedule`] over a [`NodeSet`]); the loop here only
//!   turns events into bookkeeping and decisions into writes.
//! * **Which tasks**: state PENDING, desired state RUNNING or before; with no node, or with a
//!   node chosen by the orchestrator (global services), which is then the only candidate.
//! * **Debounce**: a pass runs once the event channel is drained, and passes are at least
//!   [`PASS_INTERVAL`] apart, so under load placements are committed in batches every
//!   ~50 ms (SwarmKit commits after 50 ms of quiet, at most 1 s late).
//! * **Writes** are [`TaskPatch`]es in batches of at most [`MAX_WRITE`] actions, several
//!   proposed at once (a failed one is requeued, the others stand). A rejected
//!   patch means the task changed under us: it is dropped (and its tentative placement
//!   undone); its next event brings it back if it is still pending. An event older than our
//!   own write of a task is ignored, so a stale PENDING event cannot re-queue a task we
//!   just placed.
//! * **Unschedulable** tasks get `status.err` explaining why ("no suitable node (…)",
//!   moby#32999), written only when the text changes, and wait ("parked") until a node
//!   changes or a task frees capacity; then they are all retried.
//! * The watch closes when the store is restored from a snapshot: the scheduler then
//!   rebuilds everything from a fresh view.

pub mod constraint;
mod decide;
mod filter;
mod node_info;
mod node_set;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use swarm_proto::{Node, Task, TaskPatch, TaskState, TaskStatus};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::metrics::{SCHEDULER_PLACEMENTS, SCHEDULER_UNSCHEDULABLE};
use crate::store::{self, Event, EventBatch, Object, Store, Tables, WatchFilter};

pub use constraint::{Constraint, ConstraintError};
pub use decide::{Decision, schedule};
pub use filter::{Pipeline, Rejection, Tally};
pub use node_info::{NodeInfo, Usage};
pub use node_set::NodeSet;

/// Minimum time between two scheduling passes.
pub const PASS_INTERVAL: Duration = Duration::from_millis(50);
/// Most actions in one store write.
pub const MAX_WRITE: usize = 2_000;
/// Writes of one pass proposed at once (raft orders them; one Ready commits them together).
const WRITES_IN_FLIGHT: usize = 32;
/// How long to wait after a failed write before the next pass.
const WRITE_RETRY: Duration = Duration::from_secs(1);
/// Longest time spent draining queued events before a due pass may run.
const DRAIN_BUDGET: Duration = Duration::from_millis(50);

/// Runs the scheduler until `shutdown` is cancelled.
pub async fn run(store: Store, shutdown: CancellationToken) {
    Scheduler::new(store).run(shutdown).await;
}

/// The scheduler's state: node bookkeeping and the tasks waiting for a node.
pub struct Scheduler {
    store: Store,
    nodes: NodeSet,
    /// Tasks to place in the next pass.
    pending: HashMap<String, Arc<Task>>,
    /// Unschedulable tasks, waiting for a node change or freed capacity.
    parked: HashMap<String, Arc<Task>>,
    /// Set when a change may let parked tasks fit.
    retry_parked: bool,
    /// Raft index of our last accepted write of each task, until its event is seen.
    settled: HashMap<String, u64>,
    /// No pass before this (after a failed write).
    not_before: Option<Instant>,
}

impl Scheduler {
    pub fn new(store: Store) -> Self {
        Scheduler {
            store,
            nodes: NodeSet::default(),
            pending: HashMap::new(),
            parked: HashMap::new(),
            retry_parked: false,
            settled: HashMap::new(),
            not_before: None,
        }
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut last_pass: Option<Instant> = None;
        'resync: loop {
            let (view, mut watcher) = self.store.watch(WatchFilter::All);
            self.load(&view);
            info!(
                nodes = self.nodes.len(),
                pending = self.pending.len(),
                "scheduler watching the store"
            );
            loop {
                let due = self.has_work().then(|| {
                    let at = last_pass.map_or_else(Instant::now, |t| t + PASS_INTERVAL);
                    self.not_before.map_or(at, |nb| at.max(nb))
                });
                let timer = async move {
                    match due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return,
                    () = timer => {
                        self.pass(&shutdown).await;
                        last_pass = Some(Instant::now());
                    }
                    batch = watcher.recv() => {
                        let Some(batch) = batch else {
                            info!("store watch closed (snapshot restore?); resyncing");
                            continue 'resync;
                        };
                        self.on_batch(&batch);
                        let deadline = Instant::now() + DRAIN_BUDGET;
                        while Instant::now() < deadline {
                            match watcher.try_recv() {
                                Ok(batch) => self.on_batch(&batch),
                                Err(TryRecvError::Empty) => break,
                                Err(TryRecvError::Disconnected) => continue 'resync,
                            }
                        }
                    }
                }
            }
        }
    }

    /// Rebuilds everything from a view.
    fn load(&mut self, view: &Tables) {
        self.nodes = NodeSet::from_tables(view);
        self.pending = view
            .tasks()
            .filter(|t| wants_node(t))
            .map(|t| (t.id.clone(), t.clone()))
            .collect();
        self.parked.clear();
        self.settled.clear();
        self.retry_parked = false;
    }

    fn has_work(&self) -> bool {
        !self.pending.is_empty() || (self.retry_parked && !self.parked.is_empty())
    }

    fn on_batch(&mut self, batch: &EventBatch) {
        for ev in &batch.events {
            self.on_event(ev, batch.index);
        }
    }

    fn on_event(&mut self, ev: &Event, index: u64) {
        match (ev, ev.object()) {
            (Event::Removed(_), Object::Node(n)) => self.nodes.remove_node(&n.id),
            (Event::Created(_), Object::Node(n)) => {
                self.nodes.upsert_node(n.clone());
                self.retry_parked = true;
            }
            (Event::Updated { old, .. }, Object::Node(n)) => {
                self.nodes.upsert_node(n.clone());
                if let Object::Node(old) = old
                    && placement_changed(old, n)
                {
                    self.retry_parked = true;
                }
            }
            (_, Object::Task(t)) => {
                if let Some(&at) = self.settled.get(&t.id) {
                    if index < at {
                        return; // older than our own write of this task
                    }
                    self.settled.remove(&t.id);
                }
                let removed = matches!(ev, Event::Removed(_));
                let freed = if removed {
                    self.nodes.forget_task(t)
                } else {
                    self.nodes.observe_task(t)
                };
                self.retry_parked |= freed;
                if !removed && wants_node(t) {
                    match self.parked.get_mut(&t.id) {
                        Some(p) => *p = t.clone(),
                        None => {
                            self.pending.insert(t.id.clone(), t.clone());
                        }
                    }
                } else {
                    self.pending.remove(&t.id);
                    self.parked.remove(&t.id);
                }
            }
            _ => {}
        }
    }

    /// One scheduling pass: decide, then write the decisions.
    async fn pass(&mut self, shutdown: &CancellationToken) {
        if std::mem::take(&mut self.retry_parked) {
            self.pending.extend(self.parked.drain());
        }
        let batch = std::mem::take(&mut self.pending);
        let tasks: Vec<Arc<Task>> = batch.values().cloned().collect();
        let started = std::time::Instant::now();
        let decisions = schedule(&mut self.nodes, &tasks);
        let decided_in = started.elapsed();

        let mut writes: Vec<(Decision, Arc<Task>)> = Vec::with_capacity(decisions.len());
        let mut unschedulable = 0u64;
        for d in decisions {
            let Some(task) = batch.get(d.task_id()).cloned() else {
                continue;
            };
            if let Decision::Unschedulable { reason, .. } = &d {
                unschedulable += 1;
                self.parked.insert(task.id.clone(), task.clone());
                if task.status.as_ref().is_some_and(|s| s.err == *reason) {
                    continue; // already says so: no write
                }
            }
            writes.push((d, task));
        }
        SCHEDULER_UNSCHEDULABLE.inc_by(unschedulable);

        if shutdown.is_cancelled() {
            return;
        }
        let mut placed = 0u64;
        let now = swarm_proto::ext::now_ns();
        let store = self.store.clone();
        let ranges: Vec<std::ops::Range<usize>> = (0..writes.len())
            .step_by(MAX_WRITE)
            .map(|start| start..writes.len().min(start + MAX_WRITE))
            .collect();
        let futures: Vec<_> = ranges
            .into_iter()
            .map(|range| {
                let actions = writes[range.clone()]
                    .iter()
                    .map(|(d, _)| store::patch_task(patch(d, now)))
                    .collect();
                let store = store.clone();
                async move { (range, store.write(actions).await) }
            })
            .collect();
        let mut results = futures::stream::iter(futures).buffered(WRITES_IN_FLIGHT);
        while let Some((range, result)) = results.next().await {
            let chunk = &writes[range];
            match result {
                Ok(outcome) => {
                    let rejected: HashSet<usize> =
                        outcome.rejected.iter().map(|(i, _)| *i).collect();
                    for (i, (d, _)) in chunk.iter().enumerate() {
                        if rejected.contains(&i) {
                            self.drop_rejected(d);
                            continue;
                        }
                        self.settled.insert(d.task_id().to_string(), outcome.index);
                        if matches!(d, Decision::Assign { .. }) {
                            placed += 1;
                        }
                    }
                    if !outcome.rejected.is_empty() {
                        debug!(
                            rejected = outcome.rejected.len(),
                            "tasks changed while being scheduled"
                        );
                    }
                }
                Err(e) => {
                    warn!(error = %e, "writing scheduling decisions failed; retrying in {WRITE_RETRY:?}");
                    for (d, task) in chunk {
                        self.requeue(d, task);
                    }
                    self.not_before = Some(Instant::now() + WRITE_RETRY);
                }
            }
        }
        SCHEDULER_PLACEMENTS.inc_by(placed);
        debug!(
            tasks = tasks.len(),
            placed,
            unschedulable,
            decide_ms = decided_in.as_secs_f64() * 1e3,
            "scheduling pass"
        );
    }

    /// A decision the store refused: the task changed; its next event tells us more.
    fn drop_rejected(&mut self, d: &Decision) {
        match d {
            Decision::Assign { task_id, node_id } => {
                self.nodes.unassign(node_id, task_id);
            }
            Decision::Unschedulable { task_id, .. } => {
                self.parked.remove(task_id);
            }
        }
    }

    /// A decision that was not written: undo it and try again later.
    fn requeue(&mut self, d: &Decision, task: &Arc<Task>) {
        if let Decision::Assign { task_id, node_id } = d {
            self.nodes.unassign(node_id, task_id);
        }
        self.parked.remove(&task.id);
        self.pending.insert(task.id.clone(), task.clone());
    }
}

/// True for a task the scheduler should place.
fn wants_node(t: &Task) -> bool {
    t.status.as_ref().map_or(0, |s| s.state) == TaskState::Pending as i32
        && t.desired_state <= TaskState::Running as i32
}

/// True when a node update may change where tasks fit.
fn placement_changed(old: &Node, new: &Node) -> bool {
    let state = |n: &Node| n.status.as_ref().map(|s| s.state);
    old.spec != new.spec
        || old.role != new.role
        || old.description != new.description
        || state(old) != state(new)
}

/// The store patch for a decision.
fn patch(d: &Decision, now: i64) -> TaskPatch {
    match d {
        Decision::Assign { task_id, node_id } => TaskPatch {
            task_id: task_id.clone(),
            status: Some(TaskStatus {
                state: TaskState::Assigned as i32,
                timestamp_ns: now,
                message: "scheduler assigned task to node".into(),
                ..Default::default()
            }),
            node_id: node_id.clone(),
            desired_state: None,
        },
        Decision::Unschedulable { task_id, reason } => TaskPatch {
            task_id: task_id.clone(),
            status: Some(TaskStatus {
                state: TaskState::Pending as i32,
                timestamp_ns: now,
                message: "pending task scheduling".into(),
                err: reason.clone(),
                ..Default::default()
            }),
            node_id: String::new(),
            desired_state: None,
        },
    }
}
