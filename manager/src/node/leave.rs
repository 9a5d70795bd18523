//! What a demoted manager leaves behind. Its raft data is deleted: it is no longer a member,
//! and a later promotion joins afresh with an empty log (SwarmKit clears a demoted manager's
//! raft state too). `state.json` stays, saying `worker` and naming the managers it can reach,
//! so a restart runs the node as a worker.

use std::path::Path;
use std::sync::Arc;

use swarm_agent::certs::{CertFiles, PlainKey};

use super::{ManagerError, NodeState, ROLE_WORKER, bootstrap};

/// Marks the manager in `dir` as demoted and removes its raft data; its node key in `files`
/// is stored plain again first (a worker keeps a plain key, and the raft data key that
/// seals it is about to go).
///
/// # Errors
/// When state.json cannot be read or written, or the raft data cannot be removed.
pub fn retire(dir: &Path, files: &CertFiles, remotes: Vec<String>) -> Result<(), ManagerError> {
    let mut state = NodeState::load(dir)?;
    state.role = ROLE_WORKER.into();
    state.remotes = remotes;
    state.save(dir)?;
    remove_raft_data(dir, files)
}

/// Removes the raft data of `dir` after unsealing the node key in `files` (the raft data
/// key that seals it is in there).
///
/// # Errors
/// The node key cannot be rewritten, or the raft data cannot be removed.
pub(super) fn remove_raft_data(dir: &Path, files: &CertFiles) -> Result<(), ManagerError> {
    files
        .protect(Arc::new(PlainKey))
        .map_err(|e| ManagerError::Other(format!("unsealing the node key: {e}")))?;
    let raft = bootstrap::raft_path(dir);
    let raft_dir = raft.parent().unwrap_or(dir);
    match std::fs::remove_dir_all(raft_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ManagerError::Io {
            what: format!("removing the raft data in {}", raft_dir.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::ROLE_MANAGER;
    use super::*;

    fn plain(dir: &Path) -> CertFiles {
        CertFiles::plain(swarm_agent::certs::certs_dir(dir))
    }

    #[test]
    fn a_retired_manager_keeps_its_identity_and_loses_its_raft_data() {
        let dir = tempfile::tempdir().unwrap();
        let state = NodeState {
            node_id: "n".into(),
            raft_id: 7,
            cluster_id: "c".into(),
            role: ROLE_MANAGER.into(),
            advertise_addr: "127.0.0.1:1".into(),
            remotes: Vec::new(),
        };
        state.save(dir.path()).unwrap();
        let raft = bootstrap::raft_path(dir.path());
        std::fs::create_dir_all(raft.parent().unwrap()).unwrap();
        std::fs::write(&raft, b"log").unwrap();

        retire(dir.path(), &plain(dir.path()), vec!["127.0.0.1:2".into()]).unwrap();
        let after = NodeState::load(dir.path()).unwrap();
        assert!(!after.is_manager());
        assert_eq!(after.node_id, "n");
        assert_eq!(after.remotes, ["127.0.0.1:2"]);
        assert!(!raft.exists());
        // Retiring twice (a crash between the steps) is fine.
        retire(dir.path(), &plain(dir.path()), vec![]).unwrap();
    }
}
