//! Errors of store writes.

use super::apply::Conflict;

/// Why a write did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// This manager is not the raft leader; `leader` names it when known.
    #[error("this manager is not the leader{}", leader.as_ref().map(|l| format!(" (the leader is {l})")).unwrap_or_default())]
    NotLeader { leader: Option<String> },
    /// The write was rejected on apply.
    #[error("{0}")]
    Conflict(Conflict),
    /// The proposal was dropped (leadership lost, shutdown) before it was applied.
    #[error("the write was not committed: {0}")]
    Dropped(String),
    /// The raft layer failed.
    #[error("raft: {0}")]
    Raft(String),
}
