//! The restart supervisor (SwarmKit `manager/orchestrator/restart`): replaces tasks of
//! replicated and global services that stopped running, as their restart policy allows.
//!
//! ```text
//!  task reached a terminal state while desired ≤ RUNNING ─┐
//!  node went DOWN / was drained / was removed ────────────┼─▶ candidates ─debounce─▶ plan() ─┐
//!                                                         │        (per task, pure)          │
//!        ┌───────── atomic write: old desired SHUTDOWN + replacement (or desired COMPLETE) ◀─┘
//!        ▼
//!  replacement desired READY? ──▶ pending starts ──(delay elapsed, old task stopped)──▶ desired RUNNING
//! ```
//!
//! The supervisor owns two pieces of in-memory state, both lost on a leader change as in
//! SwarmKit: the restart history of each slot (for `max_attempts` within `window`) and the
//! timers of pending starts (rebuilt from the store's desired-READY tasks at start). The
//! decisions are pure: [`decision`] (the policy), [`plan`] (the actions for one task),
//! [`delayed`] (when a waiting replacement may start). Time is `tokio::time`, so tests can run
//! it on a paused clock.

pub mod decision;
pub mod delayed;
pub mod plan;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use swarm_proto::{Node, NodeAvailability, NodeState, TaskState};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::decision::{RestartHistory, delay_of, policy_of};
use self::delayed::{PendingStart, Readiness};
use self::plan::{InstanceKey, Outcome, Plan};
use super::batch::{write_atomic_groups, write_batched};
use super::debounce::{Debounce, until};
use super::task::{is_runnable, set_desired, state};
use crate::store::{Event, EventBatch, Object, Store, StoreError, Tables, WatchFilter};

pub use self::decision::restart_decision;

/// How long a burst of events is collected before one pass.
const DEBOUNCE: Duration = Duration::from_millis(20);
/// How long to wait before retrying after a failed write.
const RETRY: Duration = Duration::from_millis(500);

/// Runs the restart supervisor until `shutdown` is cancelled. Leader-only.
pub async fn run(store: Store, shutdown: CancellationToken) {
    Supervisor::default().run(store, shutdown).await;
}

#[derive(Default)]
struct Supervisor {
    /// Tasks that may have stopped.
    candidates: BTreeSet<String>,
    /// Nodes that went down, were drained or removed: their runnable tasks are candidates.
    nodes: BTreeSet<String>,
    /// Tasks someone else created desired READY.
    adopt: BTreeSet<String>,
    /// Replacements waiting to start, by task id.
    pending: HashMap<String, PendingStart>,
    /// Something a pending start waits for may have happened.
    recheck: bool,
    /// Restarts per slot / node, for `max_attempts`.
    history: HashMap<InstanceKey, RestartHistory>,
    /// The earliest instant a pending start must be looked at again.
    wake: Option<Instant>,
}

fn node_invalid(n: &Node) -> bool {
    n.status
        .as_ref()
        .is_some_and(|s| s.state == NodeState::NodeDown as i32)
        || n.spec
            .as_ref()
            .is_some_and(|s| s.availability == NodeAvailability::Drain as i32)
}

