//! Which calls a manager answers itself and which go to the leader. Pure.
//!
//! Everything goes to the leader while there is one, as SwarmKit's raft proxy does, so a
//! client reads its own writes whichever manager it talks to. Reads of the replicated store
//! fall back to the local copy when there is no leader, so a manager that lost quorum still
//! shows the last state; writes, and calls that need the leader's running components (the
//! dispatcher, the log broker, the artifact bytes, the CA's writes), are then refused.
//! Raft itself is always answered locally. Artifact bytes are a read too: every manager holds
//! them, and a manager catching up on bytes it missed asks its peers for their own copy.

/// Where a call is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answered here.
    Local,
    /// Answered by the leader; refused while there is none.
    Leader,
    /// Answered by the leader, or here while there is none.
    Read,
}

/// The route of the gRPC method at `path` (`/package.Service/Method`).
pub fn route(path: &str) -> Route {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (service, method) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let read = method.starts_with("Get") || method.starts_with("List");
    match service {
        "swarm.Raft" => Route::Local,
        "swarm.Control" | "swarm.Artifacts" if read => Route::Read,
        "swarm.NodeCA" if method == "GetRootCACertificate" => Route::Read,
        "swarm.ArtifactFetch" => Route::Read,
        _ => Route::Leader,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stay_writes_and_sessions_go_to_the_leader() {
        for (path, expected) in [
            ("/swarm.Control/ListServices", Route::Read),
            ("/swarm.Control/GetNode", Route::Read),
            ("/swarm.Control/CreateService", Route::Leader),
            ("/swarm.Control/UpdateCluster", Route::Leader),
            ("/swarm.Artifacts/List", Route::Read),
            ("/swarm.Artifacts/Push", Route::Leader),
            ("/swarm.Logs/SubscribeLogs", Route::Leader),
            ("/swarm.Dispatcher/Session", Route::Leader),
            ("/swarm.LogBroker/PublishLogs", Route::Leader),
            ("/swarm.ArtifactFetch/Fetch", Route::Read),
            ("/swarm.NodeCA/GetRootCACertificate", Route::Read),
            ("/swarm.NodeCA/IssueNodeCertificate", Route::Leader),
            ("/swarm.RaftMembership/Join", Route::Leader),
            ("/swarm.Raft/StreamRaftMessage", Route::Local),
        ] {
            assert_eq!(route(path), expected, "{path}");
        }
    }
}
