//! How a manager is started: the flags of `swarm-manager init|run`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use swarm_agent::certs::{CertFiles, KeyProtection, certs_dir};

use crate::keymanager::UnlockKey;

/// Settings of one manager process.
#[derive(Clone)]
pub struct ManagerConfig {
    pub state_dir: PathBuf,
    /// Where the manager listens for agents and peers (`0.0.0.0:4242` by default).
    pub listen_addr: SocketAddr,
    /// The address given to agents; defaults to the listen address, with 127.0.0.1 when
    /// listening on all interfaces.
    pub advertise_addr: Option<String>,
    pub force_new_cluster: bool,
    pub metrics_addr: Option<SocketAddr>,
    pub hostname: String,
    /// Whether this node also runs an agent (false for `--no-agent`: a manager created by
    /// `init` is then drained, as it runs no tasks).
    pub runs_agent: bool,
    /// `init` only: the dispatcher heartbeat period written to the cluster spec.
    pub heartbeat_period: Duration,
    /// `init` only: old tasks kept per slot.
    pub task_history_limit: i64,
    /// `init` only: validity of node certificates (`--cert-expiry`).
    pub node_cert_expiry: Duration,
    /// `init` only: lock the raft data key with a new unlock key (`--autolock`).
    pub autolock: bool,
    /// The unlock key of an autolocked swarm (`--unlock-key`).
    pub unlock_key: Option<UnlockKey>,
    /// How the node key is stored; shared with the node's agent (clones share it), so the
    /// agent's renewals are sealed while the swarm is autolocked.
    pub key_protection: KeyProtection,
}

impl ManagerConfig {
    /// Defaults for a manager whose state lives in `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            listen_addr: ([0, 0, 0, 0], 4242).into(),
            advertise_addr: None,
            force_new_cluster: false,
            metrics_addr: None,
            hostname: hostname(),
            runs_agent: false,
            heartbeat_period: Duration::from_secs(5),
            task_history_limit: 5,
            node_cert_expiry: crate::ca::DEFAULT_NODE_CERT_EXPIRY,
            autolock: false,
            unlock_key: None,
            key_protection: KeyProtection::default(),
        }
    }

    /// `certificates/` of this manager, read and written with its key protection.
    pub fn cert_files(&self) -> CertFiles {
        CertFiles::new(certs_dir(&self.state_dir), self.key_protection.clone())
    }
}

/// This machine's host name ("localhost" if unknown).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
