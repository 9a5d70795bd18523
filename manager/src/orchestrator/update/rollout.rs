//! One service's rolling update (SwarmKit `update/updater.go`) as a state machine driven by
//! store views and the clock; the actor does the writing.
//!
//! ```text
//!   start: dirty slots counted ──▶ batch of `parallelism` slots updated (see `slots`)
//!        ▲                              │ every new task RUNNING (or failed)
//!        └──── `delay` elapsed ◀────────┘
//!   meanwhile each new task is watched for `monitor` after it starts running; one that
//!   fails (COMPLETE, FAILED, REJECTED) counts; failures / slots > max_failure_ratio
//!   triggers the failure action: PAUSE (stop here), CONTINUE, ROLLBACK (the actor writes
//!   the previous spec back, which starts a rollout of its own).
//!   done: no dirty slot left and every new task passed its monitor window.
//! ```
//!
//! Defaults are SwarmKit's: parallelism 1 (0 = all at once), delay 0, monitor 5 s, failure
//! action PAUSE, max failure ratio 0, order stop-first. A paused rollout stays paused until
//! the service's task spec changes again; the pause lives in memory only (the store has no
//! update status yet), so a new leader resumes it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use swarm_proto::{
    Service, StoreAction, TaskState, UpdateConfig, UpdateFailureAction, UpdateOrder,
};
use tokio::time::Instant;

use super::slots::{dirty_slots, finish_start_first, update_slot};
use crate::orchestrator::task::{desired, state};
use crate::store::Tables;

/// The monitor period when the config sets none.
pub const DEFAULT_MONITOR: Duration = Duration::from_secs(5);

/// An `UpdateConfig` with its defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Slots per batch; 0 = all.
    pub parallelism: usize,
    pub delay: Duration,
    pub monitor: Duration,
    pub failure_action: UpdateFailureAction,
    pub max_failure_ratio: f32,
    pub order: UpdateOrder,
}

impl Settings {
    /// The settings of `config` (SwarmKit's defaults for what it leaves unset).
    pub fn of(config: Option<&UpdateConfig>) -> Self {
        let c = config.cloned().unwrap_or_default();
        Settings {
            parallelism: c
                .parallelism
                .map_or(1, |p| usize::try_from(p).unwrap_or(usize::MAX)),
            delay: Duration::from_millis(c.delay_ms),
            monitor: c.monitor_ms.map_or(DEFAULT_MONITOR, Duration::from_millis),
            failure_action: UpdateFailureAction::try_from(c.failure_action)
                .unwrap_or(UpdateFailureAction::UpdatePause),
            max_failure_ratio: c.max_failure_ratio,
            order: UpdateOrder::try_from(c.order).unwrap_or(UpdateOrder::StopFirst),
        }
    }

    /// The settings for rolling `service` forward, or back when `rollback`.
    pub fn for_service(service: &Service, rollback: bool) -> Self {
        let spec = service.spec.as_ref();
        let config = if rollback {
            spec.and_then(|s| s.rollback.as_ref())
        } else {
            spec.and_then(|s| s.update.as_ref())
        };
        Self::of(config)
    }
}

/// Where a rollout is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Rolling,
    /// Stopped by the failure action; the reason.
    Paused(String),
    Done,
}

/// What one step asks the actor to do.
#[derive(Debug, Default)]
pub struct Step {
    /// Slot updates, each to be written atomically: (actions, new task id).
    pub slots: Vec<(Vec<StoreAction>, String)>,
    /// Conflict-free patches (old tasks of finished start-first updates).
    pub cleanup: Vec<StoreAction>,
    /// The failure action this step triggered, and why.
    pub failed: Option<(UpdateFailureAction, String)>,
    /// When to step again at the latest.
    pub wake: Option<Instant>,
}

