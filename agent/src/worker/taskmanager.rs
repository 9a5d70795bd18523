//! The task manager: one actor per task that owns the task's [`Controller`] and drives it, one
//! [`next_step`] at a time, towards the desired state the worker sends over a `watch` channel
//! (only the latest intent matters, so updates coalesce and never block the worker).
//!
//! It runs until one of:
//! - the agent stops (its token is cancelled): it exits at once, dropping the controller
//!   without shutting the workload down, so a restarted agent re-adopts the task;
//! - the worker retires it (the task is no longer assigned): it drives the task to a terminal
//!   state (SHUTDOWN unless already finished), calls `remove()`, tells the worker, and exits.
//!
//! Every status change is queued for the DB and reported once committed (see
//! [`StatusPublisher`]); the task manager does not wait for the fsync. Only `wait()` is
//! interrupted by a new intent; the other controller calls run to completion.

use std::sync::Arc;
use std::time::Duration;

use swarm_proto::ext::now_ns;
use swarm_proto::{Task, TaskState, TaskStatus};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::publisher::StatusPublisher;
use crate::backoff::Backoff;
use crate::errors::chain;
use crate::exec::driver::{Step, after_error, after_exit, after_success, next_step};
use crate::exec::{Backend, Controller, ExecError};
use crate::metrics;

/// Attempts at `remove()` failing with temporary errors before giving up on it.
const MAX_REMOVE_ATTEMPTS: u32 = 10;

/// What the worker wants of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Intent {
    /// The desired state the dispatcher set.
    pub(crate) desired: TaskState,
    /// No longer assigned: shut down, remove, and exit.
    pub(crate) retired: bool,
}

impl Intent {
    /// The desired state the driver works towards (at least SHUTDOWN once retired).
    pub(crate) fn effective_desired(self) -> TaskState {
        if self.retired {
            self.desired.max(TaskState::Shutdown)
        } else {
            self.desired
        }
    }
}

/// Sent to the worker when a retired task manager has finished.
#[derive(Debug)]
pub(crate) struct Retired {
    pub(crate) id: String,
    pub(crate) status: TaskStatus,
}

/// The worker's side of a task manager.
pub(crate) struct TaskManagerHandle {
    intent: watch::Sender<Intent>,
    join: JoinHandle<()>,
}

impl TaskManagerHandle {
    /// Sets the desired state (no-op if unchanged).
    pub(crate) fn set_desired(&self, desired: TaskState) {
        self.intent.send_if_modified(|i| {
            let changed = i.desired != desired;
            i.desired = desired;
            changed
        });
    }

    /// The task is no longer assigned: shut it down, remove it, report [`Retired`].
    pub(crate) fn retire(&self) {
        self.intent.send_modify(|i| i.retired = true);
    }

    /// Waits for the task manager to exit.
    pub(crate) async fn join(self) {
        if let Err(e) = self.join.await {
            tracing::error!(error = %e, "task manager panicked");
        }
    }
}

/// Everything a task manager needs to start.
pub(crate) struct Spawn {
    pub(crate) task: Task,
    /// Where the task starts from (the furthest of the DB's and the dispatcher's status).
    pub(crate) status: TaskStatus,
    pub(crate) retired: bool,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) publisher: StatusPublisher,
    pub(crate) events: mpsc::UnboundedSender<Retired>,
    pub(crate) stop: CancellationToken,
}

/// One task's actor.
pub(crate) struct TaskManager {
    task: Task,
    status: TaskStatus,
    controller: Option<Box<dyn Controller>>,
    backend: Arc<dyn Backend>,
    publisher: StatusPublisher,
    intent: watch::Receiver<Intent>,
    stop: CancellationToken,
    backoff: Backoff,
}

