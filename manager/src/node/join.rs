//! `swarm-manager join --remote ADDR --join-token T`: a new manager for an existing swarm.
//! A promoted node takes the same path from step 2 on, with the manager certificate it
//! renewed into (no token).
//!
//! ```text
//!  1. certificate from the CA at ADDR with the manager token (as an agent joins)
//!  2. empty raft log, a fresh data key, a random raft id
//!  3. start: listeners bound, raft waiting for the leader
//!  4. RaftMembership.Join(node, address, raft id) → the leader records the address and
//!     adds the member; it then sends the snapshot and the log
//!  5. state.json written: from now on `swarm-manager run` resumes this manager
//! ```
//! A join that fails leaves no state.json and no raft data behind (the certificate stays, so
//! the node is named in the error).

use swarm_agent::certs::{CertFiles, NodeCerts};
use swarm_agent::session::RPC_TIMEOUT;
use swarm_proto::raft_membership_client::RaftMembershipClient;
use swarm_proto::{JoinRaftRequest, NodeRole};

use super::{Manager, ManagerConfig, ManagerError, NodeState, ROLE_MANAGER, bootstrap, leave};
use crate::keymanager::DekFile;
use crate::raft::storage::RaftStorage;

impl Manager {
    /// Joins the swarm that the manager at `remote` belongs to, as a manager.
    pub async fn join(
        config: ManagerConfig,
        remote: &str,
        token: &str,
    ) -> Result<Self, ManagerError> {
        let dir = &config.state_dir;
        // A demoted manager (state.json says worker) may join again once promoted.
        if NodeState::exists(dir) && NodeState::load(dir)?.is_manager() {
            let state = NodeState::load(dir)?;
            return Err(ManagerError::AlreadyInitialized {
                dir: dir.display().to_string(),
                cluster: state.cluster_id,
            });
        }
        if bootstrap::raft_path(dir).exists() {
            return Err(ManagerError::OrphanRaftData {
                dir: dir.display().to_string(),
            });
        }
        let files = config.cert_files();
        let certs = manager_certificate(&files, remote, token).await?;
        let identity = certs
            .identity()
            .map_err(|e| ManagerError::Other(format!("the issued certificate: {e}")))?;
        let io = |what: String| move |source| ManagerError::Io { what, source };
        std::fs::create_dir_all(dir.join("raft"))
            .map_err(io(format!("creating {}", dir.display())))?;
        let dek = DekFile::in_state_dir(dir).create(None)?;
        let storage = RaftStorage::open_sealed(&bootstrap::raft_path(dir), dek.clone())?;
        let state = NodeState {
            node_id: identity.node_id.clone(),
            raft_id: bootstrap::new_raft_id(),
            cluster_id: identity.cluster_id.clone(),
            role: ROLE_MANAGER.into(),
            advertise_addr: String::new(),
            remotes: Vec::new(),
        };
        let manager = match Self::start(config.clone(), state, storage, dek).await {
            Ok(m) => m,
            Err(e) => {
                let _ = leave::remove_raft_data(dir, &files);
                return Err(e);
            }
        };
        match join_raft(&manager, remote, &certs).await {
            Ok(()) => {
                let mut state = manager.state.clone();
                state.advertise_addr = manager.addr.to_string();
                state.save(dir)?;
                tracing::info!(node = %state.node_id, raft_id = format_args!("{:x}", state.raft_id), "joined the swarm as a manager");
                Ok(manager)
            }
            Err(e) => {
                manager.shutdown().await;
                let _ = leave::remove_raft_data(dir, &files);
                Err(e)
            }
        }
    }
}

/// Gets this node a manager certificate through the CA at `remote` (or reuses the one a
/// failed join left).
async fn manager_certificate(
    files: &CertFiles,
    remote: &str,
    token: &str,
) -> Result<NodeCerts, ManagerError> {
    let existing = files
        .load()
        .map_err(|e| ManagerError::Other(format!("loading certificates: {e}")))?;
    let certs = match existing {
        Some(c) => c,
        None => {
            let c = swarm_agent::certs::join::bootstrap(remote, token, RPC_TIMEOUT)
                .await
                .map_err(|e| ManagerError::Other(format!("joining through {remote}: {e}")))?;
            files
                .save(&c)
                .map_err(|e| ManagerError::Other(format!("saving certificates: {e}")))?;
            c
        }
    };
    let identity = certs
        .identity()
        .map_err(|e| ManagerError::Other(format!("the issued certificate: {e}")))?;
    if identity.role != NodeRole::Manager {
        let _ = std::fs::remove_dir_all(files.dir());
        return Err(ManagerError::Other(format!(
            "the join token is a worker token: node {} joined as a worker (use \
             `swarm-agent --join-token` for workers, and `swarmctl join-token manager` for \
             the manager token); its certificate was removed",
            identity.node_id
        )));
    }
    Ok(certs)
}

/// Asks the swarm (through `remote`, which forwards to the leader) to add this manager.
async fn join_raft(manager: &Manager, remote: &str, certs: &NodeCerts) -> Result<(), ManagerError> {
    let tls = certs
        .client_config()
        .map_err(|e| ManagerError::Other(format!("this manager's certificate: {e}")))?;
    let channel = swarm_agent::certs::connect(remote, tls, RPC_TIMEOUT)
        .await
        .map_err(|e| ManagerError::Other(format!("connecting to {remote}: {e}")))?;
    let response = RaftMembershipClient::new(channel)
        .join(JoinRaftRequest {
            node_id: manager.state.node_id.clone(),
            addr: manager.addr.to_string(),
            raft_id: manager.state.raft_id,
        })
        .await
        .map_err(|s| {
            ManagerError::Other(format!("joining raft through {remote}: {}", s.message()))
        })?
        .into_inner();
    manager.peers.add_seeds(&response.members);
    Ok(())
}
