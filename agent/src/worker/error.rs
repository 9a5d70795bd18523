//! Errors of the worker.

use crate::taskdb::TaskDbError;

/// Why the worker could not take an assignment.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The assignment could not be persisted, so it was not acted on.
    #[error("persist assignment")]
    TaskDb(#[from] TaskDbError),
    /// The worker has stopped (the agent is shutting down).
    #[error("worker has stopped")]
    Stopped,
}
