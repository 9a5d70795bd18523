//! Why a dispatcher session ended. Every one of these leads to a reconnect with backoff,
//! except [`SessionError::Renewed`], which reconnects at once.

use crate::worker::WorkerError;

/// A session failure.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// This node's certificates cannot be used.
    #[error("node certificates: {0}")]
    Credentials(String),
    /// No connection to the manager.
    #[error("connect to manager {addr}")]
    Connect {
        /// The manager address.
        addr: String,
        /// What tonic said.
        #[source]
        source: tonic::transport::Error,
    },
    /// A dispatcher call failed (`Unavailable("not the leader")` lands here).
    #[error("{call}: {status}")]
    Rpc {
        /// The RPC ("Session", "Heartbeat", …).
        call: &'static str,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// A dispatcher call got no answer within the 5 s deadline.
    #[error("{call}: no answer within {secs} s")]
    Timeout {
        /// The RPC.
        call: &'static str,
        /// The deadline.
        secs: u64,
    },
    /// The dispatcher closed a stream.
    #[error("{0} stream closed by the manager")]
    StreamEnded(&'static str),
    /// The worker could not take an assignment (it is re-sent in full on the next session).
    #[error("applying assignments")]
    Worker(#[from] WorkerError),
    /// The node's certificate was renewed: the session moves to a connection made with the
    /// new one (a connection keeps the certificate of its handshake, which will expire).
    #[error("the node certificate was renewed")]
    Renewed,
}

impl SessionError {
    /// Whether this is the dispatcher of a follower refusing the session.
    pub fn is_not_leader(&self) -> bool {
        matches!(self, SessionError::Rpc { status, .. }
            if status.code() == tonic::Code::Unavailable && status.message().contains("not the leader"))
    }

    /// Whether the dispatcher refused our credentials (the join token, usually).
    pub fn is_auth(&self) -> bool {
        matches!(self, SessionError::Rpc { status, .. }
            if matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied))
    }
}
