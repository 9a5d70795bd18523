//! The current dispatcher session, shared with the agent's other clients of the manager.
//!
//! The session loop owns the connection to a manager. Components that need their own RPCs
//! to the same manager (artifact fetches, log publishing) watch [`SessionLinks`]: it holds
//! the channel and session id of the session that is up, or nothing between sessions. They
//! never open connections of their own, so they fail over exactly when the session does.
//!
//! It also carries the node's [`Roles`]: the role the swarm gives the node (from the
//! session) and the role its certificate holds (from the renewer). The renewer renews at once
//! when they differ; a node supervisor starts or stops its manager on the certified role.

use std::time::Duration;

use swarm_proto::NodeRole;
use tokio::sync::watch;
use tonic::transport::Channel;

/// The session that is up: where it is and who it is.
#[derive(Debug, Clone)]
pub struct Link {
    /// A connected channel to the session's manager (cheap to clone).
    pub channel: Channel,
    /// The session's manager (`host:port`).
    pub addr: String,
    /// The session id the dispatcher gave; RPCs on behalf of this node carry it.
    pub session_id: String,
    /// This node's id.
    pub node_id: String,
}

/// What the node is, and what the swarm says it should be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    /// The role the swarm gives the node, from the latest session message.
    pub assigned: Option<NodeRole>,
    /// The role the node's current certificate holds.
    pub certified: Option<NodeRole>,
}

impl Roles {
    /// The certificate must be renewed to carry the assigned role.
    pub fn needs_renewal(&self) -> bool {
        matches!((self.assigned, self.certified), (Some(a), Some(c)) if a != c)
    }
}

/// A watch over the current [`Link`] and the node's [`Roles`]; clones share them.
#[derive(Debug, Clone)]
pub struct SessionLinks {
    tx: watch::Sender<Option<Link>>,
    roles: watch::Sender<Roles>,
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
            roles: watch::Sender::new(Roles::default()),
        }
    }

    /// The role the swarm gives the node (called by the session loop).
    pub fn set_assigned(&self, role: NodeRole) {
        self.roles
            .send_if_modified(|r| r.assigned.replace(role) != Some(role));
    }

    /// The role the node's certificate holds (called when certificates load or renew).
    pub fn set_certified(&self, role: NodeRole) {
        self.roles
            .send_if_modified(|r| r.certified.replace(role) != Some(role));
    }

    /// Changes of the node's roles.
    pub fn roles(&self) -> watch::Receiver<Roles> {
        self.roles.subscribe()
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

    #[test]
    fn renewal_is_needed_only_when_both_roles_are_known_and_differ() {
        let links = SessionLinks::new();
        let roles = links.roles();
        assert!(!roles.borrow().needs_renewal());
        links.set_certified(NodeRole::Worker);
        assert!(!roles.borrow().needs_renewal(), "no session yet");
        links.set_assigned(NodeRole::Worker);
        assert!(!roles.borrow().needs_renewal());
        links.set_assigned(NodeRole::Manager);
        assert!(roles.borrow().needs_renewal(), "promoted");
        links.set_certified(NodeRole::Manager);
        assert!(!roles.borrow().needs_renewal(), "renewed");
    }

    #[test]
    fn setting_the_same_role_again_wakes_nobody() {
        let links = SessionLinks::new();
        let mut roles = links.roles();
        links.set_assigned(NodeRole::Worker);
        assert!(roles.has_changed().unwrap());
        roles.borrow_and_update();
        links.set_assigned(NodeRole::Worker);
        assert!(!roles.has_changed().unwrap());
    }
}