impl TaskManager {
    /// Starts the actor. It first reports its current status (so re-adopted tasks are
    /// re-reported), then drives the task.
    pub(crate) fn spawn(args: Spawn) -> TaskManagerHandle {
        let intent = Intent {
            desired: TaskState::of(args.task.desired_state),
            retired: args.retired,
        };
        let (tx, rx) = watch::channel(intent);
        let manager = TaskManager {
            task: args.task,
            status: args.status,
            controller: None,
            backend: args.backend,
            publisher: args.publisher,
            intent: rx,
            stop: args.stop,
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(10)),
        };
        let events = args.events;
        let join = tokio::spawn(async move {
            if let Some(retired) = manager.run().await {
                let _ = events.send(retired);
            }
        });
        TaskManagerHandle { intent: tx, join }
    }

    fn state(&self) -> TaskState {
        TaskState::of(self.status.state)
    }

    /// Drives the task; returns [`Retired`] if it was retired, `None` if stopped.
    async fn run(mut self) -> Option<Retired> {
        metrics::task_moved(None, Some(self.state()));
        self.publisher.report(&self.task.id, &self.status);
        let retired = self.drive().await;
        metrics::task_moved(Some(self.state()), None);
        retired.then(|| Retired {
            id: self.task.id.clone(),
            status: self.status.clone(),
        })
    }

    /// The loop; `true` once retired and removed, `false` when stopped.
    async fn drive(&mut self) -> bool {
        loop {
            if self.stop.is_cancelled() {
                return false;
            }
            let intent = *self.intent.borrow_and_update();
            let state = self.state();
            if intent.retired && state.is_terminal() {
                return self.remove_workload().await;
            }
            if self.controller.is_none() && !state.is_terminal() {
                match self.backend.controller(&self.task) {
                    Ok(c) => self.controller = Some(c),
                    Err(e) => {
                        if !self.on_error("create controller", e).await {
                            return false;
                        }
                        continue;
                    }
                }
            }
            let step = next_step(state, intent.effective_desired());
            let keep_going = match step {
                Step::Idle => self.idle().await,
                Step::Advance { .. } => {
                    self.set(after_success(&self.status, step, now_ns()));
                    true
                }
                Step::Prepare | Step::Start | Step::Shutdown => self.call(step).await,
                Step::Wait => self.wait().await,
            };
            if !keep_going {
                return false;
            }
        }
    }

    /// Waits for a new intent; `false` when stopped.
    async fn idle(&mut self) -> bool {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => false,
            changed = self.intent.changed() => changed.is_ok(),
        }
    }

    /// `prepare`, `start` or `shutdown`, run to completion (or until the agent stops).
    async fn call(&mut self, step: Step) -> bool {
        let controller = self.controller.as_mut().expect("resolved before stepping");
        let call = match step {
            Step::Prepare => controller.prepare(),
            Step::Start => controller.start(),
            _ => controller.shutdown(),
        };
        let result = tokio::select! {
            biased;
            _ = self.stop.cancelled() => return false,
            r = call => r,
        };
        match result {
            Ok(()) => {
                self.backoff.reset();
                self.set(after_success(&self.status, step, now_ns()));
                true
            }
            Err(e) => self.on_error(step.verb(), e).await,
        }
    }

    /// `wait()`, interrupted (and later called again) whenever the intent changes.
    async fn wait(&mut self) -> bool {
        let controller = self.controller.as_mut().expect("resolved before stepping");
        let result = tokio::select! {
            biased;
            _ = self.stop.cancelled() => return false,
            changed = self.intent.changed() => return changed.is_ok(),
            r = controller.wait() => r,
        };
        match result {
            Ok(exit) => {
                self.backoff.reset();
                self.set(after_exit(&self.status, &exit, now_ns()));
                true
            }
            Err(e) => self.on_error("wait", e).await,
        }
    }

    /// A fatal error ends the task (REJECTED/FAILED); a temporary one waits out a backoff (cut
    /// short by a new intent) before the step is retried. `false` when stopped.
    async fn on_error(&mut self, verb: &str, err: ExecError) -> bool {
        if let Some(next) = after_error(&self.status, verb, &err, now_ns()) {
            tracing::warn!(task = %self.task.id, error = %chain(&err), "{verb} failed; task ends {:?}", TaskState::of(next.state));
            self.set(next);
            return true;
        }
        let delay = self.backoff.next_delay(&mut rand::rng());
        tracing::info!(task = %self.task.id, error = %chain(&err), retry_in = ?delay, "{verb} failed temporarily");
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => false,
            changed = self.intent.changed() => changed.is_ok(),
            _ = tokio::time::sleep(delay) => true,
        }
    }

    /// Calls `remove()` on a terminal, retired task; `false` when stopped.
    async fn remove_workload(&mut self) -> bool {
        if self.controller.is_none() {
            match self.backend.controller(&self.task) {
                Ok(c) => self.controller = Some(c),
                Err(e) => {
                    tracing::warn!(task = %self.task.id, error = %chain(&e), "no controller to remove the task with; skipping remove");
                    return true;
                }
            }
        }
        let controller = self.controller.as_mut().expect("resolved above");
        for attempt in 1..=MAX_REMOVE_ATTEMPTS {
            let result = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return false,
                r = controller.remove() => r,
            };
            match result {
                Ok(()) => return true,
                Err(e) if e.is_temporary() && attempt < MAX_REMOVE_ATTEMPTS => {
                    let delay = self.backoff.next_delay(&mut rand::rng());
                    tokio::select! {
                        biased;
                        _ = self.stop.cancelled() => return false,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(task = %self.task.id, error = %chain(&e), "remove failed; forgetting the task anyway");
                    return true;
                }
            }
        }
        true
    }

    /// Records a new status: metrics, then DB and reporter (without waiting for the commit).
    fn set(&mut self, status: TaskStatus) {
        let from = self.state();
        self.status = status;
        metrics::task_moved(Some(from), Some(self.state()));
        tracing::debug!(task = %self.task.id, from = ?from, to = ?self.state(), message = %self.status.message, "task state changed");
        self.publisher.publish(&self.task.id, &self.status);
    }
}
