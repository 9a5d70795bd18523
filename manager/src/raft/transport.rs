//! How raft messages reach other managers.

use raft::prelude::Message;

/// Delivers raft messages to peers. Sending is fire-and-forget: raft retries on its own,
/// so an implementation may drop a message it cannot deliver (and should then report the
/// peer unreachable in a later version).
pub trait Transport: Send + Sync + 'static {
    fn send(&self, messages: Vec<Message>);
}

/// The transport of a manager that has no peers yet (one-member cluster). A message for
/// another member means the membership changed without a transport to match: logged loudly.
#[derive(Debug, Default)]
pub struct NoPeers;

impl Transport for NoPeers {
    fn send(&self, messages: Vec<Message>) {
        for m in messages {
            tracing::warn!(to = m.to, kind = ?m.get_msg_type(), "no transport to raft peer; message dropped");
        }
    }
}
