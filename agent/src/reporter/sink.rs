//! Where the reporter sends statuses: the dispatcher's `UpdateTaskStatus` in production (see
//! `session::dispatcher_sink`), a recorder in tests.

use std::time::Duration;

use swarm_proto::TaskStatusUpdate;

/// Delivers a batch of task statuses.
///
/// `send` returns `Ok` only once the receiver has acknowledged (committed) the whole batch;
/// any error means the reporter will send these statuses again, so a receiver must accept
/// repeats (the dispatcher ignores statuses that do not move a task forward).
#[async_trait::async_trait]
pub trait StatusSink: Send + Sync + 'static {
    /// Sends the batch and waits for the acknowledgement.
    async fn send(&self, updates: Vec<TaskStatusUpdate>) -> Result<(), ReportError>;
}

/// Why a batch of statuses was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The dispatcher answered with an error.
    #[error("UpdateTaskStatus failed: {0}")]
    Rpc(#[from] tonic::Status),
    /// No answer within the deadline.
    #[error("UpdateTaskStatus timed out after {0:?}")]
    Timeout(Duration),
    /// Anything else (test sinks).
    #[error("{0}")]
    Other(String),
}
