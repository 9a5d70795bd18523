//! Errors of the task DB.

use std::path::PathBuf;

/// A task DB failure.
#[derive(Debug, thiserror::Error)]
pub enum TaskDbError {
    /// The DB file could not be opened or created.
    #[error("open task DB {path}: {source} (is another swarm-agent using this --state-dir?)")]
    Open {
        /// The DB file.
        path: PathBuf,
        /// What redb said.
        #[source]
        source: Box<redb::Error>,
    },
    /// A read or write failed inside redb.
    #[error("task DB storage error")]
    Storage(#[from] Box<redb::Error>),
    /// A group commit failed; every write in the group gets this text.
    #[error("task DB commit failed: {0}")]
    Commit(String),
    /// A stored record did not decode (the file is corrupt or from an incompatible version).
    #[error("task DB record {key} does not decode")]
    Decode {
        /// The task id of the record.
        key: String,
        /// The prost error.
        #[source]
        source: prost::DecodeError,
    },
    /// The DB writer has stopped (the agent is shutting down).
    #[error("task DB is closed")]
    Closed,
}

impl TaskDbError {
    pub(crate) fn storage(e: impl Into<redb::Error>) -> Self {
        Self::Storage(Box::new(e.into()))
    }
}