impl Supervisor {
    async fn run(mut self, store: Store, shutdown: CancellationToken) {
        let (view, mut watcher) = store.watch(WatchFilter::All);
        self.reset(&view);
        drop(view);
        let mut debounce = Debounce::new(DEBOUNCE);
        if self.has_work() {
            debounce.fire_now();
        }
        tracing::debug!("restart supervisor started");
        loop {
            let deadline = match (debounce.deadline(), self.wake) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                batch = watcher.recv() => {
                    match batch {
                        Some(batch) => self.observe(&batch),
                        None => {
                            let (view, w) = store.watch(WatchFilter::All);
                            watcher = w;
                            self.reset(&view);
                        }
                    }
                    if self.has_work() {
                        debounce.arm();
                    }
                },
                _ = until(deadline) => {
                    debounce.clear();
                    self.wake = None;
                    if let Err(e) = self.tick(&store).await {
                        tracing::warn!(error = %e, "restart supervisor: write failed; will retry");
                        debounce.arm_at(Instant::now() + RETRY);
                    }
                }
            }
        }
        tracing::debug!("restart supervisor stopped");
    }

    /// Starts over from `view`: every task that may need a restart, every pending start.
    fn reset(&mut self, view: &Tables) {
        let now = Instant::now();
        self.candidates.clear();
        self.nodes.clear();
        self.adopt.clear();
        self.pending.clear();
        for t in view.tasks().filter(|t| is_runnable(t)) {
            let displaced =
                !t.node_id.is_empty() && view.node(&t.node_id).is_none_or(|n| node_invalid(n));
            if state(t).is_terminal() || displaced {
                self.candidates.insert(t.id.clone());
            }
            if t.desired_state == TaskState::Ready as i32 {
                let delay = delay_of(&policy_of(t));
                self.pending
                    .insert(t.id.clone(), PendingStart::adopt(view, t, delay, now));
            }
        }
        self.recheck = !self.pending.is_empty();
    }

    fn has_work(&self) -> bool {
        !self.candidates.is_empty()
            || !self.nodes.is_empty()
            || !self.adopt.is_empty()
            || self.recheck
    }

    fn observe(&mut self, batch: &EventBatch) {
        for ev in &batch.events {
            match ev {
                Event::Created(Object::Task(t)) => {
                    if is_runnable(t) && state(t).is_terminal() {
                        self.candidates.insert(t.id.clone());
                    }
                    if t.desired_state == TaskState::Ready as i32
                        && !self.pending.contains_key(&t.id)
                    {
                        self.adopt.insert(t.id.clone());
                    }
                }
                Event::Updated {
                    old: Object::Task(old),
                    new: Object::Task(t),
                } => {
                    let stopped = state(t).is_terminal() && !state(old).is_terminal();
                    if stopped && is_runnable(t) {
                        self.candidates.insert(t.id.clone());
                    }
                    if stopped && !self.pending.is_empty() {
                        self.recheck = true;
                    }
                }
                Event::Removed(Object::Task(t)) => {
                    self.pending.remove(&t.id);
                }
                Event::Created(Object::Node(n))
                | Event::Updated {
                    new: Object::Node(n),
                    ..
                } if node_invalid(n) => {
                    self.nodes.insert(n.id.clone());
                    self.recheck |= !self.pending.is_empty();
                }
                Event::Removed(Object::Node(n)) => {
                    self.nodes.insert(n.id.clone());
                    self.recheck |= !self.pending.is_empty();
                }
                Event::Removed(Object::Service(s)) => {
                    self.history.retain(|k, _| k.service_id != s.id);
                }
                _ => {}
            }
        }
    }

    /// One pass: restart what stopped, adopt what others made READY, start what is due.
    async fn tick(&mut self, store: &Store) -> Result<(), StoreError> {
        let now = Instant::now();
        let view = store.view();
        let mut ids = self.candidates.clone();
        for node in &self.nodes {
            ids.extend(
                view.tasks_by_node(node)
                    .filter(|t| is_runnable(t))
                    .map(|t| t.id.clone()),
            );
        }
        let plans: Vec<Plan> = ids
            .iter()
            .filter_map(|id| view.task(id))
            .filter_map(|t| plan::plan(&view, t, &self.history, now))
            .collect();
        let groups: Vec<_> = plans.iter().map(|p| p.actions.clone()).collect();
        let (applied, failed) = write_atomic_groups(store, &groups, "restart supervisor").await;
        if !applied.is_empty() {
            tracing::info!(
                tasks = applied.len(),
                "restart supervisor handled stopped tasks"
            );
        }
        let mut plans: Vec<Option<Plan>> = plans.into_iter().map(Some).collect();
        for i in applied {
            if let Some(p) = plans[i].take() {
                self.written(p, now);
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        self.candidates.clear();
        self.nodes.clear();

        let view = store.view();
        for id in std::mem::take(&mut self.adopt) {
            if let Some(t) = view.task(&id)
                && t.desired_state == TaskState::Ready as i32
            {
                self.pending
                    .entry(id)
                    .or_insert_with(|| PendingStart::adopt(&view, t, Duration::ZERO, now));
            }
        }
        self.recheck = false;
        let mut starts = Vec::new();
        let mut wake: Option<Instant> = None;
        self.pending
            .retain(|id, p| match p.readiness(&view, id, now) {
                Readiness::Start => {
                    starts.push(id.clone());
                    true
                }
                Readiness::Wait(at) => {
                    wake = Some(wake.map_or(at, |w| w.min(at)));
                    true
                }
                Readiness::Drop => false,
            });
        if !starts.is_empty() {
            let actions = starts
                .iter()
                .map(|id| set_desired(id, TaskState::Running))
                .collect();
            write_batched(store, actions, "restart supervisor").await?;
            tracing::debug!(count = starts.len(), "starting delayed replacement tasks");
            for id in &starts {
                self.pending.remove(id);
            }
        }
        self.wake = wake;
        Ok(())
    }

    /// Bookkeeping once `p` was written.
    fn written(&mut self, p: Plan, now: Instant) {
        match p.outcome {
            Outcome::Restarted {
                replacement,
                pending,
                counted,
            } => {
                tracing::debug!(task = %p.task_id, %replacement, delayed = pending.is_some(), "restarting task");
                if let Some(pending) = pending {
                    self.pending.insert(replacement, pending);
                }
                if let Some((key, spec_version, window)) = counted {
                    self.history
                        .entry(key)
                        .or_default()
                        .record(spec_version, window, now);
                }
            }
            Outcome::Declined(why) => {
                tracing::debug!(task = %p.task_id, reason = %why, "not restarting task");
            }
            Outcome::Stopped => {
                tracing::debug!(task = %p.task_id, "task stopped on a node that no longer runs its service");
            }
        }
    }
}
