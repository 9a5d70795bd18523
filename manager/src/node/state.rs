//! `<state-dir>/state.json`: who this node is as a manager (node id, raft id, cluster id) and
//! its role. A demoted manager keeps the file with role `worker` (its raft data is gone) and
//! the managers it can reach, so `swarm-manager run` restarts it as a worker; a promoted
//! agent writes it once it has joined raft.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a manager persists about itself outside raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub node_id: String,
    pub raft_id: u64,
    pub cluster_id: String,
    /// [`ROLE_MANAGER`] or [`ROLE_WORKER`] (a demoted manager).
    pub role: String,
    /// The address other nodes reach this manager at.
    pub advertise_addr: String,
    /// A worker's managers (`host:port`), written at demotion: where it reconnects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<String>,
}

/// [`NodeState::role`] of a manager.
pub const ROLE_MANAGER: &str = "manager";
/// [`NodeState::role`] of a demoted manager.
pub const ROLE_WORKER: &str = "worker";

/// Errors reading or writing `state.json`.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "no cluster in {dir}: state.json is missing (run `swarm-manager init --state-dir {dir}` first)"
    )]
    Missing { dir: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid state file ({source}); refusing to start")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
}

impl NodeState {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    pub fn exists(dir: &Path) -> bool {
        Self::path(dir).exists()
    }

    /// True for a manager (false for a demoted one).
    pub fn is_manager(&self) -> bool {
        self.role == ROLE_MANAGER
    }

    pub fn load(dir: &Path) -> Result<Self, StateError> {
        let path = Self::path(dir);
        let bytes = std::fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => StateError::Missing {
                dir: dir.display().to_string(),
            },
            _ => StateError::Io {
                path: path.display().to_string(),
                source,
            },
        })?;
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
            path: path.display().to_string(),
            source,
        })
    }

    /// Writes atomically (temp file, fsync, rename).
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        use std::io::Write;
        let path = Self::path(dir);
        let tmp = dir.join("state.json.tmp");
        let io = |source| StateError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&serde_json::to_vec_pretty(self).expect("state serializes"))
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            NodeState::load(dir.path()),
            Err(StateError::Missing { .. })
        ));
        let s = NodeState {
            node_id: "n".into(),
            raft_id: 3,
            cluster_id: "c".into(),
            role: ROLE_MANAGER.into(),
            advertise_addr: "127.0.0.1:4242".into(),
            remotes: Vec::new(),
        };
        s.save(dir.path()).unwrap();
        assert_eq!(NodeState::load(dir.path()).unwrap(), s);
        std::fs::write(NodeState::path(dir.path()), b"{nope").unwrap();
        let e = NodeState::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a valid state file"), "{e}");
    }
}
