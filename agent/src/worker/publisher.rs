//! The status pipeline between task managers and the reporter: every new status is queued to
//! the task DB at once (the task manager does not wait for the fsync and moves on), and is
//! handed to the reporter only once its commit is done, in the order the statuses were made.
//! So the dispatcher never learns a state a crash could make the agent forget, while many task
//! managers' statuses share one group commit.
//!
//! ```text
//!  TaskManager ─publish─▶ TaskDb::enqueue ──(commit)──┐
//!        └───────────────▶ FIFO ─ await commit ───────┴─▶ Reporter::report
//!  Worker ──forget──────▶ FIFO ─────────────────────────▶ Reporter::forget  (after the last report)
//! ```

use futures::future::BoxFuture;
use swarm_proto::TaskStatus;
use tokio::sync::mpsc;

use crate::errors::chain;
use crate::reporter::ReporterHandle;
use crate::taskdb::{TaskDb, TaskDbError, WriteOp};

/// Persists and reports task statuses. Cheap to clone; the pipeline stops when every clone is
/// dropped, after forwarding what it holds.
#[derive(Clone)]
pub(crate) struct StatusPublisher {
    db: TaskDb,
    tx: mpsc::UnboundedSender<Msg>,
}

enum Msg {
    Report {
        id: String,
        status: TaskStatus,
        committed: Option<BoxFuture<'static, Result<(), TaskDbError>>>,
    },
    Forget(String),
}

impl StatusPublisher {
    /// Starts the pipeline into `reporter`.
    pub(crate) fn spawn(db: TaskDb, reporter: ReporterHandle) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(forward(rx, reporter));
        Self { db, tx }
    }

    /// Queues `status` for the DB and reports it once committed. Does not wait. A DB failure
    /// is logged and the status still reported: the workload's state is a fact either way.
    pub(crate) fn publish(&self, id: &str, status: &TaskStatus) {
        let committed = self
            .db
            .enqueue(vec![WriteOp::PutStatus(id.to_string(), status.clone())]);
        let _ = self.tx.send(Msg::Report {
            id: id.to_string(),
            status: status.clone(),
            committed: Some(Box::pin(committed)),
        });
    }

    /// Reports `status` without persisting it (it is already in the DB), in order with the rest.
    pub(crate) fn report(&self, id: &str, status: &TaskStatus) {
        let _ = self.tx.send(Msg::Report {
            id: id.to_string(),
            status: status.clone(),
            committed: None,
        });
    }

    /// Tells the reporter the task is gone, after any status published before this call.
    pub(crate) fn forget(&self, id: &str) {
        let _ = self.tx.send(Msg::Forget(id.to_string()));
    }
}

async fn forward(mut rx: mpsc::UnboundedReceiver<Msg>, reporter: ReporterHandle) {
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Report {
                id,
                status,
                committed,
            } => {
                if let Some(committed) = committed
                    && let Err(e) = committed.await
                {
                    tracing::error!(task = %id, error = %chain(&e), "persisting task status failed");
                }
                reporter.report(&id, status);
            }
            Msg::Forget(id) => reporter.forget(&id),
        }
    }
}
