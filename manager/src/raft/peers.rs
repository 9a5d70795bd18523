//! [`PeerAddrs`]: where each raft member is reached. The store is the source (every
//! manager's Node carries `manager_status {raft_id, addr}`, written by the leader before the
//! membership change that adds it), and the members named by a join answer fill in until
//! a joining manager's store has caught up.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use swarm_proto::RaftMember;

use crate::store::{MemoryStore, Tables};

/// Addresses of raft members. Cheap to clone.
#[derive(Clone)]
pub struct PeerAddrs {
    memory: Arc<MemoryStore>,
    seeds: Arc<RwLock<HashMap<u64, String>>>,
}

impl PeerAddrs {
    pub fn new(memory: Arc<MemoryStore>) -> Self {
        Self {
            memory,
            seeds: Arc::default(),
        }
    }

    /// Remembers the members a join answer named.
    pub fn add_seeds(&self, members: &[RaftMember]) {
        let mut seeds = self.seeds.write().expect("seeds lock");
        for m in members {
            seeds.insert(m.raft_id, m.addr.clone());
        }
    }

    /// The address of member `raft_id`, if known.
    pub fn get(&self, raft_id: u64) -> Option<String> {
        address_in(&self.memory.view(), raft_id).or_else(|| {
            self.seeds
                .read()
                .expect("seeds lock")
                .get(&raft_id)
                .cloned()
        })
    }

    /// The store view these addresses come from.
    pub fn view(&self) -> Arc<Tables> {
        self.memory.view()
    }
}

/// The address the store has for member `raft_id`.
pub fn address_in(view: &Tables, raft_id: u64) -> Option<String> {
    view.nodes()
        .filter_map(|n| n.manager_status.as_ref())
        .find(|s| s.raft_id == raft_id && !s.addr.is_empty())
        .map(|s| s.addr.clone())
}
