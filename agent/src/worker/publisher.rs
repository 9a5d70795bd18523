//! Where a task manager sends each new status: first the task DB (so a restarted agent
//! resumes from it), then the reporter (so the dispatcher learns it).

use swarm_proto::TaskStatus;

use crate::errors::chain;
use crate::reporter::ReporterHandle;
use crate::taskdb::TaskDb;

/// Persists and reports task statuses.
#[derive(Clone)]
pub(crate) struct StatusPublisher {
    pub(crate) db: TaskDb,
    pub(crate) reporter: ReporterHandle,
}

impl StatusPublisher {
    /// Persists `status` (group-committed with other writes), then reports it. A DB failure is
    /// logged and the status still reported: the workload's state is a fact either way.
    pub(crate) async fn publish(&self, id: &str, status: &TaskStatus) {
        if let Err(e) = self.db.put_status(id, status.clone()).await {
            tracing::error!(task = %id, error = %chain(&e), "persisting task status failed");
        }
        self.reporter.report(id, status.clone());
    }

    /// Reports `status` without persisting it (it is already in the DB).
    pub(crate) fn report(&self, id: &str, status: &TaskStatus) {
        self.reporter.report(id, status.clone());
    }
}
