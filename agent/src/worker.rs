//! The worker (SwarmKit `agent/worker.go`): turns assignments into running task managers.
//!
//! ```text
//!  session ──assign(COMPLETE) / update(INCREMENTAL)──▶ Worker ──persist──▶ TaskDb
//!                                                       │  then
//!                        one TaskManager per task ◀─────┘ spawn / set_desired / retire
//!                        (owns its Controller)  ──Retired──▶ Worker ──delete──▶ TaskDb
//! ```
//!
//! - [`Worker::start`] runs `init`: tasks still assigned in the DB get a task manager again,
//!   starting from their last persisted status (and re-report it); the others are retired —
//!   shut down and removed through their controller, then deleted. (SwarmKit only deletes them;
//!   a backend whose workloads outlive the agent, like runc, would leak them.)
//! - [`WorkerHandle::assign`] takes a COMPLETE set, [`WorkerHandle::update`] INCREMENTAL
//!   changes. Either is persisted in one DB transaction *before* it is acted on.
//! - A retired task manager drives its task to SHUTDOWN (unless already finished), calls
//!   `remove()`, and only then is the task deleted from the DB and forgotten by the reporter.
//!   A task re-assigned while it is being retired waits for that to finish, then gets a fresh
//!   task manager that resumes from the final status (states never go backwards).
//! - Dropping the handle, or [`WorkerHandle::stop`], stops every task manager *without*
//!   touching the workloads or the DB, so the next `init` re-adopts them.

mod error;
mod plan;
mod publisher;
mod taskmanager;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use swarm_proto::{AssignmentChange, Task, TaskState, TaskStatus};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::WorkerError;

use self::plan::{Plan, plan_complete, plan_incremental};
use self::publisher::StatusPublisher;
use self::taskmanager::{Retired, Spawn, TaskManager, TaskManagerHandle};
use crate::errors::chain;
use crate::exec::Backend;
use crate::exec::driver::furthest;
use crate::reporter::ReporterHandle;
use crate::taskdb::{TaskDb, WriteOp};

/// Starts worker actors.
pub struct Worker {
    db: TaskDb,
    backend: Arc<dyn Backend>,
    publisher: StatusPublisher,
    /// Assigned tasks and their live task managers.
    managers: HashMap<String, TaskManagerHandle>,
    /// Tasks being shut down and removed because they are no longer assigned.
    retiring: HashMap<String, TaskManagerHandle>,
    /// Tasks assigned again while still retiring; they restart once retired.
    readded: HashMap<String, Task>,
    events_tx: mpsc::UnboundedSender<Retired>,
    events: mpsc::UnboundedReceiver<Retired>,
    stop: CancellationToken,
}

/// Talks to a running worker. Dropping it stops the worker like [`WorkerHandle::stop`], without
/// waiting.
pub struct WorkerHandle {
    tx: mpsc::Sender<Command>,
    join: JoinHandle<()>,
}

enum Command {
    Assign(Vec<Task>, oneshot::Sender<Result<(), WorkerError>>),
    Update(
        Vec<AssignmentChange>,
        oneshot::Sender<Result<(), WorkerError>>,
    ),
    Tasks(oneshot::Sender<Vec<String>>),
}

impl Worker {
    /// Re-adopts the tasks in `db` (`init`) and starts the worker. Statuses go to `reporter`.
    pub async fn start(
        db: TaskDb,
        backend: Arc<dyn Backend>,
        reporter: ReporterHandle,
    ) -> Result<WorkerHandle, WorkerError> {
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut worker = Worker {
            publisher: StatusPublisher::spawn(db.clone(), reporter),
            db,
            backend,
            managers: HashMap::new(),
            retiring: HashMap::new(),
            readded: HashMap::new(),
            events_tx,
            events,
            stop: CancellationToken::new(),
        };
        worker.init().await?;
        let (tx, rx) = mpsc::channel(16);
        let join = tokio::spawn(worker.run(rx));
        Ok(WorkerHandle { tx, join })
    }

