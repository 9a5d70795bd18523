//! The current dispatcher session, shared with the agent's other clients of the manager.
//!
//! The session loop owns the connection to a manager. Components that need their own RPCs
//! to the same manager (artifact fetches, log publishing) watch [`SessionLinks`]: it holds
//! the channel and session id of the session that is up, or nothing between sessions. They
//! never open connections of their own, so they fail over exactly when the session does.

use std::time::Duration;

use tokio::sync::watch;
use tonic::transport::Channel;

/// The session that is up: where it is and who it is.
#[derive(Debug, Clone)]
pub struct Link {
    /// A connected channel to the session's manager (cheap to clone).
    pub channel: Channel,
    /// The session id the dispatcher gave; RPCs on behalf of this node carry it.
    pub session_id: String,
    /// This node's id.
    pub node_id: String,
}

/// A watch over the current [`Link`]; clones share it.
#[derive(Debug, Clone)]
pub struct SessionLinks {
    tx: watch::Sender<Option<Link>>,
}

impl Default for SessionLinks {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionLinks {
    /// No session yet.
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(None),
        }
    }

    /// A session came up (called by the session loop).
    pub fn publish(&self, link: Link) {
        self.tx.send_replace(Some(link));
    }

    /// The session ended (called by the session loop).
    pub fn clear(&self) {
        self.tx.send_replace(None);
    }

    /// The link now, if a session is up.
    pub fn now(&self) -> Option<Link> {
        self.tx.borrow().clone()
    }

    /// Changes of the link: `None` while no session is up.
    pub fn subscribe(&self) -> watch::Receiver<Option<Link>> {
        self.tx.subscribe()
    }

    /// Waits up to `timeout` for a session to be up and returns its link.
    pub async fn wait(&self, timeout: Duration) -> Option<Link> {
        let mut rx = self.subscribe();
        let link = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        match link {
            Ok(Ok(link)) => link.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn wait_returns_none_when_no_session_comes_up() {
        let links = SessionLinks::new();
        assert!(links.now().is_none());
        assert!(links.wait(Duration::from_secs(1)).await.is_none());
    }
}
