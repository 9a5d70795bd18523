//! Session bookkeeping: which node holds which session, and until when.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Dispatcher timing (SwarmKit defaults: period 5 s, DOWN after 3 missed, 6 × grace for nodes
/// that had no session yet when this manager became leader).
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    pub heartbeat_period: Duration,
    /// Heartbeats a node may miss before it is marked DOWN.
    pub missed_heartbeats: u32,
    /// Multiple of the period granted to nodes known from the store when leadership begins.
    pub leader_grace: u32,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            heartbeat_period: Duration::from_secs(5),
            missed_heartbeats: 3,
            leader_grace: 6,
        }
    }
}

impl DispatcherConfig {
    /// How long a node may go without a heartbeat.
    pub fn ttl(&self) -> Duration {
        self.heartbeat_period * self.missed_heartbeats
    }
}

/// One node's open session.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub node_id: String,
    pub session_id: String,
    pub deadline: Instant,
    /// Cancelled when the session ends (expired, replaced, or the dispatcher stops).
    pub ended: CancellationToken,
}

/// All sessions, by node and by session id. Pure bookkeeping: the caller does the I/O.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    by_node: HashMap<String, Session>,
    node_of_session: HashMap<String, String>,
    /// Nodes known from the store that have not opened a session since leadership began.
    expected: HashMap<String, Instant>,
}

impl Sessions {
    /// Registers a new session for `node_id`, ending any previous one.
    pub fn open(
        &mut self,
        node_id: &str,
        session_id: String,
        deadline: Instant,
        parent: &CancellationToken,
    ) -> Session {
        self.close_node(node_id);
        self.expected.remove(node_id);
        let s = Session {
            node_id: node_id.to_string(),
            session_id: session_id.clone(),
            deadline,
            ended: parent.child_token(),
        };
        self.node_of_session.insert(session_id, node_id.to_string());
        self.by_node.insert(node_id.to_string(), s.clone());
        s
    }

    /// The live session with this id.
    pub fn get(&self, session_id: &str) -> Option<&Session> {
        self.node_of_session
            .get(session_id)
            .and_then(|n| self.by_node.get(n))
            .filter(|s| s.session_id == session_id)
    }

    /// Extends a session's deadline; false if the session is unknown.
    pub fn heartbeat(&mut self, session_id: &str, deadline: Instant) -> bool {
        let Some(node) = self.node_of_session.get(session_id) else {
            return false;
        };
        match self.by_node.get_mut(node) {
            Some(s) if s.session_id == session_id => {
                s.deadline = deadline;
                true
            }
            _ => false,
        }
    }

    /// Ends `node_id`'s session, if any.
    pub fn close_node(&mut self, node_id: &str) {
        if let Some(old) = self.by_node.remove(node_id) {
            self.node_of_session.remove(&old.session_id);
            old.ended.cancel();
        }
    }

    /// Gives a node known from the store until `deadline` to open a session.
    pub fn expect(&mut self, node_id: &str, deadline: Instant) {
        if !self.by_node.contains_key(node_id) {
            self.expected.insert(node_id.to_string(), deadline);
        }
    }

    /// Ends every session and expectation past its deadline; returns the nodes now DOWN.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut down: Vec<String> = self
            .by_node
            .values()
            .filter(|s| s.deadline <= now)
            .map(|s| s.node_id.clone())
            .collect();
        for n in &down {
            self.close_node(n);
        }
        let late: Vec<String> = self
            .expected
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for n in late {
            self.expected.remove(&n);
            down.push(n);
        }
        down.sort();
        down
    }

    pub fn len(&self) -> usize {
        self.by_node.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_session_replaces_the_old_one() {
        let root = CancellationToken::new();
        let mut s = Sessions::default();
        let now = Instant::now();
        let first = s.open("n1", "a".into(), now, &root);
        let _second = s.open("n1", "b".into(), now, &root);
        assert!(first.ended.is_cancelled());
        assert!(s.get("a").is_none());
        assert!(s.get("b").is_some());
        assert!(
            !s.heartbeat("a", now),
            "a replaced session must not heartbeat"
        );
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn expiry_marks_missed_sessions_and_late_expected_nodes() {
        let root = CancellationToken::new();
        let mut s = Sessions::default();
        let t0 = Instant::now();
        s.open("n1", "a".into(), t0 + Duration::from_secs(15), &root);
        s.open("n2", "b".into(), t0 + Duration::from_secs(15), &root);
        s.expect("n3", t0 + Duration::from_secs(30));
        s.expect("n1", t0 + Duration::from_secs(1)); // has a session: ignored
        assert!(s.heartbeat("b", t0 + Duration::from_secs(40)));
        assert_eq!(s.expire(t0 + Duration::from_secs(16)), ["n1"]);
        assert_eq!(s.expire(t0 + Duration::from_secs(31)), ["n3"]);
        assert!(s.expire(t0 + Duration::from_secs(39)).is_empty());
        assert_eq!(s.expire(t0 + Duration::from_secs(41)), ["n2"]);
    }
}