    async fn init(&mut self) -> Result<(), WorkerError> {
        let stored = self.db.list().await?;
        let (mut adopted, mut retired) = (0, 0);
        for t in stored {
            let status = furthest(
                t.status.unwrap_or_default(),
                t.task.status.clone().unwrap_or_default(),
            );
            let id = t.task.id.clone();
            let handle = self.spawn(t.task, status, !t.assigned);
            if t.assigned {
                adopted += 1;
                self.managers.insert(id, handle);
            } else {
                retired += 1;
                self.retiring.insert(id, handle);
            }
        }
        tracing::info!(adopted, retired, "worker initialized from the task DB");
        Ok(())
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            tokio::select! {
                biased;
                Some(retired) = self.events.recv() => self.on_retired(retired).await,
                cmd = rx.recv() => match cmd {
                    Some(Command::Assign(tasks, reply)) => {
                        let plan = plan_complete(&self.assigned(), tasks);
                        let _ = reply.send(self.apply(plan).await);
                    }
                    Some(Command::Update(changes, reply)) => {
                        let plan = plan_incremental(&self.assigned(), changes);
                        let _ = reply.send(self.apply(plan).await);
                    }
                    Some(Command::Tasks(reply)) => {
                        let mut ids: Vec<String> = self.managers.keys().cloned().collect();
                        ids.sort_unstable();
                        let _ = reply.send(ids);
                    }
                    None => break,
                },
            }
        }
        self.stop.cancel();
        for (_, handle) in self.managers.drain().chain(self.retiring.drain()) {
            handle.join().await;
        }
        tracing::debug!("worker stopped");
    }

    /// Ids the dispatcher currently assigns to us.
    fn assigned(&self) -> HashSet<String> {
        self.managers
            .keys()
            .chain(self.readded.keys())
            .cloned()
            .collect()
    }

    /// Persists the plan in one transaction, then acts on it.
    async fn apply(&mut self, plan: Plan) -> Result<(), WorkerError> {
        let ops: Vec<WriteOp> = plan
            .upserts
            .iter()
            .cloned()
            .map(WriteOp::put_task)
            .chain(plan.removals.iter().cloned().map(WriteOp::Unassign))
            .collect();
        self.db.write(ops).await?;
        for task in plan.upserts {
            self.upsert(task);
        }
        for id in plan.removals {
            self.remove(&id);
        }
        Ok(())
    }

    fn upsert(&mut self, task: Task) {
        if let Some(manager) = self.managers.get(&task.id) {
            manager.set_desired(TaskState::of(task.desired_state));
        } else if self.retiring.contains_key(&task.id) {
            self.readded.insert(task.id.clone(), task);
        } else {
            let status = task.status.clone().unwrap_or_default();
            let id = task.id.clone();
            let handle = self.spawn(task, status, false);
            self.managers.insert(id, handle);
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(manager) = self.managers.remove(id) {
            manager.retire();
            self.retiring.insert(id.to_string(), manager);
        } else {
            self.readded.remove(id);
        }
    }

    async fn on_retired(&mut self, retired: Retired) {
        let Retired { id, status } = retired;
        if let Some(handle) = self.retiring.remove(&id) {
            handle.join().await;
        }
        if let Some(task) = self.readded.remove(&id) {
            let status = furthest(status, task.status.clone().unwrap_or_default());
            let handle = self.spawn(task, status, false);
            self.managers.insert(id, handle);
            return;
        }
        if let Err(e) = self.db.write(vec![WriteOp::Delete(id.clone())]).await {
            tracing::error!(task = %id, error = %chain(&e), "deleting a removed task from the DB failed");
        }
        self.publisher.forget(&id);
        tracing::debug!(task = %id, "task removed");
    }

    fn spawn(&self, task: Task, status: TaskStatus, retired: bool) -> TaskManagerHandle {
        TaskManager::spawn(Spawn {
            task,
            status,
            retired,
            backend: Arc::clone(&self.backend),
            publisher: self.publisher.clone(),
            events: self.events_tx.clone(),
            stop: self.stop.child_token(),
        })
    }
}

impl WorkerHandle {
    /// Replaces the assigned set with `tasks` (a COMPLETE assignment). Returns once the set is
    /// persisted and the task managers are told; tasks change state asynchronously.
    pub async fn assign(&self, tasks: Vec<Task>) -> Result<(), WorkerError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Assign(tasks, reply)).await?;
        rx.await.map_err(|_| WorkerError::Stopped)?
    }

    /// Applies INCREMENTAL changes (UPDATE = upsert, REMOVE = shut down, remove, forget).
    pub async fn update(&self, changes: Vec<AssignmentChange>) -> Result<(), WorkerError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Update(changes, reply)).await?;
        rx.await.map_err(|_| WorkerError::Stopped)?
    }

    /// Ids of the assigned tasks that have a live task manager, sorted.
    pub async fn tasks(&self) -> Result<Vec<String>, WorkerError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Tasks(reply)).await?;
        rx.await.map_err(|_| WorkerError::Stopped)
    }

    /// Stops every task manager without shutting tasks down or touching the DB, and waits.
    pub async fn stop(self) {
        drop(self.tx);
        if let Err(e) = self.join.await {
            tracing::error!(error = %e, "worker panicked");
        }
    }

    async fn send(&self, cmd: Command) -> Result<(), WorkerError> {
        self.tx.send(cmd).await.map_err(|_| WorkerError::Stopped)
    }
}

#[cfg(test)]
mod tests;