/// One service's rolling update.
#[derive(Debug)]
pub struct Rollout {
    pub rollback: bool,
    pub settings: Settings,
    pub status: Status,
    /// Dirty slots when the rollout started (the failure ratio's denominator).
    total: usize,
    failures: usize,
    /// New tasks under watch, with when they were first seen RUNNING.
    tracked: BTreeMap<String, Option<Instant>>,
    /// New tasks of the current batch that do not run yet.
    batch: BTreeSet<String>,
    /// When the next batch may start (`None` while a batch is in flight).
    next_batch_at: Option<Instant>,
}

impl Rollout {
    /// A rollout of `service` to its current spec, or `None` when no slot is out of date.
    pub fn start(view: &Tables, service: &Service, rollback: bool, now: Instant) -> Option<Self> {
        let total = dirty_slots(view, service).len();
        (total > 0).then(|| Rollout {
            rollback,
            settings: Settings::for_service(service, rollback),
            status: Status::Rolling,
            total,
            failures: 0,
            tracked: BTreeMap::new(),
            batch: BTreeSet::new(),
            next_batch_at: Some(now),
        })
    }

    /// Advances the rollout to `now` given `view`.
    pub fn step(&mut self, view: &Tables, service: &Service, now: Instant) -> Step {
        let mut step = Step::default();
        if self.status == Status::Done {
            return step;
        }
        // Start-first pairs finish even while the rollout is paused.
        step.cleanup = finish_start_first(view, service);
        if self.status != Status::Rolling {
            return step;
        }
        let failed = self.watch(view, now, &mut step.wake);
        if let Some(id) = failed {
            let ratio = self.failures as f32 / self.total.max(1) as f32;
            if ratio > self.settings.max_failure_ratio {
                let action = self.settings.failure_action;
                let why = format!(
                    "task {id} failed during the update ({} of {} failed)",
                    self.failures, self.total
                );
                if action != UpdateFailureAction::UpdateContinue {
                    self.status = Status::Paused(why.clone());
                    step.failed = Some((action, why));
                    return step;
                }
            }
        }
        if !self.batch.is_empty() {
            return step;
        }
        let at = *self.next_batch_at.get_or_insert(now + self.settings.delay);
        if at > now {
            step.wake = earliest(step.wake, at);
            return step;
        }
        let dirty = dirty_slots(view, service);
        if dirty.is_empty() {
            if self.tracked.is_empty() {
                self.status = Status::Done;
            }
            return step;
        }
        let n = match self.settings.parallelism {
            0 => dirty.len(),
            p => p.min(dirty.len()),
        };
        step.slots = dirty
            .iter()
            .take(n)
            .map(|slot| update_slot(service, slot, self.settings.order))
            .collect();
        step
    }

    /// The new tasks `ids` were written: watch them; the next batch waits for them.
    pub fn launched(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            self.tracked.insert(id.clone(), None);
            self.batch.insert(id);
            self.next_batch_at = None;
        }
    }

    /// Updates the watched tasks; returns the id of a task that failed in this step, if any.
    fn watch(&mut self, view: &Tables, now: Instant, wake: &mut Option<Instant>) -> Option<String> {
        let monitor = self.settings.monitor;
        let mut failed = None;
        let mut done = Vec::new();
        for (id, started) in self.tracked.iter_mut() {
            let Some(t) = view.task(id) else {
                done.push(id.clone());
                continue;
            };
            let s = state(t);
            if matches!(
                s,
                TaskState::Complete | TaskState::Failed | TaskState::Rejected
            ) && desired(t) != TaskState::Remove
            {
                self.failures += 1;
                failed = Some(id.clone());
                done.push(id.clone());
            } else if s.is_terminal() || desired(t) == TaskState::Remove {
                done.push(id.clone()); // stopped on purpose (scaled away, node drained)
            } else if s == TaskState::Running {
                let since = *started.get_or_insert(now);
                self.batch.remove(id);
                if now >= since + monitor {
                    done.push(id.clone());
                } else {
                    *wake = earliest(*wake, since + monitor);
                }
            }
        }
        for id in done {
            self.tracked.remove(&id);
            self.batch.remove(&id);
        }
        failed
    }
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
